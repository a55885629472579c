"""Item-to-item co-occurrence scores (SAR-style) in Spark SQL.

A customer's affinity for an item is its implicit confidence (event weights, time decay with
`recommend.half_life_days`, capped), the same number ALS trains on. Two items are similar when
the same customers touched both: Jaccard (|both| / |either|), lift (|both| / (|i| x |j|)) or the
raw count, over each customer's `max_history` strongest items. A customer's score for item j is
the sum over their items i of affinity(i) x similarity(i, j), over the `neighbours` most similar
items of each i (an item is its own neighbour, as in SAR, so a viewed item scores too).

Both caps keep the work bounded whatever the data: the self-join makes at most
customers x max_history^2 pairs and the scoring customers x max_history x neighbours rows.
"""

from __future__ import annotations

from typing import Literal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precision_marketing.recommend.serve import by_score

Similarity = Literal["jaccard", "lift", "count"]


def history(interactions: DataFrame, max_history: int) -> DataFrame:
    """(customer_idx, item_idx, affinity): each customer's `max_history` items with the
    largest confidence (ties to the smaller item id)."""
    strongest = Window.partitionBy("customer_idx").orderBy(
        F.col("confidence").desc(), F.col("item_idx")
    )
    return (
        interactions.select(
            "customer_idx",
            "item_idx",
            F.col("confidence").alias("affinity"),
            F.row_number().over(strongest).alias("_n"),
        )
        .where(F.col("_n") <= max_history)
        .drop("_n")
    )


def _similarity(both: F.Column, n_i: F.Column, n_j: F.Column, kind: Similarity) -> F.Column:
    if kind == "jaccard":
        return both / (n_i + n_j - both)
    if kind == "lift":
        return both / (n_i * n_j)
    return both


def item_similarity(
    hist: DataFrame, kind: Similarity, min_customers: int, neighbours: int
) -> DataFrame:
    """(item_idx, similar_idx, similarity, customers): each item's `neighbours` most similar
    items (itself included) among pairs that at least `min_customers` customers share; ties to
    the smaller item id."""
    pairs = hist.select("customer_idx", "item_idx")
    counts = pairs.groupBy("item_idx").agg(F.count(F.lit(1)).cast("double").alias("n"))
    other = pairs.select("customer_idx", F.col("item_idx").alias("similar_idx"))
    both = (
        pairs.join(other, "customer_idx")
        .groupBy("item_idx", "similar_idx")
        .agg(F.count(F.lit(1)).alias("customers"))
        .where(F.col("customers") >= min_customers)
    )
    with_counts = both.join(counts, "item_idx").join(
        counts.select(F.col("item_idx").alias("similar_idx"), F.col("n").alias("n_j")),
        "similar_idx",
    )
    scored = with_counts.select(
        "item_idx",
        "similar_idx",
        _similarity(F.col("customers").cast("double"), F.col("n"), F.col("n_j"), kind).alias(
            "similarity"
        ),
        "customers",
    )
    nearest = Window.partitionBy("item_idx").orderBy(
        F.col("similarity").desc(), F.col("similar_idx")
    )
    return (
        scored.withColumn("_n", F.row_number().over(nearest))
        .where(F.col("_n") <= neighbours)
        .drop("_n")
    )


def user_scores(hist: DataFrame, similarity: DataFrame, candidates: DataFrame) -> DataFrame:
    """(customer_idx, item_idx, score): sum of affinity x similarity over the customer's items,
    for candidate items only (item_idx of items that may be shown)."""
    shown = similarity.join(
        candidates.select(F.col("item_idx").alias("similar_idx")), "similar_idx", "left_semi"
    )
    return (
        hist.join(shown, "item_idx")
        .groupBy("customer_idx", F.col("similar_idx").alias("item_idx"))
        .agg(F.sum(F.col("affinity") * F.col("similarity")).alias("score"))
    )


def candidate_lists(scores: DataFrame, depth: int) -> DataFrame:
    """(customer_idx, cooccurrence array<struct<item_idx, score>>): the `depth` best per
    customer, best first (ties to the smaller item id). A customer's list holds at most
    max_history x neighbours entries before the cut."""
    return scores.groupBy("customer_idx").agg(
        F.slice(
            by_score(
                F.collect_list(F.struct("item_idx", F.col("score").cast("double").alias("score")))
            ),
            1,
            depth,
        ).alias("cooccurrence")
    )


def recommend(
    interactions: DataFrame,
    candidates: DataFrame,
    depth: int,
    max_history: int,
    neighbours: int,
    min_customers: int,
    kind: Similarity,
    customers: DataFrame | None = None,
) -> DataFrame:
    """interactions (customer_idx, item_idx, confidence) -> per-customer candidate lists, for
    `customers` (customer_idx) only when given: similarity still counts every customer, but
    tuning needs lists for the judged ones alone."""
    hist = history(interactions, max_history)
    sims = item_similarity(hist, kind, min_customers, neighbours)
    scored = hist if customers is None else hist.join(customers, "customer_idx", "left_semi")
    return candidate_lists(user_scores(scored, sims, candidates), depth)
