"""Offline evaluation: train before a cutoff, judge on what came after it.

The cutoff is one day for every customer (a time split) or each customer's newest item (a
leave-last-out holdout, when the time split would judge too few customers). Relevant items are
what a customer interacted with after the cutoff and is not excluded from at the cutoff, by the
same rule (`interactions.excluded_pairs`) the served lists use, and the same excluded items are
removed from the candidates: the metric measures what is served. Only customers known at the
cutoff are judged: the others get fallbacks, whose quality the baselines measure anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

RankingMetric = Literal["precisionAtK", "recallAtK", "ndcgAtK", "meanAveragePrecisionAtK"]
METRICS: tuple[RankingMetric, ...] = (
    "precisionAtK",
    "recallAtK",
    "ndcgAtK",
    "meanAveragePrecisionAtK",
)
COVERAGE = "catalogCoverageAtK"


@dataclass(frozen=True)
class Metric:
    model: str
    k: int
    metric: str
    value: float


def seen_items(excluded: DataFrame, key: str = "customer_idx") -> DataFrame:
    """(key, excluded array<int>): each customer's excluded item ids, from (key, item_idx)
    pairs of `interactions.excluded_pairs`; the served lists and the evaluation both use it."""
    return excluded.groupBy(key).agg(F.sort_array(F.collect_set("item_idx")).alias("excluded"))


def _relevant(pairs: DataFrame) -> DataFrame:
    return pairs.groupBy("customer_idx").agg(
        F.sort_array(F.collect_set(F.col("item_idx").cast("double"))).alias("relevant")
    )


def validation_truth(train: DataFrame, future: DataFrame, excluded: DataFrame) -> DataFrame:
    """(customer_idx, relevant array<double>): items of customers known at the cutoff after
    it, less what they are excluded from at the cutoff ((customer_idx, item_idx) pairs)."""
    known = train.select("customer_idx").distinct()
    fresh = future.join(
        excluded.select("customer_idx", "item_idx"), ["customer_idx", "item_idx"], "left_anti"
    ).join(known, "customer_idx", "left_semi")
    return _relevant(fresh)


def last_item_holdout(interactions: DataFrame) -> DataFrame:
    """(customer_idx, item_idx, holdout_ts): each customer's newest item (latest first signal,
    ties to the larger item id), for customers with at least two items (one stays to train on)."""
    per_customer = Window.partitionBy("customer_idx")
    newest = per_customer.orderBy(F.col("first_ts").desc(), F.col("item_idx").desc())
    return (
        interactions.select(
            "customer_idx",
            "item_idx",
            "first_ts",
            F.count(F.lit(1)).over(per_customer).alias("_items"),
            F.row_number().over(newest).alias("_n"),
        )
        .where((F.col("_n") == 1) & (F.col("_items") >= 2))
        .select("customer_idx", "item_idx", F.col("first_ts").alias("holdout_ts"))
    )


def excluded_before_holdout(excluded: DataFrame, holdout: DataFrame) -> DataFrame:
    """(customer_idx, item_idx): pairs excluded before the customer's holdout (`since` first)."""
    return (
        excluded.join(holdout.select("customer_idx", "holdout_ts"), "customer_idx")
        .where(F.col("since") < F.col("holdout_ts"))
        .select("customer_idx", "item_idx")
    )


def holdout_truth(holdout: DataFrame, excluded_before: DataFrame) -> DataFrame:
    """(customer_idx, relevant array<double>): the held-out item, unless already excluded."""
    return _relevant(
        holdout.select("customer_idx", "item_idx").join(
            excluded_before, ["customer_idx", "item_idx"], "left_anti"
        )
    )


def ranked_lists(ranked: DataFrame) -> DataFrame:
    """(customer_idx, rank, item_idx) rows -> (customer_idx, predicted array<double>) by rank."""
    return ranked.groupBy("customer_idx").agg(
        F.transform(
            F.sort_array(F.collect_list(F.struct("rank", "item_idx"))),
            lambda x: x["item_idx"].cast("double"),
        ).alias("predicted")
    )


def _hits(predicted: Column, relevant: Column) -> Column:
    """1.0/0.0 per predicted position: is that item relevant?"""
    return F.transform(predicted, lambda x: F.array_contains(relevant, x).cast("double"))


def _sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)


def _discounted(values: Column) -> Column:
    """Sum of values[i] / log2(i + 2): the DCG of a 0/1 gain vector."""
    return _sum(F.transform(values, lambda x, i: x / F.log2(i + F.lit(2))))


def per_customer_metrics(predicted: Column, relevant: Column, k: int) -> dict[str, Column]:
    """Spark RankingMetrics' definitions (binary relevance) as column expressions.

    precision@k = hits in top k / k; recall@k = hits / |relevant|; NDCG@k = DCG of the top k
    over the DCG of an ideal list; MAP@k = sum over relevant positions i of precision@i,
    divided by min(|relevant|, k).
    """
    top = F.slice(predicted, 1, k)
    hits = _hits(top, relevant)
    n_hits = _sum(hits)
    n_rel = F.size(relevant).cast("double")
    ideal = F.transform(F.slice(relevant, 1, k), lambda _: F.lit(1.0))
    running = F.transform(hits, lambda h, i: h * _sum(F.slice(hits, 1, i + 1)) / (i + 1))
    return {
        "precisionAtK": n_hits / F.lit(float(k)),
        "recallAtK": n_hits / n_rel,
        "ndcgAtK": _discounted(hits) / _discounted(ideal),
        "meanAveragePrecisionAtK": _sum(running) / F.least(n_rel, F.lit(float(k))),
    }


def ranking_metrics(
    model: str, predicted: DataFrame, truth: DataFrame, ks: Sequence[int]
) -> list[Metric]:
    """precision, recall, NDCG and MAP at each k, averaged over the customers in `truth`.

    The same definitions as Spark's RankingEvaluator (a test checks they agree) computed for
    every k and metric in one aggregation, where the evaluator makes one pass per (metric, k).
    A customer with no prediction counts as an empty list (scores 0), so a model cannot look
    better by skipping hard customers.
    """
    judged = truth.join(predicted, "customer_idx", "left").select(
        "relevant",
        F.coalesce(F.col("predicted"), F.array().cast("array<double>")).alias("predicted"),
    )
    columns = [
        F.avg(expr).alias(f"{name}@{k}")
        for k in ks
        for name, expr in per_customer_metrics(F.col("predicted"), F.col("relevant"), k).items()
    ]
    row = judged.agg(*columns).first()  # one row of len(ks) x 4 averages
    assert row is not None
    return [
        Metric(model, k, name, float(row[f"{name}@{k}"] or 0.0)) for k in ks for name in METRICS
    ]


def catalog_coverage(
    model: str, ranked: DataFrame, catalog_size: int, ks: Sequence[int]
) -> list[Metric]:
    """Share of the catalog that appears in anyone's top k: popularity scores low here."""
    row = ranked.agg(
        *[
            F.count_distinct(F.when(F.col("rank") <= k, F.col("item_idx"))).alias(f"k{k}")
            for k in ks
        ]
    ).first()
    assert row is not None  # a global aggregate always has one row
    return [
        Metric(model, k, COVERAGE, row[f"k{k}"] / catalog_size if catalog_size else 0.0) for k in ks
    ]
