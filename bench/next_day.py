"""Next-day features: the incremental run against a full rebuild, on the day after a history.

    .venv/bin/python bench/next_day.py --customers 10000 --root /tmp/pmnext [--env local]

One Spark application: `generate` (the env's generate.* settings, --customers) and ingest,
validate, silver and features on the run date (features builds gold/customer_daily); then
`generate --next-day` and ingest, validate, silver on the day after; then the features stage on
the day after, timed, first incremental (features.incremental=true: MERGE of the changed days),
then as a full rebuild (false: every order line summed again), and the two snapshots compared
both ways (they must be equal). Prints one JSON line of seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing.cli import STAGES, configure_logging
from precision_marketing.config import Config, load_config
from precision_marketing.features import daily
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, new_run_id
from precision_marketing.spark import build_session

RUN_DATE = date(2026, 6, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--env", default="local")
    args = parser.parse_args()
    configure_logging()
    shutil.rmtree(args.root, ignore_errors=True)
    storage = [f"storage.{k}={args.root / k}" for k in ("landing", "warehouse", "ground_truth")]
    config = load_config(args.env, storage)
    full = dataclasses.replace(
        config, features=dataclasses.replace(config.features, incremental=False)
    )
    spark = build_session(config, f"{config.spark.app_name}:bench-next-day")
    seconds: dict[str, Any] = {"customers": args.customers}

    def run(stage: str, run_date: date, cfg: Config = config, **options: Any) -> float:
        now = datetime.now(UTC)
        ctx = JobContext(spark, cfg, run_date, new_run_id(stage, now), now, options)
        started = time.perf_counter()
        STAGES[stage].run(ctx)
        return round(time.perf_counter() - started, 1)

    nxt = RUN_DATE + timedelta(days=1)
    run("generate", RUN_DATE, customers=args.customers)
    for stage in ("ingest", "validate", "silver"):
        run(stage, RUN_DATE)
    seconds["features_first_run_s"] = run("features", RUN_DATE)
    run("generate", nxt, next_day=True)
    seconds["next_day_ingest_validate_silver_s"] = sum(
        run(stage, nxt) for stage in ("ingest", "validate", "silver")
    )

    def snapshot() -> DataFrame:
        path = tables.table_path(config, Layer.GOLD, "user_features")
        return tables.read(spark, path).where(F.col("as_of_date") == F.lit(nxt))

    seconds["features_incremental_s"] = run("features", nxt)
    built = daily.last_build(spark, daily.path(config))
    seconds["days_merged"] = len(built.days) if built else None
    kept = str(args.root / "incremental_user_features")
    tables.append(snapshot(), kept)
    seconds["features_full_s"] = run("features", nxt, full)
    incremental = tables.read(spark, kept)
    seconds["equal"] = (
        incremental.exceptAll(snapshot()).isEmpty() and snapshot().exceptAll(incremental).isEmpty()
    )
    print(json.dumps(seconds))
    spark.stop()


if __name__ == "__main__":
    main()
