"""Helpers the tests share: config under a temp dir and running a stage in-process."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from precision_marketing.cli import STAGES
from precision_marketing.config import Config, load_config
from precision_marketing.runtime import JobContext, new_run_id

# The logical date every test run uses, so results never depend on the day the tests run.
RUN_DATE = date(2026, 6, 30)
# The JVM of a pytest process's session lives for the whole suite: HotSpot's default tiered JIT,
# whose C2 compiles pay back over that time (conf/test.yaml gives shorter-lived JVMs C1 alone).
TIERED_JIT = "-XX:+UseSerialGC"
SESSION_JAVA_OPTIONS = f"spark.conf.spark.driver.extraJavaOptions={TIERED_JIT}"


def make_config(tmp: Path, *overrides: str) -> Config:
    """The test env with storage under `tmp`, plus any overrides."""
    return load_config(
        "test",
        [
            f"storage.landing={tmp}/landing",
            f"storage.warehouse={tmp}/warehouse",
            f"storage.ground_truth={tmp}/ground_truth",
            *overrides,
        ],
    )


def context(config: Config, run_date: date = RUN_DATE, **options: Any) -> JobContext:
    """A run's context on the shared session (the one the spark fixture built)."""
    now = datetime.now(UTC)
    spark = SparkSession.getActiveSession()
    assert spark is not None
    return JobContext(spark, config, run_date, new_run_id("test", now), now, options)


def run_stage(
    spark: SparkSession, config: Config, stage: str, run_date: date = RUN_DATE, **options: Any
) -> JobContext:
    """Runs a stage in this process on the shared session, as its job would under spark-submit."""
    now = datetime.now(UTC)
    ctx = JobContext(spark, config, run_date, new_run_id(stage, now), now, options)
    STAGES[stage].run(ctx)
    return ctx
