"""Validated bronze -> conformed, pseudonymized silver tables."""

from precision_marketing.cli import main

raise SystemExit(main("silver"))
