"""GE suites over new bronze batches -> quarantine and ops/validation_results."""

from precision_marketing.cli import main

raise SystemExit(main("validate"))
