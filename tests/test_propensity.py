"""propensity transforms on hand-built rows: label windows, class weights, ranks and deciles,
gains and calibration arithmetic, the snapshot dates and the feature names."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from precision_marketing.config import ConfigError, load_config
from precision_marketing.features import availability
from precision_marketing.propensity import evaluate, job, model, transforms
from precision_marketing.propensity.evaluate import Bucket
from tests import features_fixture as ff

AS_OF = date(2026, 6, 1)
H = 14
CFG = replace(load_config("test").propensity, horizon_days=H, churn_active_days=90)

SNAPSHOT = StructType(
    [
        StructField("customer_id", StringType(), False),
        StructField("days_since_last_order", IntegerType(), True),
        StructField("days_since_last_visit", IntegerType(), True),
        StructField("as_of_date", DateType(), False),
    ]
)


def _lines() -> list[tuple[Any, ...]]:
    """One customer per boundary case; every line is one unit of item i2 (10 EUR)."""
    line = ff.line
    return [
        line("o1", 1, "first", "i2", 1, 10.0, "2026-06-01T00:00"),  # the window's first instant
        line("o2", 1, "last", "i2", 1, 10.0, "2026-06-14T23:59"),  # its last day
        line("o3", 1, "after", "i2", 1, 10.0, "2026-06-15T00:00"),  # the day after: outside
        line("o4", 1, "before", "i2", 1, 10.0, "2026-05-31T23:59"),  # before as_of: outside
        line("o5", 1, "cancelled", "i2", 1, 10.0, "2026-06-05T10:00", status="cancelled"),
        line("o6", 1, "refunded", "i2", 1, 10.0, "2026-06-05T10:00", refunded=1,
             refunded_at="2026-06-07T00:00", status="refunded"),
        line("o7", 1, "partial", "i2", 2, 10.0, "2026-06-05T10:00", refunded=1,
             refunded_at="2026-06-07T00:00", status="partially_refunded"),
        # Two orders in the window and one the week before as_of.
        line("o8", 1, "twice", "i2", 1, 10.0, "2026-06-02T08:00"),
        line("o9", 1, "twice", "i3", 1, 40.0, "2026-06-10T08:00"),
        line("o10", 1, "twice", "i1", 1, 100.0, "2026-05-25T08:00"),
    ]  # fmt: skip


CUSTOMERS = ["first", "last", "after", "before", "cancelled", "refunded", "partial", "twice",
             "none"]  # fmt: skip


def _labelled(spark: SparkSession) -> dict[str, dict[str, Any]]:
    snapshot = spark.createDataFrame(
        [(c, 5 if c == "twice" else None, 100 if c == "none" else None, AS_OF)
         for c in CUSTOMERS],
        SNAPSHOT,
    )  # fmt: skip
    lines = spark.createDataFrame(_lines(), ff.ORDER_LINES)
    items = spark.createDataFrame(ff.BASE_ITEMS, ff.ITEMS)
    rows = transforms.labelled(snapshot, lines, items, AS_OF, CFG).collect()
    return {r["customer_id"]: r.asDict() for r in rows}


def test_label_window_is_as_of_to_as_of_plus_h_kept_lines_only(spark: SparkSession) -> None:
    rows = _labelled(spark)
    got = {c: (r["label"], r["spend_next"], r["spend_previous"]) for c, r in rows.items()}
    assert got == {
        "first": (1.0, 10.0, 0.0),
        "last": (1.0, 10.0, 0.0),
        "after": (0.0, 0.0, 0.0),
        "before": (0.0, 0.0, 10.0),  # last period's spend, not this one's
        "cancelled": (0.0, 0.0, 0.0),
        "refunded": (0.0, 0.0, 0.0),
        "partial": (1.0, 10.0, 0.0),  # one of two units kept
        "twice": (1.0, 50.0, 100.0),
        "none": (0.0, 0.0, 0.0),
    }
    assert {c: r["churn_label"] for c, r in rows.items()} == {
        c: 1.0 - r["label"] for c, r in rows.items()
    }
    # Active in the last 90 days: an order 5 days ago; "none" last visited 100 days ago.
    assert {c for c, r in rows.items() if r["recently_active"]} == {"twice"}


def test_label_rows_after_as_of_never_reach_last_periods_spend(spark: SparkSession) -> None:
    """A refund after as_of does not reduce the spend the baseline saw at as_of."""
    lines = spark.createDataFrame(
        [ff.line("o1", 1, "c", "i2", 1, 10.0, "2026-05-30T08:00", refunded=1,
                 refunded_at="2026-06-03T00:00", status="refunded")],
        ff.ORDER_LINES,
    )  # fmt: skip
    items = spark.createDataFrame(ff.BASE_ITEMS, ff.ITEMS)
    spend = transforms.previous_spend(lines, items, AS_OF, H).collect()
    assert [(r["customer_id"], r["spend_previous"]) for r in spend] == [("c", 10.0)]


def test_class_weights_balance_the_classes(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("a", 1.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)], "customer_id string, label double"
    )
    weights = {r["customer_id"]: r["class_weight"] for r in
               transforms.with_class_weights(df).collect()}  # fmt: skip
    # n / (2 x class size): 4 / 2 for the one buyer, 4 / 6 for each of three non-buyers.
    assert weights == pytest.approx({"a": 2.0, "b": 2 / 3, "c": 2 / 3, "d": 2 / 3})
    one_class = transforms.with_class_weights(df.where("label = 0")).collect()
    assert {r["class_weight"] for r in one_class} == {1.0}


def _ranked(spark: SparkSession, scores: list[tuple[str, float]]) -> list[Any]:
    df = spark.createDataFrame(scores, "customer_id string, score double").repartition(3)
    kept: list[DataFrame] = []

    def keep(frame: DataFrame) -> DataFrame:
        kept.append(frame.persist())
        return frame

    ranked = evaluate.with_rank(df, [F.col("score").desc(), F.col("customer_id")], keep)
    try:
        return (
            ranked.select(
                "customer_id",
                evaluate.RANK,
                evaluate.bucket(F.col(evaluate.RANK), F.col("_n"), 10).alias("decile"),
            )
            .orderBy(evaluate.RANK)
            .collect()
        )
    finally:
        for frame in kept:
            frame.unpersist()


def test_deciles_hold_a_tenth_each_ties_by_customer_id(spark: SparkSession) -> None:
    # 30 customers, scores in three tied blocks of ten (c00..c09 score 3, c10..c19 2, ...).
    scores = [(f"c{i:02d}", float(3 - i // 10)) for i in range(30)][::-1]
    rows = _ranked(spark, scores)
    assert [r["rank"] for r in rows] == list(range(1, 31))
    assert [r["customer_id"] for r in rows] == [f"c{i:02d}" for i in range(30)]
    assert [r["decile"] for r in rows] == [d for d in range(1, 11) for _ in range(3)]


def test_decile_sizes_differ_by_at_most_one(spark: SparkSession) -> None:
    rows = _ranked(spark, [(f"c{i:02d}", float(i)) for i in range(25)])
    sizes = [sum(1 for r in rows if r["decile"] == d) for d in range(1, 11)]
    assert sizes == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
    assert rows[0]["customer_id"] == "c24"  # the highest score ranks first


def test_gains_lift_and_calibration_error() -> None:
    table = [Bucket(1, 10, 6, 0.5), Bucket(2, 10, 3, 0.3), Bucket(3, 20, 1, 0.1)]
    rows = evaluate.gains(table)
    # 10 buyers in 40: base rate 0.25.
    assert [r.observed_rate for r in rows] == [0.6, 0.3, 0.05]
    assert [r.lift for r in rows] == pytest.approx([2.4, 1.2, 0.2])
    assert [r.cumulative_gain for r in rows] == pytest.approx([0.6, 0.9, 1.0])
    assert [r.cumulative_lift for r in rows] == pytest.approx([2.4, 1.8, 1.0])
    # ECE = 0.25 x 0.1 + 0.25 x 0 + 0.5 x 0.05
    assert evaluate.calibration_error(rows) == pytest.approx(0.05)
    curve = evaluate.curve(table)
    assert [p.tpr for p in curve] == pytest.approx([0.0, 0.6, 0.9, 1.0])
    assert [p.fpr for p in curve] == pytest.approx([0.0, 4 / 30, 11 / 30, 1.0])
    assert [p.precision for p in curve] == pytest.approx([1.0, 0.6, 0.45, 0.25])


def test_ranking_and_probability_metrics(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(0.9, 1.0), (0.8, 0.0), (0.7, 1.0), (0.1, 0.0)], "p double, label double"
    )
    ranking = evaluate.ranking_metrics(df, "p", "label")
    # Positive-negative pairs ranked right: (0.9, 0.8), (0.9, 0.1), (0.7, 0.1) of four.
    assert ranking["roc_auc"] == pytest.approx(0.75)
    probability = evaluate.probability_metrics(df, "p", "label")
    assert probability["brier"] == pytest.approx((0.01 + 0.64 + 0.09 + 0.01) / 4)
    assert probability["base_rate"] == 0.5


def test_platt_calibration_keeps_the_order_and_fits_the_outcomes(spark: SparkSession) -> None:
    """Labels 1 at scores 0, 3, 6, 7, 8, 9: not separable, so the unregularized logistic fit
    has a maximum, where its score equations hold: the probabilities sum to the 6 positives
    and, weighted by score, to 0 + 3 + 6 + 7 + 8 + 9 = 33."""
    df = spark.createDataFrame(
        [(f"c{i}", float(i), float(i % 3 == 0 or i > 6)) for i in range(10)],
        "customer_id string, score double, label double",
    )
    fitted = model.calibrator("platt", "score").fit(df)
    rows = model.calibrated(fitted, df, "score", "p").orderBy("score").collect()
    probabilities = [r["p"] for r in rows]
    assert sum(probabilities) == pytest.approx(6.0, abs=1e-3)
    assert sum(p * i for i, p in enumerate(probabilities)) == pytest.approx(33.0, abs=1e-2)
    assert probabilities == sorted(probabilities)
    assert not [c for c in model.calibrated(fitted, df, "score", "p").columns if c.startswith("_")]


def test_snapshot_dates_keep_training_windows_before_validation() -> None:
    run = date(2026, 6, 30)
    cfg = replace(CFG, train_as_of_offsets_days=[60, 30], validation_offset_days=14)
    assert transforms.snapshot_dates(run, cfg) == (
        [date(2026, 5, 1), date(2026, 5, 31)],
        date(2026, 6, 16),
    )
    with pytest.raises(ConfigError, match="overlap"):
        transforms.snapshot_dates(run, replace(cfg, train_as_of_offsets_days=[27]))
    with pytest.raises(ConfigError, match="end by the run date"):
        transforms.snapshot_dates(run, replace(cfg, validation_offset_days=13))


def test_feature_names_follow_the_vector_slots(spark: SparkSession) -> None:
    cfg = replace(
        CFG,
        derived_features={"double_orders": "orders * 2"},
        model_features=["orders", "double_orders"],
        log_features=["orders"],
        categorical_features=["tier"],
    )
    df = spark.createDataFrame(
        [("a", 1, "gold"), ("b", None, "none"), ("c", 3, None)],
        StructType(
            [
                StructField("customer_id", StringType()),
                StructField("orders", IntegerType()),
                StructField("tier", StringType()),
            ]
        ),
    )
    model.check_features(df.columns, cfg)
    prepared = model.preparation(cfg).fit(df).transform(df)
    # Alphabetical categories (null is "missing"), then the slot of values unseen in training.
    assert model.slot_names(prepared, cfg) == [
        "orders", "double_orders", "tier=gold", "tier=missing", "tier=none", "tier=__unknown",
    ]  # fmt: skip
    # A null count takes the median of the others (log1p 1 and log1p 3: the lower one).
    imputed = {r["customer_id"]: r["imp_num_orders"] for r in prepared.collect()}
    assert imputed == pytest.approx({"a": math.log(2), "b": math.log(2), "c": math.log(4)})
    with pytest.raises(ConfigError, match="'absent'"):
        model.check_features(df.columns, replace(cfg, model_features=["absent"]))


def test_globs_expand_against_the_snapshot_columns() -> None:
    cfg = replace(
        CFG,
        derived_features={"spend_share_total": "1.0"},
        model_features=["orders", "spend_share_*", "view_share_*", "orders"],
        log_features=["spend_share_*"],
    )
    columns = ["customer_id", "orders", "view_share_films", "spend_share_films", "spend_share_tv"]
    resolved = model.resolved(cfg, columns)
    assert resolved.model_features == [
        "orders", "spend_share_films", "spend_share_tv", "spend_share_total", "view_share_films",
    ]  # fmt: skip
    assert resolved.log_features == ["spend_share_films", "spend_share_tv", "spend_share_total"]
    assert model.resolved(replace(cfg, model_features=["clicks_*"]), columns).model_features == []


def test_features_without_data_are_left_out_before_the_imputer(spark: SparkSession) -> None:
    """No events: visits and platform are null for all, so the rate derived from them is null
    and is left out too; no discounts: a constant. The rest fits (the Imputer never sees an
    all-null column)."""
    cfg = replace(
        CFG,
        derived_features={"visit_rate": "visits * 30.0 / tenure"},
        model_features=["orders", "tenure", "visits", "visit_rate", "discount_share",
                        "days_since_last_visit"],
        log_features=["orders", "visits"],
        categorical_features=["tier", "platform"],
    )  # fmt: skip
    df = spark.createDataFrame(
        [("a", 1, 10, None, 0.0, None, "gold", None), ("b", 3, 20, None, 0.0, None, None, None)],
        "customer_id string, orders int, tenure int, visits int, discount_share double, "
        "days_since_last_visit int, tier string, platform string",
    )
    model.check_features(df.columns, cfg)
    checked = availability.check(
        model.with_derived(df, cfg),
        model.numeric_expressions(cfg),
        cfg.categorical_features,
        model="propensity",
    )
    assert checked.used == ["orders", "tenure"]
    assert checked.used_categorical == ["tier"]
    assert checked.dropped == {
        "visits": "all null",
        "visit_rate": "all null",
        "discount_share": "constant",
        "days_since_last_visit": "all null",
        "platform": "all null",
    }
    fit_cfg = model.for_fit(cfg, checked)
    assert (fit_cfg.log_features, fit_cfg.categorical_features) == (["orders"], ["tier"])
    prepared = model.preparation(fit_cfg).fit(df).transform(df)
    assert model.slot_names(prepared, fit_cfg) == [
        "orders", "tenure", "tier=gold", "tier=missing", "tier=__unknown",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"propensity: 1 usable numeric feature\(s\) \(orders\)"):
        availability.check(df, {"orders": "orders", "visits": "visits"}, model="propensity")


def test_the_tree_challenger_serves_when_only_a_tree_can_rank(spark: SparkSession) -> None:
    """Buyers are the customers with x in [0.3, 0.7): a band. Any logistic model ranks by x
    one way or the other, so each buyer outranks 6 of the 12 non-buyers (ROC AUC 0.5 exactly,
    or 0.5 by ties with a flat fit); two splits of a depth-2 tree isolate the band (AUC 1).
    Validation x lie between the training values, away from the split points."""
    cfg = replace(
        CFG,
        derived_features={},
        model_features=["x"],
        log_features=[],
        categorical_features=[],
    )

    def rows(offset: float) -> DataFrame:
        xs = [round(offset + 0.05 * i, 4) for i in range(20)]
        data = [(f"c{i:02d}", x, float(0.3 <= x < 0.7)) for i, x in enumerate(xs)]
        df = spark.createDataFrame(data, "customer_id string, x double, label double")
        return transforms.with_class_weights(df)

    train, validation = rows(0.0), rows(0.0125)
    prep = model.preparation(cfg).fit(train)
    prepared = prep.transform(train).cache()
    tuned = model.tune(prepared, cfg)
    judged = job.challenge(job.candidates(prep, prepared, tuned, cfg), validation, cfg)
    assert [(c.name, c.metrics["roc_auc"]) for c in judged] == [
        (job.GBT, pytest.approx(1.0)),
        (job.LOGISTIC, pytest.approx(0.5)),
    ]
    # Without the challenger the logistic model serves, whatever it scores.
    alone = replace(cfg, gbt=replace(cfg.gbt, enabled=False))
    only = job.challenge(job.candidates(prep, prepared, tuned, alone), validation, alone)
    assert [c.name for c in only] == [job.LOGISTIC]
    prepared.unpersist()
