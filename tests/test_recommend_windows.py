"""History windows, exclusions and the tuning split of recommend, on the tiny silver fixture.

Counts on the fixture (tests/recommend_fixture.py), before the run date: 36 weighted events
(6 taste customers x 3 group views, 2 X9 views, 1 held-out cart) and 7 kept order lines = 43
signals. A 12-day window starts on 2026-06-18: it drops the 4 views 13 days old (item 4 of the
first two customers of each group) and all 7 kept lines (14-20 days old) = 11 signals; every
customer keeps some, so 0 customers are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import windows
from precision_marketing.config import Config, ConfigError
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend import evaluate
from precision_marketing.recommend import job as recommend_job
from precision_marketing.runtime import JobContext
from tests import recommend_fixture as fx
from tests.support import make_config, run_stage

REPLAY = date(1998, 1, 1)  # the fixture's history moved to end in 1997
# Scored in ops/recommend_metrics on the time split (the segment-popular baseline has no
# snapshot dated before it): ALS, the blend, its other components and the popular baseline.
SCORED = {"als", "blend", "cooccurrence", "popular", "recent_popular", "own_history"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def captured() -> Iterator[list[str]]:
    handler, logger = Records(), logging.getLogger("precision_marketing")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def recommendations(spark: SparkSession, config: Config) -> dict[str, list[Any]]:
    rows = tables.read(spark, tables.table_path(config, Layer.GOLD, "recommendations")).collect()
    out: dict[str, list[Any]] = {}
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["rank"])):
        out.setdefault(row["customer_id"], []).append(row)
    return out


def run_facts(spark: SparkSession, config: Config) -> dict[str, float | None]:
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, "recommend_metrics"))
    return {
        r["metric"]: r["value"]
        for r in metrics.where(F.col("model") == recommend_job.RUN_FACTS).collect()
    }


def models(spark: SparkSession, config: Config) -> set[str]:
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, "recommend_metrics"))
    return {r[0] for r in metrics.select("model").distinct().collect()}


def seen_by_customer(before: date, run_date: date = fx.RUN_DATE) -> dict[str, set[str]]:
    """Items each customer has any event or order line on before `before`, from the rows of
    the fixture moved to end before `run_date` (order lines are all older than a week)."""
    delta = run_date - fx.RUN_DATE
    seen: dict[str, set[str]] = {}
    for e in fx.build_events():
        if e[2] and e[5] and e[10] + delta < before:
            seen.setdefault(e[2], set()).add(e[5])
    for line in fx.build_order_lines():
        seen.setdefault(line[2], set()).add(line[3])
    return seen


@pytest.fixture(scope="module")
def replay(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Defaults on a history that ended in 1997, exclude=seen, too few for the time split."""
    config = make_config(
        tmp_path_factory.mktemp("recommend_replay"),
        "recommend.exclude=seen",
        "recommend.min_validation_customers=7",
    )
    fx.write_silver(spark, config, REPLAY)
    fx.write_segments(spark, config, (REPLAY,))
    with captured() as lines:
        run_stage(spark, config, "recommend", REPLAY)
    return {"config": config, "log": lines}


