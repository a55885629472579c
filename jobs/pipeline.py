"""Every configured stage, in order, in one Spark application."""

from precision_marketing.cli import main

raise SystemExit(main("pipeline"))
