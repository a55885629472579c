"""gold scorings + silver order lines -> gold/model_monitoring (realized quality, input drift)."""

from precision_marketing.cli import main

raise SystemExit(main("monitor"))
