"""Pure figures of the monitor stage: drift of model inputs, realized quality of past scorings.

Every function takes DataFrames and returns a DataFrame (or a handful of rows that do not grow
with customers: one per feature, decile or metric). Purchases and labels come from the stages'
own definitions (`propensity.transforms.window_outcomes`, `recommend.interactions.bought_lines`),
so "bought" means here exactly what the models were trained to predict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from precision_marketing.propensity import evaluate
from precision_marketing.propensity.transforms import LABEL, window_outcomes
from precision_marketing.recommend.evaluate import per_customer_metrics
from precision_marketing.recommend.interactions import bought_lines

# percentile_approx's accuracy: rank error at most rows / ACCURACY (exact below that many rows).
PERCENTILE_ACCURACY = 100_000
FEATURE, VALUE, BIN = "feature", "value", "bin"

OK, WARN, REFIT = "ok", "warn", "refit"
SEVERITY = {OK: 0, WARN: 1, REFIT: 2}


@dataclass(frozen=True)
class Row:
    """One figure of gold/model_monitoring (the job adds the run date and run id)."""

    model: str
    model_version: str | None
    scored_as_of: date | None
    metric: str
    value: float | None
    threshold: float | None = None
    status: str = OK
    feature: str | None = None


def worst(statuses: Sequence[str]) -> str:
    """The most severe status of a model's rows ('ok' for none)."""
    return max(statuses, key=SEVERITY.__getitem__, default=OK)


def status(value: float | None, warn: float, refit: float | None = None) -> str:
    """'refit' at or above `refit`, 'warn' at or above `warn`, else 'ok' (also for None)."""
    if value is None:
        return OK
    if refit is not None and value >= refit:
        return REFIT
    return WARN if value >= warn else OK


# ------------------------------------------------------------------------------------------
# Drift


def long_values(snapshot: DataFrame, features: Sequence[str]) -> DataFrame:
    """(feature, value double): one row per customer and feature, nulls kept."""
    wide = snapshot.select(*[F.col(f).cast("double").alias(f) for f in features])
    return wide.unpivot([], list(features), FEATURE, VALUE)


def quantile_edges(training: DataFrame, bins: int) -> DataFrame:
    """(feature, edges array<double>): the inner edges of `bins` quantile bins of each
    feature's non-null training values, ties merged (a feature with few distinct values
    gets fewer bins). A feature null in every training row gets no edges (null)."""
    cuts = [i / bins for i in range(1, bins)]
    edges = F.percentile_approx(
        F.col(VALUE), F.array(*[F.lit(c) for c in cuts]), PERCENTILE_ACCURACY
    )
    return training.groupBy(FEATURE).agg(F.array_distinct(edges).alias("edges"))


def binned(values: DataFrame, edges: DataFrame) -> DataFrame:
    """(feature, bin, rows) of the non-null values. Bin i holds (edge[i-1], edge[i]]: the
    number of edges strictly below the value, so bins are the same for both snapshots."""
    inside = F.size(F.filter(F.col("edges"), lambda e: e < F.col(VALUE)))
    return (
        values.where(F.col(VALUE).isNotNull())
        .join(F.broadcast(edges.where(F.col("edges").isNotNull())), FEATURE)
        .groupBy(FEATURE, inside.alias(BIN))
        .agg(F.count(F.lit(1)).alias("rows"))
    )


def drift(training: DataFrame, current: DataFrame, features: Sequence[str], bins: int,
          epsilon: float) -> DataFrame:  # fmt: skip
    """(feature, psi, null_share_training, null_share_current) of two snapshots' features.

    PSI = sum over bins of (a - e) x ln(a / e), e and a the shares of the training and current
    snapshots' non-null values in each of `bins` fixed quantile bins of the training values.
    A bin that is empty in either snapshot gets the share `epsilon` instead of 0, so the log
    stays finite and one empty bin weighs a lot, as it should. Nulls are left out of the bins
    and measured on their own (share of nulls). PSI is null when either snapshot has no
    non-null value of the feature.
    """
    expected_long = long_values(training, features)
    actual_long = long_values(current, features)
    edges = quantile_edges(expected_long, bins)
    every_bin = edges.where(F.col("edges").isNotNull()).select(
        FEATURE, F.explode(F.sequence(F.lit(0), F.size("edges"))).alias(BIN)
    )

    def shares(counts: DataFrame, name: str) -> DataFrame:
        total = F.sum("rows").over(_by_feature())
        return counts.select(FEATURE, BIN, (F.col("rows") / total).alias(name))

    both = (
        every_bin.join(shares(binned(expected_long, edges), "e"), [FEATURE, BIN], "left")
        .join(shares(binned(actual_long, edges), "a"), [FEATURE, BIN], "left")
        .withColumn("_seen_a", F.max(F.col("a").isNotNull().cast("int")).over(_by_feature()))
        .withColumns(
            {
                "e": F.coalesce(F.col("e"), F.lit(epsilon)),
                "a": F.coalesce(F.col("a"), F.lit(epsilon)),
            }
        )
    )
    psi = both.groupBy(FEATURE).agg(
        F.when(
            F.max("_seen_a") > 0,
            F.sum((F.col("a") - F.col("e")) * F.log(F.col("a") / F.col("e"))),
        ).alias("psi")
    )

    def null_share(values: DataFrame, name: str) -> DataFrame:
        return values.groupBy(FEATURE).agg(F.avg(F.col(VALUE).isNull().cast("double")).alias(name))

    return (
        null_share(expected_long, "null_share_training")
        .join(null_share(actual_long, "null_share_current"), FEATURE, "full")
        .join(psi, FEATURE, "left")
        .select(FEATURE, "psi", "null_share_training", "null_share_current")
    )


