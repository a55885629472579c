"""Silver -> gold/user_features, one point-in-time snapshot per as_of_date (= run date)."""

from precision_marketing.cli import main

raise SystemExit(main("features"))
