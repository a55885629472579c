"""gold/user_features + silver order lines -> calibrated purchase propensity (gold/propensity)."""

from precision_marketing.cli import main

raise SystemExit(main("propensity"))