def _by_feature() -> WindowSpec:
    return Window.partitionBy(FEATURE)


# ------------------------------------------------------------------------------------------
# Realized quality of past scorings


def matured(scored_dates: Sequence[date], run_date: date, window_days: int,
            lookback_days: int) -> list[date]:  # fmt: skip
    """Scoring dates whose outcome window [d, d + window) has ended by the run date, at most
    `lookback_days` old, oldest first."""
    oldest = run_date - timedelta(days=lookback_days)
    return sorted(
        d for d in scored_dates if oldest <= d and d + timedelta(days=window_days) <= run_date
    )


def propensity_outcomes(scores: DataFrame, order_lines: DataFrame, scored_as_of: date,
                        horizon_days: int) -> DataFrame:  # fmt: skip
    """One scoring's rows (customer_id, probability, decile) with `label`: a purchase in
    [as_of, as_of + horizon), by the label definition the model was trained on."""
    bought = window_outcomes(order_lines, scored_as_of, horizon_days)
    return scores.join(bought.select("customer_id", "orders"), "customer_id", "left").select(
        "customer_id",
        "probability",
        "decile",
        (F.coalesce(F.col("orders"), F.lit(0)) > 0).cast("double").alias(LABEL),
    )


@dataclass(frozen=True)
class PropensityFigures:
    roc_auc: float
    pr_auc: float
    base_rate: float
    deciles: list[evaluate.DecileRow]

    @property
    def top_decile_lift(self) -> float:
        return self.deciles[0].lift if self.deciles else float("nan")

    @property
    def calibration_error(self) -> float:
        return evaluate.calibration_error(self.deciles) if self.deciles else float("nan")


def propensity_figures(labelled: DataFrame) -> PropensityFigures:
    """ROC and PR AUC (Spark's BinaryClassificationEvaluator, no per-customer collect), and
    lift and calibration by the deciles as served (gold/propensity's `decile`, 1 = best)."""
    ranking = evaluate.ranking_metrics(labelled, "probability", LABEL)
    rows = (
        labelled.groupBy("decile")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.col(LABEL).cast("long")).alias("pos"),
            F.avg("probability").alias("pred"),
        )
        .orderBy("decile")
        .collect()  # at most 10 rows
    )
    table = [evaluate.Bucket(r["decile"], r["n"], int(r["pos"] or 0), r["pred"]) for r in rows]
    deciles = evaluate.gains(table)
    customers = sum(b.customers for b in table)
    base = sum(b.positives for b in table) / customers if customers else 0.0
    return PropensityFigures(ranking["roc_auc"], ranking["pr_auc"], base, deciles)


def served_lists(recommendations: DataFrame) -> DataFrame:
    """(customer_id, predicted array<string>): one scoring's served items in rank order."""
    return recommendations.groupBy("customer_id").agg(
        F.transform(
            F.sort_array(F.collect_list(F.struct("rank", "item_id"))), lambda x: x["item_id"]
        ).alias("predicted")
    )


def bought_after(order_lines: DataFrame, scored_as_of: date, window_days: int) -> DataFrame:
    """(customer_id, relevant array<string>): the items each customer bought in
    [as_of, as_of + window), by recommend's purchase definition (kept lines)."""
    end = scored_as_of + timedelta(days=window_days)
    return (
        bought_lines(order_lines, end, window_days)
        .groupBy("customer_id")
        .agg(F.sort_array(F.collect_set("item_id")).alias("relevant"))
    )


def recommendation_figures(served: DataFrame, bought: DataFrame, k: int) -> DataFrame:
    """One row: customers, hit_rate, recall_at_k, ndcg_at_k of the served lists.

    Judged are the served customers who bought something in the window (the others could not
    score a hit). hit_rate: share of them who bought a served item (any rank); recall@k and
    NDCG@k by recommend's offline definitions (`recommend.evaluate.per_customer_metrics`), so
    served and offline figures compare.
    """
    judged = served.join(bought, "customer_id")
    metrics = per_customer_metrics(F.col("predicted"), F.col("relevant"), k)
    hit = F.exists(F.col("predicted"), lambda x: F.array_contains(F.col("relevant"), x))
    return judged.agg(
        F.count(F.lit(1)).alias("customers"),
        F.avg(hit.cast("double")).alias("hit_rate"),
        F.avg(metrics["recallAtK"]).alias("recall_at_k"),
        F.avg(metrics["ndcgAtK"]).alias("ndcg_at_k"),
    )


def migration_rates(migrations: DataFrame) -> DataFrame:
    """(as_of_date, model_version, previous_as_of_date, customers, migration_rate) from
    gold/segment_migrations: the share of customers in both snapshots whose segment changed
    (customers new or gone since the previous snapshot are left out)."""
    both = F.col("from_segment_id").isNotNull() & F.col("to_segment_id").isNotNull()
    moved = both & (F.col("from_segment_id") != F.col("to_segment_id"))
    return (
        migrations.groupBy("as_of_date", "model_version", "previous_as_of_date")
        .agg(
            F.sum(F.when(both, F.col("customers")).otherwise(0)).alias("customers"),
            F.sum(F.when(moved, F.col("customers")).otherwise(0)).alias("moved"),
        )
        .select(
            "as_of_date",
            "model_version",
            "previous_as_of_date",
            "customers",
            F.when(F.col("customers") > 0, F.col("moved") / F.col("customers")).alias(
                "migration_rate"
            ),
        )
    )
