"""The model registry on the propensity fixture: a run between refits serves the champion and
says so, a forced refit fits a challenger, a worse challenger leaves the champion serving, a
better one replaces it, and a rerun adds no registry row (ops/model_versions)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing import registry
from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.propensity import job
from precision_marketing.recommend import job as recommend_job
from precision_marketing.segment import job as segment_job
from tests import propensity_fixture as fx
from tests import recommend_fixture as rx
from tests import test_segment as seg
from tests.support import make_config, run_stage

NEXT_DAY = fx.RUN_DATE + timedelta(days=1)


def _versions(spark: SparkSession, config: Config) -> dict[str, registry.Version]:
    return {v.version: v for v in registry.versions(spark, config, "propensity")}


def _served(spark: SparkSession, config: Config, day: date) -> set[str]:
    path = tables.table_path(config, Layer.GOLD, job.PROPENSITY)
    rows = tables.read(spark, path).where(F.col("as_of_date") == F.lit(day))
    return {r[0] for r in rows.select("model_version").distinct().collect()}  # one per day


@dataclass(frozen=True)
class Cadence:
    config: Config  # retrain_every_days=7
    first: str  # the version fitted on the fixture's run date
    next_day_log: list[str]


@pytest.fixture(scope="module")
def c(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Cadence:
    """Fitted on the fixture's run date with a 7-day cadence, then run the next day."""
    config = fx.fitted(spark, tmp_path_factory, "registry", "propensity.retrain_every_days=7")
    first = job.model_version(config.propensity, fx.RUN_DATE)
    with _info_lines() as lines:
        run_stage(spark, config, "propensity", NEXT_DAY)
    return Cadence(config, first, lines)


@contextmanager
def _info_lines() -> Iterator[list[str]]:
    """The suite's INFO log lines while the block runs (a module fixture cannot use caplog)."""
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("precision_marketing"), Lines(logging.INFO)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_run_between_refits_serves_the_previous_version_and_says_so(
    spark: SparkSession, c: Cadence
) -> None:
    assert _served(spark, c.config, NEXT_DAY) == {c.first}
    versions = _versions(spark, c.config)
    assert list(versions) == [c.first]  # nothing fitted on the next day
    row = versions[c.first]
    assert (row.role, row.decision, row.as_of_date) == (
        registry.Role.CHAMPION, "first fit", fx.RUN_DATE
    )  # fmt: skip
    assert (row.train_start, row.train_end, row.validation_date) == (
        fx.TRAIN_AS_OF, fx.TRAIN_AS_OF + timedelta(days=14), fx.VALIDATION_AS_OF
    )  # fmt: skip
    assert row.metric == "roc_auc"
    assert row.metric_value == row.metrics["roc_auc"]
    assert set(row.inputs) == set(job.INPUTS)
    expected = f"propensity: served {c.first} (fitted 2026-06-30, next refit due 2026-07-07)"
    assert expected in c.next_day_log
    assert registry.summary_lines(spark, c.config, "propensity", NEXT_DAY) == [
        expected.removeprefix("propensity: ")
    ]
    # Every active customer still scored, once.
    path = tables.table_path(c.config, Layer.GOLD, job.PROPENSITY)
    day = tables.read(spark, path).where(F.col("as_of_date") == F.lit(NEXT_DAY))
    assert day.count() == len(fx.SCORED)


def test_forced_worse_refit_is_kept_beside_the_serving_champion_and_a_rerun_adds_no_row(
    spark: SparkSession, c: Cadence
) -> None:
    """Forced on the fixture's run date (not due: fitted that day), with another setting (a
    new version) and tolerance -1: the challenger must beat the champion's AUC by 1, which no
    model can. The snapshots are those of the first fit: nothing to build."""
    config = replace(
        c.config,
        pipeline=replace(c.config.pipeline, refit=True),
        propensity=replace(c.config.propensity, champion_tolerance=-1.0, max_iter=14),
    )
    run_stage(spark, config, "propensity", fx.RUN_DATE)
    challenger = job.model_version(config.propensity, fx.RUN_DATE)
    assert challenger != c.first
    versions = _versions(spark, config)
    assert set(versions) == {c.first, challenger}
    row = versions[challenger]
    assert (row.role, row.decision) == (registry.Role.CHALLENGER, "champion kept")
    champion_auc = row.metrics["champion_roc_auc"]
    assert champion_auc == pytest.approx(versions[c.first].metric_value, abs=1e-12)  # same rows
    assert row.reason == (
        f"challenger roc_auc {row.metric_value:.3f} < champion {champion_auc:.3f} - tolerance "
        "-1.000: champion kept"
    )
    assert versions[c.first].role is registry.Role.CHAMPION
    assert _served(spark, config, fx.RUN_DATE) == {c.first}
    assert registry.summary_lines(spark, config, "propensity", fx.RUN_DATE) == [
        f"served {c.first} (refitted today, next refit due 2026-07-07)",
        f"challenger {challenger} champion kept: {row.reason}",
    ]
    assert Path(job.models_path(config, challenger, "propensity")).is_dir()  # both kept

    run_stage(spark, config, "propensity", fx.RUN_DATE)
    assert tables.read(spark, registry.path(config)).count() == 2
    assert _versions(spark, config)[challenger].decision == "champion kept"


