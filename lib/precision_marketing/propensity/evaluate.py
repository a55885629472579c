"""Ranks, deciles and the metrics of a scored, labelled set.

Deciles need an exact global rank (each decile holds a tenth of the customers). It is computed
without a single-partition window: a distributed sort, each row's position inside its sorted
partition, and the running total of the partitions' sizes (one small row per partition).
Metric tables are aggregates of at most `buckets` rows; only those reach the driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.propensity.model import evaluator

RANK = "rank"
DECILES = 10
POSITION_BITS = 33  # monotonically_increasing_id: partition id above, row number below
EPSILON = 1e-15


def with_rank(
    df: DataFrame, order: Sequence[Column], keep: Callable[[DataFrame], DataFrame]
) -> DataFrame:
    """Adds `rank` (1 = first in `order`) and `_n` (rows in total).

    `order` must be a total order (end it with the key), so ties are broken the same way in
    every run. `keep` persists the numbered frame: both uses must see the same numbering.
    """
    numbered = keep(df.orderBy(*order).withColumn("_id", F.monotonically_increasing_id()))
    part = F.shiftright(F.col("_id"), POSITION_BITS)
    sizes = numbered.groupBy(part.alias("_part")).agg(F.count(F.lit(1)).alias("_size"))
    # One row per partition: the rows of all partitions before it, and the total.
    before = sizes.alias("a").join(sizes.alias("b"), F.col("b._part") < F.col("a._part"), "left")
    offsets = before.groupBy(F.col("a._part").alias("_part")).agg(
        F.coalesce(F.sum("b._size"), F.lit(0)).alias("_offset")
    )
    total = sizes.agg(F.sum("_size").alias("_n"))
    position = F.col("_id") - F.shiftleft(F.col("_part"), POSITION_BITS)
    return (
        numbered.withColumn("_part", part)
        .join(F.broadcast(offsets), "_part")
        .crossJoin(F.broadcast(total))
        .withColumn(RANK, F.col("_offset") + position + 1)
        .drop("_id", "_part", "_offset")
    )


def bucket(rank: Column, total: Column, buckets: int) -> Column:
    """1..buckets by rank, like SQL's ntile: sizes differ by at most one row, the first
    buckets taking the extra rows."""
    size = F.floor(total / buckets)
    extra = total % buckets  # buckets holding size + 1 rows
    in_large = extra * (size + 1)
    return (
        F.when(rank <= in_large, F.floor((rank - 1) / (size + 1)) + 1)
        .otherwise(extra + F.floor((rank - in_large - 1) / size) + 1)
        .cast("int")
    )


@dataclass(frozen=True)
class Bucket:
    """One decile (or curve bucket) of a ranked set, best scores first."""

    bucket: int
    customers: int
    positives: int
    mean_predicted: float | None


def bucket_table(
    ranked: DataFrame, buckets: int, label: str, probability: str | None
) -> list[Bucket]:
    """Customers, positives and mean predicted probability per bucket of a with_rank frame."""
    predicted = F.avg(probability) if probability else F.lit(None).cast("double")
    rows = (
        ranked.groupBy(bucket(F.col(RANK), F.col("_n"), buckets).alias("b"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.col(label).cast("long")).alias("pos"),
            predicted.alias("pred"),
        )
        .orderBy("b")
        .collect()  # at most `buckets` rows
    )
    return [Bucket(r["b"], r["n"], int(r["pos"] or 0), r["pred"]) for r in rows]


@dataclass(frozen=True)
class DecileRow:
    decile: int
    customers: int
    positives: int
    mean_predicted: float | None
    observed_rate: float
    lift: float
    cumulative_gain: float  # share of all positives in deciles 1..d
    cumulative_lift: float


def gains(table: Sequence[Bucket]) -> list[DecileRow]:
    """Lift and cumulative gains by decile from a bucket table."""
    total = sum(b.customers for b in table)
    positives = sum(b.positives for b in table)
    base = positives / total if total else 0.0
    out, seen, captured = [], 0, 0
    for b in table:
        seen += b.customers
        captured += b.positives
        rate = b.positives / b.customers if b.customers else 0.0
        gain = captured / positives if positives else 0.0
        share = seen / total if total else 0.0
        out.append(
            DecileRow(
                b.bucket, b.customers, b.positives, b.mean_predicted, rate,
                rate / base if base else 0.0, gain, gain / share if share else 0.0,
            )
        )  # fmt: skip
    return out


def calibration_error(rows: Sequence[DecileRow]) -> float:
    """Expected calibration error: |mean predicted - observed| weighted by decile size."""
    total = sum(r.customers for r in rows)
    return sum(r.customers / total * abs((r.mean_predicted or 0.0) - r.observed_rate) for r in rows)


@dataclass(frozen=True)
class CurvePoint:
    """ROC and PR coordinates after taking the top `share` of customers."""

    share: float
    tpr: float
    fpr: float
    precision: float


def curve(table: Sequence[Bucket]) -> list[CurvePoint]:
    total = sum(b.customers for b in table)
    positives = sum(b.positives for b in table)
    negatives = total - positives
    points = [CurvePoint(0.0, 0.0, 0.0, 1.0)]
    seen = captured = 0
    for b in table:
        seen += b.customers
        captured += b.positives
        points.append(
            CurvePoint(
                seen / total,
                captured / positives if positives else 0.0,
                (seen - captured) / negatives if negatives else 0.0,
                captured / seen if seen else 1.0,
            )
        )
    return points


def ranking_metrics(df: DataFrame, score: str, label: str) -> dict[str, float]:
    """ROC AUC and PR AUC of a double score (ties handled by Spark's threshold sweep)."""
    scored = df.select(F.col(score).cast("double").alias("rawPrediction"), F.col(label))
    return {
        "roc_auc": float(evaluator("areaUnderROC", label).evaluate(scored)),
        "pr_auc": float(evaluator("areaUnderPR", label).evaluate(scored)),
    }


def probability_metrics(df: DataFrame, probability: str, label: str) -> dict[str, float]:
    """Log loss and Brier score of probabilities (clipped away from 0 and 1 for the log)."""
    p = F.least(F.greatest(F.col(probability), F.lit(EPSILON)), F.lit(1 - EPSILON))
    y = F.col(label)
    row = df.agg(
        F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss"),
        F.avg(F.pow(F.col(probability) - y, 2)).alias("brier"),
        F.count(F.lit(1)).alias("customers"),
        F.avg(y).alias("base_rate"),
    ).first()
    assert row is not None
    return {k: float(row[k]) if row[k] is not None else math.nan for k in row.asDict()}


def regression_metrics(df: DataFrame, prediction: str, actual: str) -> dict[str, float]:
    """MAE and MAPE (actual values must be positive: spend of buyers)."""
    error = F.abs(F.col(prediction) - F.col(actual))
    row = df.agg(
        F.avg(error).alias("mae"),
        F.avg(error / F.col(actual)).alias("mape"),
        F.count(F.lit(1)).alias("customers"),
    ).first()
    assert row is not None
    return {k: float(row[k]) if row[k] is not None else math.nan for k in row.asDict()}
