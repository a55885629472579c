"""Popularity lists: the baselines ALS must beat and the fallbacks for customers it cannot serve.

Popularity counts distinct customers, not signals, so one heavy user cannot make an item
"popular"; ties go to the larger summed confidence, then to the smaller item id (deterministic).
Lists are kept as one array per group (a few dozen entries), which joins cheaply to every
customer row downstream.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

CANDIDATE = "struct<item_idx:int,score:double>"
CANDIDATES = f"array<{CANDIDATE}>"


def _ranked(interactions: DataFrame, group: list[str], n: int) -> DataFrame:
    scored = interactions.groupBy(*group, "item_idx").agg(
        F.count(F.lit(1)).cast("double").alias("score"), F.sum("confidence").alias("_weight")
    )
    order = Window.partitionBy(*group).orderBy(
        F.col("score").desc(), F.col("_weight").desc(), F.col("item_idx")
    )
    ranked = scored.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") <= n)
    return ranked.groupBy(*group).agg(
        F.transform(
            F.sort_array(F.collect_list(F.struct("_rank", "item_idx", "score"))),
            lambda x: F.struct(x["item_idx"].alias("item_idx"), x["score"].alias("score")),
        ).alias("items")
    )


def popular(interactions: DataFrame, candidates: DataFrame, n: int) -> DataFrame:
    """One row, `items`: the n most popular candidate items (candidates: item_idx of items
    that may be shown, e.g. active ones)."""
    eligible = interactions.join(candidates.select("item_idx"), "item_idx", "left_semi")
    with_key = eligible.withColumn("_all", F.lit(1))
    return _ranked(with_key, ["_all"], n).select("items")


def segment_popular(
    interactions: DataFrame, segments: DataFrame, candidates: DataFrame, n: int
) -> DataFrame:
    """(segment_id, items): the n most popular candidate items among each segment's members."""
    eligible = interactions.join(candidates.select("item_idx"), "item_idx", "left_semi")
    members = eligible.join(segments.select("customer_id", "segment_id"), "customer_id")
    return _ranked(members, ["segment_id"], n)


def latest_segments(segments: DataFrame, on_or_before: date) -> DataFrame:
    """(customer_id, segment_id) from the newest segments snapshot not after `on_or_before`."""
    snapshot = segments.where(F.col("as_of_date") <= F.lit(on_or_before))
    newest = Window.partitionBy("customer_id").orderBy(
        F.col("as_of_date").desc(), F.col("model_version").desc()
    )
    return (
        snapshot.withColumn("_n", F.row_number().over(newest))
        .where(F.col("_n") == 1)
        .select("customer_id", "segment_id")
    )


def own_history(interactions: DataFrame, candidates: DataFrame) -> DataFrame:
    """(customer_idx, own_history): every candidate item a customer interacted with, strongest
    confidence first (ties to the smaller item id). Whatever the served lists exclude (bought
    items, by default) drops out downstream, so what is left is what they viewed or carted and
    did not buy: the retargeting list, strong where customers come back to what they browsed."""
    eligible = interactions.join(
        F.broadcast(candidates.select("item_idx")), "item_idx", "left_semi"
    )
    keyed = F.struct((-F.col("confidence")).alias("k"), F.col("item_idx").alias("item_idx"))
    return eligible.groupBy("customer_idx").agg(
        F.transform(
            F.sort_array(F.collect_list(keyed)),
            lambda x: F.struct(x["item_idx"].alias("item_idx"), (-x["k"]).alias("score")),
        ).alias("own_history")
    )