def test_segments_between_refits_are_assigned_by_the_champion(
    spark: SparkSession, tmp_path: Path
) -> None:
    """tests/test_segment.py's blobs: fitted in week 1, assigned three days later (a01 has
    moved to blob b) by the week-1 pipeline under its version, ids and names."""
    config = seg._config(tmp_path)
    config = replace(config, segment=replace(config.segment, retrain_every_days=7))
    later = seg.WEEK1 + timedelta(days=3)
    seg._write_features(spark, config, seg.snapshot(seg.WEEK1))
    run_stage(spark, config, "segment", run_date=seg.WEEK1)
    seg._write_features(spark, config, seg.snapshot(later, shift=1, movers=("a01",)))
    with _info_lines() as lines:
        run_stage(spark, config, "segment", run_date=later)
    first = segment_job.model_version(config.segment, seg.WEEK1)
    rows = seg._gold(spark, config, "segments")
    week1 = {
        r["customer_id"]: r["segment_id"]
        for r in rows.where(F.col("as_of_date") == seg.WEEK1).collect()
    }
    after = {
        r["customer_id"]: (r["segment_id"], r["model_version"])
        for r in rows.where(F.col("as_of_date") == later).collect()
    }
    assert len(after) == 60
    assert {v for _, v in after.values()} == {first}
    assert after["a01"][0] == week1["b00"]  # the mover joins blob b's segment
    assert {c: s for c, (s, _) in after.items() if c != "a01"} == {
        c: s for c, s in week1.items() if c != "a01"
    }
    versions = registry.versions(spark, config, "segment")
    assert [(v.version, v.role, v.decision) for v in versions] == [
        (first, registry.Role.CHAMPION, "first fit")
    ]
    assert f"segment: served {first} (fitted 2026-06-23, next refit due 2026-06-30)" in lines
    assert not Path(
        segment_job.model_dir(config, segment_job.model_version(config.segment, later))
    ).exists()


def test_decisions_and_the_served_line_are_exact() -> None:
    """Pure rules: tolerance either way, lower-is-better metrics, settle's rows, the line."""
    kept = registry.decide("ndcg", 0.181, 0.190, 0.005)
    assert (kept.promote, kept.reason) == (
        False, "challenger ndcg 0.181 < champion 0.190 - tolerance 0.005: champion kept"
    )  # fmt: skip
    assert registry.decide("ndcg", 0.186, 0.190, 0.005).promote  # within the tolerance
    assert not registry.decide("auc", 0.80, 0.79, -1.0).promote  # must beat it by 1
    assert not registry.decide("mae", 3.2, 3.0, 0.1, higher_is_better=False).promote
    assert registry.decide("mae", 3.05, 3.0, 0.1, higher_is_better=False).promote
    assert registry.decide("auc", 0.5, None, 0.0).reason == "no comparable auc: the refit serves"

    day = date(2026, 12, 1)
    old = registry.Version("propensity", "prop-20261124-aaaaaaaa", date(2026, 11, 24), "auc", 0.79)
    new = registry.Version("propensity", "prop-20261201-bbbbbbbb", day, "auc", 0.80)
    plan = registry.Plan("propensity", day, True, "due", old, old.as_of_date, 7)
    promoted, retired = registry.settle(plan, new, 0.79, 0.005)
    assert (promoted.role, retired.role, retired.version) == (
        registry.Role.CHAMPION, registry.Role.RETIRED, old.version
    )  # fmt: skip
    assert registry.serving(plan, [promoted, retired]) == promoted
    (lost,) = registry.settle(plan, replace(new, metric_value=0.70), 0.79, 0.005)
    assert (lost.role, lost.decision) == (registry.Role.CHALLENGER, "champion kept")
    assert registry.serving(plan, [lost]) == old
    (first,) = registry.settle(replace(plan, champion=None), new, None, 0.0)
    assert (first.role, first.decision, first.reason) == (
        registry.Role.CHAMPION,
        "first fit",
        "due",
    )
    assert registry.served_line("propensity", old, plan, False) == (
        "propensity: served prop-20261124-aaaaaaaa (fitted 2026-11-24, next refit due 2026-12-08)"
    )
    assert registry.served_line("propensity", new, replace(plan, every_days=0), True) == (
        "propensity: served prop-20261201-bbbbbbbb (refitted today, refit every run)"
    )


