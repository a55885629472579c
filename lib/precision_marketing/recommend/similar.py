"""Item-to-item neighbours: cosine of ALS item factors, and a content rule for new items.

Cosine over all item pairs is a matrix product: with every factor vector scaled to unit length,
the top k of the item factors against themselves (topk.recommend_for_users) is exactly the
top k by cosine, in blocks, with no pair table materialized.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

ALS = "als"
CONTENT = "content"


def unit_factors(factors: DataFrame) -> DataFrame:
    """(id, features) scaled to length 1 (all-zero vectors dropped: they have no direction)."""
    norm = F.sqrt(F.aggregate("features", F.lit(0.0), lambda acc, x: acc + x * x))
    return (
        factors.withColumn("_norm", norm)
        .where(F.col("_norm") > 0)
        .select(
            "id",
            F.transform("features", lambda x: x / F.col("_norm"))
            .cast("array<float>")
            .alias("features"),
        )
    )


def factor_neighbours(recommended: DataFrame, m: int) -> DataFrame:
    """(item_idx, rank, similar_idx, score) from the top k of unit factors against themselves.

    `recommended` has `item_idx` and `recommendations` array<struct<item_idx, rating>> (the
    neighbours; topk.recommend_for_users with user_col="item_idx"); the item itself (cosine 1)
    is dropped, and equal cosines are ordered by item id so reruns agree.
    """
    others = F.filter(F.col("recommendations"), lambda r: r["item_idx"] != F.col("item_idx"))
    ordered = F.sort_array(
        F.transform(
            others,
            lambda r: F.struct(
                (-r["rating"].cast("double")).alias("k"), r["item_idx"].alias("idx")
            ),
        )
    )
    return recommended.select(
        "item_idx", F.posexplode(F.slice(ordered, 1, m)).alias("_pos", "_r")
    ).select(
        "item_idx",
        (F.col("_pos") + 1).alias("rank"),
        F.col("_r.idx").alias("similar_idx"),
        (-F.col("_r.k")).alias("score"),
    )


def content_neighbours(new_items: DataFrame, candidates: DataFrame, m: int) -> DataFrame:
    """(item_id, rank, similar_item_id, score) for items without factors.

    Same category and brand, nearest price first (ties: smaller item id). Score is the negative
    absolute price gap, so higher still means closer, as for cosine.
    """
    left = new_items.select("item_id", "category", "brand", "price")
    right = candidates.select(
        F.col("item_id").alias("similar_item_id"),
        "category",
        "brand",
        F.col("price").alias("_price"),
    )
    pairs = left.join(right, ["category", "brand"]).where(
        F.col("item_id") != F.col("similar_item_id")
    )
    gap = F.abs(F.col("price") - F.col("_price"))
    order = Window.partitionBy("item_id").orderBy(gap, F.col("similar_item_id"))
    return (
        pairs.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= m)
        .select("item_id", "rank", "similar_item_id", (-gap).alias("score"))
    )
