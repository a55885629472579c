"""gold/user_features -> KMeans segments, profiles and the segment report."""

from precision_marketing.cli import main

raise SystemExit(main("segment"))