@pytest.fixture(scope="module")
def windowed(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """history.days=12 (recommend's training window), the rules' own 30 days."""
    config = make_config(
        tmp_path_factory.mktemp("recommend_windowed"),
        "history.days=12",
        "recommend.rules.lookback_days=30",
    )
    fx.write_silver(spark, config)
    fx.write_segments(spark, config, (fx.RUN_DATE,))
    with captured() as lines:
        run_stage(spark, config, "recommend", fx.RUN_DATE)
    return {"config": config, "log": lines}


def test_window_start_derives_from_history_days() -> None:
    tmp = Path("/nonexistent")
    config = make_config(tmp)
    assert config.history.days is None
    assert config.recommend.lookback_days is None
    assert windows.window_start(config, fx.RUN_DATE) is None
    assert windows.window_start(config, fx.RUN_DATE, 7) == date(2026, 6, 23)
    days = make_config(tmp, "history.days=30")
    assert windows.window_start(days, fx.RUN_DATE) == date(2026, 5, 31)
    assert windows.window_start(days, fx.RUN_DATE, 7) == date(2026, 6, 23)  # its own wins
    with pytest.raises(ConfigError, match="at least 1 day"):
        windows.window_start(make_config(tmp, "history.days=0"), fx.RUN_DATE)


def test_replay_with_defaults_drops_nothing(spark: SparkSession, replay: dict) -> None:
    config = replay["config"]
    facts = run_facts(spark, config)
    assert facts["history_window_days"] is None
    assert facts["history_rows_dropped"] == 0.0
    assert facts["history_customers_dropped"] == 0.0
    assert facts["rules_history_rows_dropped"] == 0.0
    assert (
        "recommend: history window all..1997-12-31 leaves nothing out (signals)" in (replay["log"])
    )
    by_customer = recommendations(spark, config)
    assert sorted(by_customer) == sorted(fx.ACTIVE_CUSTOMERS)
    assert all(len(rows) == config.recommend.top_n for rows in by_customer.values())


def test_exclude_seen_serves_nothing_seen(spark: SparkSession, replay: dict) -> None:
    seen = seen_by_customer(REPLAY, REPLAY)
    assert seen["C1"] == {"H1", "H2", "H3", "H4", fx.INACTIVE, "B1"}  # B1: a page view
    by_customer = recommendations(spark, replay["config"])
    for customer, rows in by_customer.items():
        assert not {r["item_id"] for r in rows} & seen.get(customer, set()), customer
    # C1 has seen every home item and B1: what is left, ALS first.
    assert {r["item_id"] for r in by_customer["C1"]} <= {"B2", "B3", "B4", fx.NEW_ITEM}


def test_leave_last_out_split_on_a_short_history(spark: SparkSession, replay: dict) -> None:
    facts = run_facts(spark, replay["config"])
    # The last 7 days judge 6 customers (< 7): each taste customer's newest item is held out.
    assert facts["tuning_leave_last_out"] == 1.0
    assert facts["tuning_customers_judged"] == 6.0
    assert any("leave_last_out split judges 6 customers" in line for line in replay["log"])


def test_segment_baseline_never_reads_later_segments(spark: SparkSession, replay: dict) -> None:
    # The only snapshot is dated the run date, after every holdout (1997-12-29): the baseline
    # is not scored, while the served fallback may use it (it predates nothing served).
    config = replay["config"]
    assert models(spark, config) == {*SCORED, "run"}
    assert any(
        "segment-popular baseline: no gold/segments snapshot on or before 1997-12-29" in line
        for line in replay["log"]
    )
    assert {r["source"] for r in recommendations(spark, config)[fx.COLD]} == {"segment_popular"}


def test_history_days_window_drops_an_exact_count(spark: SparkSession, windowed: dict) -> None:
    facts = run_facts(spark, windowed["config"])
    assert facts["history_window_days"] == 12.0
    assert facts["history_rows"] == 43.0
    assert facts["history_rows_dropped"] == 11.0
    assert facts["history_customers_dropped"] == 0.0
    assert (
        "recommend: history window 2026-06-18..2026-06-29 leaves out 11 of 43 signals (25.6%) "
        "and 0 customers" in windowed["log"]
    )
    (page,) = Path(tables.reports_path(windowed["config"], "recommend")).glob("*/index.html")
    html = page.read_text()
    assert "left out 11 of 43 signals (25.6%) and 0 customers" in html
    assert "time split, 6 customers judged" in html
    # The rules' own 30 days keep all 7 kept lines.
    assert facts["rules_history_window_days"] == 30.0
    assert facts["rules_history_rows"] == 7.0
    assert facts["rules_history_rows_dropped"] == 0.0
    rules = tables.read(spark, tables.table_path(windowed["config"], Layer.GOLD, "rules"))
    assert {r["consequent"] for r in rules.collect()} == {"B1", "B2"}
    # The time split judges the 6 taste customers; segments are dated after its cutoff.
    assert facts["tuning_leave_last_out"] == 0.0
    assert facts["tuning_customers_judged"] == 6.0
    assert models(spark, windowed["config"]) == {*SCORED, "run"}


def test_bought_before_the_window_is_not_recommended(spark: SparkSession, windowed: dict) -> None:
    # Every kept purchase is 14-20 days old, outside the 12-day window, yet still excluded.
    by_customer = recommendations(spark, windowed["config"])
    for line in fx.build_order_lines():
        customer, item, status = line[2], line[3], line[10]
        served = {r["item_id"] for r in by_customer[customer]}
        if status == "completed":
            assert item not in served, (customer, item)
    # The blend's components are asked for enough candidates that the excluded ones leave N:
    # no fallback rows.
    for customer in [*fx.HOME_CUSTOMERS, *fx.BOOK_CUSTOMERS]:
        assert {r["source"] for r in by_customer[customer]} == {"blend"}, customer


def test_evaluation_excludes_what_is_served(spark: SparkSession, tmp_path: Path) -> None:
    """The time split's excluded and relevant sets come from the served exclusions (one
    function), cut at the cutoff."""
    config = make_config(tmp_path, "recommend.exclude=seen")
    fx.write_silver(spark, config)
    now = datetime.now(UTC)
    ctx = JobContext(spark, config, fx.RUN_DATE, "test-eval", now)
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.persist())
        return df

    try:
        r = recommend_job.prepare(ctx, "v-test", str(tmp_path / "scratch"), keep)
        split = recommend_job.time_split(r, keep)
        items = {row["item_idx"]: row["item_id"] for row in r.item_ids.collect()}
        customers = {row["customer_idx"]: row["customer_id"] for row in r.customer_ids.collect()}
        judged = {
            customers[row["customer_idx"]]: {items[i] for i in row["excluded"] or []}
            for row in split.judged.collect()
        }
        relevant = {
            customers[row["customer_idx"]]: {items[int(i)] for i in row["relevant"]}
            for row in split.truth.collect()
        }
        served = {
            row["customer_id"]: {items[i] for i in row["excluded"]}
            for row in evaluate.seen_items(r.excluded, "customer_id").collect()
        }
    finally:
        for df in cached:
            df.unpersist()
    assert split.name == "time"
    cutoff = fx.RUN_DATE - timedelta(days=config.recommend.validation_days)
    assert sorted(judged) == sorted([*fx.HOME_CUSTOMERS, *fx.BOOK_CUSTOMERS])
    seen_at_cutoff = seen_by_customer(cutoff)
    for customer, excluded in judged.items():
        assert excluded == seen_at_cutoff[customer], customer
        assert excluded <= served[customer], customer
        assert not relevant[customer] & excluded, customer
    assert judged["C1"] == {"H1", "H3", "H4", fx.INACTIVE}
    assert relevant["C1"] == {"H2"}  # the cart after the cutoff
    assert served["C1"] == seen_by_customer(fx.RUN_DATE)["C1"]


def test_propensity_stops_on_a_short_history(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    fx.write_silver(spark, config)  # orders 14 to 20 days before the run date
    with pytest.raises(ConfigError, match=r"needs 56 days .* holds 20 \(from 2026-06-10\)"):
        run_stage(spark, config, "propensity", fx.RUN_DATE)
