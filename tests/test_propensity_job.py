"""The propensity job end to end on the planted fixture: snapshots built on demand, no leakage
into training rows, the output contract, metrics against the recency baseline, reruns, the
model, the report and the notebook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.propensity import job
from precision_marketing.runtime import JobContext
from tests import propensity_fixture as fx
from tests.support import run_stage

CONTRACT = [
    ("customer_id", "string"),
    ("as_of_date", "date"),
    ("probability", "double"),
    ("decile", "int"),
    ("predicted_spend", "double"),
    ("expected_value", "double"),
    ("churn_risk", "double"),
    ("model_version", "string"),
]


@dataclass(frozen=True)
class World:
    config: Config
    first: list[tuple[Any, ...]]  # gold/propensity after the first run
    first_version: int  # its Delta version then


def _scores(spark: SparkSession, config: Config) -> list[Any]:
    path = tables.table_path(config, Layer.GOLD, job.PROPENSITY)
    return tables.read(spark, path).orderBy("customer_id").collect()


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The job run twice for the run date, with no user_features snapshot beforehand."""
    config = fx.fitted(spark, tmp_path_factory, "propensity")
    first = [tuple(r) for r in _scores(spark, config)]
    path = tables.table_path(config, Layer.GOLD, job.PROPENSITY)
    first_version = tables.last_commit(spark, path).version
    run_stage(spark, config, "propensity", fx.RUN_DATE)
    return World(config, first, first_version)


def _metrics(spark: SparkSession, config: Config) -> dict[tuple[str, str, int | None], float]:
    table = tables.read(spark, tables.table_path(config, Layer.OPS, job.METRICS))
    # Bounded: models x (metrics + 10 deciles x 7) rows.
    return {(r["model"], r["metric"], r["decile"]): r["value"] for r in table.collect()}


def test_missing_snapshots_are_built_by_the_features_stage(
    spark: SparkSession, world: World
) -> None:
    features = tables.table_path(world.config, Layer.GOLD, "user_features")
    assert job.snapshot_dates_present(spark, features) == {
        fx.TRAIN_AS_OF,
        fx.VALIDATION_AS_OF,
        fx.RUN_DATE,
    }


def test_training_rows_see_nothing_from_the_label_window_on(
    spark: SparkSession, world: World
) -> None:
    """Features at the training as_of count only rows before it; its label counts the rows
    from it on (B00 orders and visits at the very instant)."""
    now = datetime.now(UTC)
    ctx = JobContext(spark, world.config, fx.RUN_DATE, "leak-check", now)
    inputs = job.read_inputs(ctx.spark, ctx.config)
    rows = {
        r["customer_id"]: r
        for r in inputs.labelled(fx.TRAIN_AS_OF, world.config.propensity).collect()
    }
    columns = ("orders_lifetime", "days_since_last_order", "days_since_first_order",
               "spend_lifetime", "active_days", "days_since_last_visit", "preferred_platform",
               "label")  # fmt: skip
    got = {c: tuple(rows[c][k] for k in columns) for c in ("F00", "R00", fx.BOUNDARY, "B01")}
    assert got == {
        # Orders on offsets 45..117 of which the last 3 days before as_of; one view on 60.
        "F00": (19, 3, 75, 380.0, 20, 3, "web", 1.0),
        # One order the day before as_of, and the view on offset 60.
        "R00": (1, 1, 1, 50.0, 2, 1, "web", 0.0),
        # Its order and its (ios) visit at the as_of instant belong to the label window only.
        fx.BOUNDARY: (0, None, None, 0.0, 1, 18, "web", 1.0),
        "B01": (0, None, None, 0.0, 1, 18, "web", 0.0),
    }
    assert fx.LATE_CRM not in rows
    assert fx.FUTURE not in rows


def test_every_active_customer_is_scored_once_by_the_contract(
    spark: SparkSession, world: World
) -> None:
    table = tables.read(spark, tables.table_path(world.config, Layer.GOLD, job.PROPENSITY))
    assert [(f.name, f.dataType.simpleString()) for f in table.schema.fields] == CONTRACT
    rows = _scores(spark, world.config)
    assert [r["customer_id"] for r in rows] == sorted(fx.SCORED)  # not FUTURE
    version = job.model_version(world.config.propensity, fx.RUN_DATE)
    assert {(r["as_of_date"], r["model_version"]) for r in rows} == {(fx.RUN_DATE, version)}
    for r in rows:
        assert r["expected_value"] == pytest.approx(r["probability"] * r["predicted_spend"])
    # Calibrated on a validation window where every frequent buyer bought and nobody else did.
    probability = {r["customer_id"]: r["probability"] for r in rows}
    assert min(probability[c] for c in fx.FREQUENT) > 0.85
    assert max(probability[c] for c in [*fx.RECENT, *fx.BROWSERS]) < 0.01
    # No order or visit in the last 90 days (no feature row at all): no churn risk.
    churn = {r["customer_id"]: r["churn_risk"] for r in rows}
    assert churn[fx.LATE_CRM] is None
    # Frequent buyers keep buying; the one-off buyers and browsers do not.
    assert (
        max(churn[c] for c in fx.FREQUENT) < 0.5 < min(churn[c] for c in [*fx.RECENT, *fx.BROWSERS])
    )


