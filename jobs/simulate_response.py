"""Synthetic data only: landing transactions for what published campaign audiences bought."""

from precision_marketing.cli import main

raise SystemExit(main("simulate_response"))