def test_recommendations_between_refits_come_from_the_champion_factors(
    spark: SparkSession, tmp_path: Path
) -> None:
    """tests/recommend_fixture.py fitted (untuned: one fit) on its run date, served two days
    later from the saved factors: every active customer gets top_n rows of that version."""
    config = make_config(tmp_path, "recommend.retrain_every_days=7", "recommend.tune=false")
    rx.write_silver(spark, config)
    run_stage(spark, config, "recommend", rx.RUN_DATE)
    first = recommend_job.model_version(config.recommend, rx.RUN_DATE)
    later = rx.RUN_DATE + timedelta(days=2)
    with _info_lines() as lines:
        run_stage(spark, config, "recommend", later)
    path = tables.table_path(config, Layer.GOLD, recommend_job.RECOMMENDATIONS)
    served = tables.read(spark, path).where(F.col("as_of_date") == F.lit(later))
    per_customer = {r[0]: r[1] for r in served.groupBy("customer_id").count().collect()}
    assert per_customer == dict.fromkeys(rx.ACTIVE_CUSTOMERS, config.recommend.top_n)
    assert {r[0] for r in served.select("model_version").distinct().collect()} == {first}
    assert [(v.version, v.role) for v in registry.versions(spark, config, "recommend")] == [
        (first, registry.Role.CHAMPION)
    ]
    assert f"recommend: served {first} (fitted 2026-06-30, next refit due 2026-07-07)" in lines
    assert not Path(
        recommend_job.models_path(config, recommend_job.model_version(config.recommend, later))
    ).exists()


def test_plan_follows_cadence_monitor_and_replays(spark: SparkSession, tmp_path: Path) -> None:
    """registry.plan on hand-written rows: not due, due, a monitor 'refit' status, a forced
    refit, and a replay of an old date served by the version that served then."""
    config = make_config(tmp_path)
    old = registry.Version("propensity", "prop-20261117-aaaaaaaa", date(2026, 11, 17), "auc", 0.7)
    new = registry.Version("propensity", "prop-20261124-bbbbbbbb", date(2026, 11, 24), "auc", 0.8)
    registry.record(
        spark, config, [replace(old, role=registry.Role.RETIRED), replace(new, decision="promoted")]
    )
    registry.record(spark, config, [replace(new, decision="promoted")])  # a rerun: no new row
    assert tables.read(spark, registry.path(config)).count() == 2

    def plan(day: date, every: int = 7) -> registry.Plan:
        return registry.plan(spark, config, "propensity", day, every)

    quiet = plan(date(2026, 11, 30))
    assert quiet.champion is not None
    assert (quiet.refit, quiet.champion.version, quiet.next_due()) == (
        False, new.version, date(2026, 12, 1)
    )  # fmt: skip
    assert plan(date(2026, 12, 1)).why == "due: last fit 2026-11-24, retrain_every_days=7"
    assert plan(date(2026, 11, 30), every=0).refit
    replay = plan(date(2026, 11, 20))
    assert (replay.refit, replay.champion and replay.champion.version) == (False, old.version)

    monitoring = tables.table_path(config, Layer.GOLD, registry.MONITORING)
    spark.createDataFrame(
        [
            ("propensity", new.version, date(2026, 11, 28), "warn"),
            ("propensity", new.version, date(2026, 11, 29), "refit"),
        ],
        "model string, model_version string, as_of_date date, status string",
    ).write.format("delta").save(monitoring)
    flagged = plan(date(2026, 11, 30))
    assert flagged.refit
    assert flagged.why == f"gold/model_monitoring marks {new.version} for refit"
    forced = replace(config, pipeline=replace(config.pipeline, refit=True))
    assert registry.plan(spark, forced, "propensity", date(2026, 11, 25), 7).why == (
        "forced (pipeline.refit=true)"
    )