def test_deciles_hold_a_tenth_each_best_first(spark: SparkSession, world: World) -> None:
    rows = _scores(spark, world.config)
    by_decile: dict[int, list[Any]] = {}
    for r in rows:
        by_decile.setdefault(r["decile"], []).append(r)
    assert {d: len(v) for d, v in by_decile.items()} == dict.fromkeys(range(1, 11), 6)
    for d in range(1, 10):
        assert min(r["probability"] for r in by_decile[d]) >= max(
            r["probability"] for r in by_decile[d + 1]
        )
    # The planted buyers rank above everyone else with a history.
    probability = {r["customer_id"]: r["probability"] for r in rows}
    assert min(probability[c] for c in fx.FREQUENT) > max(
        probability[c] for c in [*fx.RECENT, *fx.BROWSERS]
    )


def test_model_beats_the_recency_baseline(spark: SparkSession, world: World) -> None:
    m = _metrics(spark, world.config)
    # Validation: 20 buyers (3 days since the last order), 20 one-off buyers of the day before
    # (ranked above them by recency) and 19 browsers who never bought (ranked last).
    assert m[("recency_baseline", "roc_auc", None)] == pytest.approx(19 / 39)
    assert m[("propensity", "roc_auc", None)] == pytest.approx(1.0)
    assert m[("propensity", "top_decile_precision", None)] == 1.0
    assert m[("recency_baseline", "top_decile_precision", None)] == 0.0
    assert m[("propensity", "customers", None)] == 59
    for model in ("propensity", "recency_baseline"):
        deciles = [m[(model, "customers", d)] for d in range(1, 11)]
        assert sum(deciles) == 59
        assert max(deciles) - min(deciles) <= 1
        assert m[(model, "cumulative_gain", 10)] == pytest.approx(1.0)
        assert m[(model, "base_rate", None)] == pytest.approx(20 / 59)
    # Perfectly separated and calibrated on the same window: no loss left; the baseline's is real.
    for metric in ("log_loss", "brier", "ece"):
        assert m[("propensity", metric, None)] == pytest.approx(0.0, abs=1e-3)
        assert m[("recency_baseline", metric, None)] > 0.15
    # A perfect ranking: every buyer before every non-buyer; its top decile (6 customers) all
    # buyers, 59 / 20 times the base rate. The baseline's top decile holds no buyer.
    assert m[("propensity", "pr_auc", None)] == pytest.approx(1.0)
    assert m[("propensity", "top_decile_lift", None)] == pytest.approx(59 / 20)
    assert m[("recency_baseline", "top_decile_lift", None)] == 0.0
    # Spend: the buyers' 4 orders of 20 EUR against 3 in the period before.
    assert m[("spend_last_period", "mae", None)] == pytest.approx(20.0)
    assert m[("spend_last_period", "mape", None)] == pytest.approx(0.25)
    # The gamma GLM predicts the buyers' 80 EUR of the window within ten cents.
    assert m[("spend", "mae", None)] < 0.1
    # Churn (no order in the window among the recently active): the 39 who did not buy, every
    # one ranked above the 20 frequent buyers.
    assert m[("churn", "base_rate", None)] == pytest.approx(39 / 59)
    assert m[("churn", "roc_auc", None)] == pytest.approx(1.0)
    assert m[("churn", "pr_auc", None)] == pytest.approx(1.0)
    # The tree challenger separates them too: a tie, which keeps the logistic model.
    assert m[("logistic", "roc_auc", None)] == pytest.approx(1.0)
    assert m[("gbt", "roc_auc", None)] == pytest.approx(1.0)
    assert (m[("logistic", "chosen", None)], m[("gbt", "chosen", None)]) == (1.0, 0.0)
    # Calibrated on the latest snapshot whose label window has ended (run date - 14): here the
    # validation snapshot itself. Platt's fit makes its mean the snapshot's base rate.
    assert m[("calibration", "customers", None)] == 59
    assert m[("calibration", "base_rate", None)] == pytest.approx(20 / 59)
    assert m[("calibration", "mean_predicted", None)] == pytest.approx(20 / 59, abs=1e-3)


