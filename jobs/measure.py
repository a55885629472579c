"""activation audiences + silver order lines -> gold/campaign_results (uplift, p-values, ROI)."""

from precision_marketing.cli import main

raise SystemExit(main("measure"))
