"""Offline evaluation on a time split: train before a cutoff, judge on the days after it.

Relevant items are what a customer interacted with after the cutoff *and had not seen before it*
(recommending what someone already looked at is easy and useless), so seen items are removed
from both the truth and the candidates. Only customers known at the cutoff are judged: the
others get fallbacks, whose quality the baselines measure anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import Column, DataFrame
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


def seen_items(train: DataFrame) -> DataFrame:
    """(customer_idx, excluded): item ids each customer interacted with before the cutoff."""
    return train.groupBy("customer_idx").agg(F.collect_set("item_idx").alias("excluded"))


def validation_truth(train: DataFrame, future: DataFrame) -> DataFrame:
    """(customer_idx, relevant array<double>) for customers known at the cutoff with new items."""
    known = train.select("customer_idx").distinct()
    fresh = future.join(
        train.select("customer_idx", "item_idx"), ["customer_idx", "item_idx"], "left_anti"
    ).join(known, "customer_idx", "left_semi")
    return fresh.groupBy("customer_idx").agg(
        F.sort_array(F.collect_set(F.col("item_idx").cast("double"))).alias("relevant")
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
