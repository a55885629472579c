"""Raw landing files -> bronze Delta tables (see precision_marketing.ingest)."""

from precision_marketing.cli import main

raise SystemExit(main("ingest"))
