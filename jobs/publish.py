"""Campaigns sending on the run date -> audiences with holdouts, exports and a manifest."""

from precision_marketing.cli import main

raise SystemExit(main("publish"))
