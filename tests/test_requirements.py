"""Stages on the data users have: a missing input stops a stage in one line, not the pipeline.

One warehouse of product views only: the real-shaped `views_only` fixture (40 customers' events
and a catalog, no CRM, no transactions), run through every stage of conf/base.yaml's
pipeline.steps in one `pipeline` run; tests/real_shaped_fixture.py builds it once per test
process for this module and tests/test_real_shaped.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.cli import EXIT_MISSING_INPUT
from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.requirements import problem
from precision_marketing.runtime import MissingInputError
from tests.real_shaped_fixture import pipeline_run
from tests.support import RUN_DATE, run_stage

ROOT = Path(__file__).parents[1]


@dataclass(frozen=True)
class ViewsOnly:
    config: Config
    summary: str


@pytest.fixture(scope="module")
def views_only(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> ViewsOnly:
    run = pipeline_run(spark, tmp_path_factory, "views_only")
    assert run.case.run_date == RUN_DATE
    return ViewsOnly(run.config, run.summary)


def statuses(spark: SparkSession, config: Config) -> dict[str, tuple[str, str | None]]:
    runs = tables.read(spark, tables.table_path(config, Layer.OPS, "pipeline_runs"))
    latest = runs.orderBy(F.col("finished_at").desc()).first()
    assert latest is not None
    rows = runs.where(F.col("pipeline_run_id") == latest["pipeline_run_id"]).collect()
    return {r["step"]: (r["status"], r["error"]) for r in rows}


def test_the_pipeline_runs_what_the_sources_allow(
    spark: SparkSession, views_only: ViewsOnly
) -> None:
    found = statuses(spark, views_only.config)
    assert {step: status for step, (status, _) in found.items()} == {
        "ingest": "succeeded",
        "validate": "succeeded",
        "silver": "succeeded",
        "features": "succeeded",
        "segment": "succeeded",  # no CRM: the customers with events are the base
        "recommend": "succeeded",  # product views are interactions
        "propensity": "no_input",
        "publish": "no_input",
        "measure": "no_input",
        "monitor": "succeeded",  # segments and recommendations to watch; no propensity
    }
    assert found["propensity"][1] == (
        "propensity needs silver/order_lines (purchases to label); it is empty: map a "
        "transactions source (docs/bring-your-own-data.md)"
    )
    assert found["publish"][1] == (
        "publish needs silver/customers (contact consent); it is empty: map a crm source "
        "(docs/bring-your-own-data.md)"
    )
    assert found["measure"][1] == (
        "measure needs activation/audiences (published campaigns to measure); it is absent: "
        f"run publish for {RUN_DATE} (it needs inputs of its own)"
    )


def test_the_summary_says_which_sources_each_step_ran_on(views_only: ViewsOnly) -> None:
    lines = re.findall(r"^  (\w+) +(succeeded|no_input) +[\d.-]+  (.*)$", views_only.summary, re.M)
    assert lines == [
        ("ingest", "succeeded", "on: events, catalog"),
        ("validate", "succeeded", "on: events, catalog"),
        ("silver", "succeeded", "on: events, catalog"),
        ("features", "succeeded", "on: events, catalog"),
        ("segment", "succeeded", "on: events, catalog"),
        ("recommend", "succeeded", "on: events, catalog"),
        ("propensity", "no_input", "needs silver/order_lines"),
        ("publish", "no_input", "needs silver/customers"),
        ("measure", "no_input", "needs activation/audiences"),
        ("monitor", "succeeded", "on: events, catalog"),
    ]


def test_segment_alone_stops_without_the_dates_features(
    spark: SparkSession, views_only: ViewsOnly
) -> None:
    later = RUN_DATE + timedelta(days=1)
    expected = (
        f"segment needs gold/user_features for {later} (customers to cluster); it has no rows "
        f"for {later}: run features for {later} (it needs inputs of its own)"
    )
    with pytest.raises(MissingInputError, match=f"^{re.escape(expected)}$"):
        run_stage(spark, views_only.config, "segment", later)


def test_propensity_alone_stops_naming_order_lines(
    spark: SparkSession, views_only: ViewsOnly
) -> None:
    with pytest.raises(MissingInputError, match=r"^propensity needs silver/order_lines \("):
        run_stage(spark, views_only.config, "propensity", RUN_DATE)


def test_recommend_needs_purchases_or_product_events(
    spark: SparkSession, views_only: ViewsOnly
) -> None:
    config = views_only.config
    no_product_events = replace(
        config, recommend=replace(config.recommend, event_weights={"wishlist_add": 1.0})
    )
    assert problem(spark, views_only.config, "recommend", RUN_DATE) is None
    assert problem(spark, no_product_events, "recommend", RUN_DATE) == (
        "recommend needs silver/order_lines (purchases) or silver/events with event_type in "
        "recommend.event_weights (product events); silver/order_lines is empty; silver/events "
        "has no such rows: map a transactions or events source (docs/bring-your-own-data.md)"
    )


def test_the_job_exits_4_with_one_line_and_no_traceback(views_only: ViewsOnly) -> None:
    """Through jobs/propensity.py in its own process (the cli stops its session)."""
    config = views_only.config
    storage = [f"storage.{k}={getattr(config.storage, k)}" for k in ("landing", "warehouse")]
    args = ["--env", "test", "--run-date", RUN_DATE.isoformat()]
    args += [a for s in storage for a in ("--set", s)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "propensity.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{ROOT}/lib"},
    )
    assert result.returncode == EXIT_MISSING_INPUT == 4, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].endswith(
        "propensity needs silver/order_lines (purchases to label); it is empty: map a "
        "transactions source (docs/bring-your-own-data.md)"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
