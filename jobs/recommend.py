"""Silver -> ALS recommendations, similar items and bought-together rules."""

from precision_marketing.cli import main

raise SystemExit(main("recommend"))