def test_rerun_replaces_the_partition_with_the_same_rows(spark: SparkSession, world: World) -> None:
    assert [tuple(r) for r in _scores(spark, world.config)] == world.first
    path = tables.table_path(world.config, Layer.GOLD, job.PROPENSITY)
    commit = tables.last_commit(spark, path)
    assert commit.version == world.first_version + 1
    assert commit.rows("numOutputRows") == len(fx.SCORED)
    metrics = tables.read(spark, tables.table_path(world.config, Layer.OPS, job.METRICS))
    assert metrics.groupBy("model", "metric", "decile").count().where("count > 1").count() == 0


def test_model_manifest_and_report(spark: SparkSession, world: World) -> None:
    version = job.model_version(world.config.propensity, fx.RUN_DATE)
    directory = Path(job.models_path(world.config, version))
    for part in ("propensity", "calibration", "spend", "churn"):
        assert (directory / part / "metadata").is_dir(), part
    params = json.loads((directory / "params.json").read_text())
    assert params["train_as_of_dates"] == [fx.TRAIN_AS_OF.isoformat()]
    assert params["validation_as_of_date"] == fx.VALIDATION_AS_OF.isoformat()
    assert params["calibration_as_of_date"] == fx.VALIDATION_AS_OF.isoformat()
    assert params["model"] == job.LOGISTIC
    # Every fixture customer's exposure is the whole history: a constant, left out.
    assert params["features"] == {
        "used": ["days_since_last_order", "days_since_last_visit", "order_rate", "visit_rate",
                 "order_silence"],
        "used_categorical": ["loyalty_tier", "preferred_platform"],
        "dropped": {"exposure_days": "constant"},
    }  # fmt: skip
    for name, layer in job.INPUTS.items():
        path = tables.table_path(world.config, layer, name)
        assert params["inputs"][name] == {
            "path": path,
            "delta_version": tables.version(spark, path),
        }
    metrics = json.loads((directory / "metrics.json").read_text())
    top_feature = next(iter(metrics["coefficients"]))
    assert top_feature in {"order_rate", "order_silence", "visit_rate"}
    reports = Path(tables.reports_path(world.config, "propensity"))
    runs = sorted(p for p in reports.iterdir() if p.is_dir())
    assert len(runs) == 2  # one per run
    assert sorted(p.name for p in runs[-1].iterdir() if not p.name.startswith(".")) == [
        "calibration.png", "coefficients.png", "curves.png", "gains_lift.png", "index.html",
    ]  # fmt: skip
    page = (runs[-1] / "index.html").read_text()
    assert "recency_baseline" in page
    assert "exposure_days (constant)" in page


@pytest.fixture(scope="module")
def drift(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """Validated 28 days back (2026-06-02), where the frequent and the one-off buyers bought
    (RECENT's second order, offset 15, is in [06-02, 06-16)); the latest labelled snapshot is
    14 days back (06-16), where only the 20 frequent buyers of 59 did."""
    return fx.fitted(
        spark, tmp_path_factory, "propensity-drift", "propensity.validation_offset_days=28"
    )


def test_served_probabilities_follow_the_latest_base_rate(
    spark: SparkSession, drift: Config
) -> None:
    m = _metrics(spark, drift)
    assert m[("propensity", "base_rate", None)] == pytest.approx(40 / 59)  # validation
    assert m[("calibration", "base_rate", None)] == pytest.approx(20 / 59)
    assert m[("calibration", "mean_predicted", None)] == pytest.approx(20 / 59, abs=1e-3)
    served = [r["probability"] for r in _scores(spark, drift)]
    # Exact on the calibration snapshot only: the run date scores 60 customers (L00 has no
    # feature row), every feature 14 days on. The 20 frequent buyers stay the likely ones:
    # about 20 / 60, far from the validation snapshot's 40 / 59.
    assert sum(served) / len(served) == pytest.approx(20 / 59, abs=0.02)
    version = job.model_version(drift.propensity, fx.RUN_DATE)
    params = json.loads((Path(job.models_path(drift, version)) / "params.json").read_text())
    assert (params["validation_as_of_date"], params["calibration_as_of_date"]) == (
        "2026-06-02",
        fx.VALIDATION_AS_OF.isoformat(),
    )
