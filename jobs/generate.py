"""Synthetic landing files and planted ground truth (see precision_marketing.generate)."""

from precision_marketing.cli import main

raise SystemExit(main("generate"))
