"""Stable integer ids for customers and items: ALS needs ints, and ids must not shift.

A map only ever grows: keys it has not seen get the next numbers after its current maximum, in
key order (so a rerun of the same input assigns the same numbers), and existing rows never
change. Factors saved with one model version therefore stay addressable by the same ids later.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def new_ids(keys: DataFrame, existing: DataFrame, key: str, idx: str) -> DataFrame:
    """(key, idx) rows for the keys of `keys` missing from `existing`, numbered after its max.

    The numbering window has no partition: one sorted pass over the *new* keys only, which per run
    is a small share of the map (one million new keys sort in seconds).
    """
    start = existing.agg(F.coalesce(F.max(idx), F.lit(-1)).alias("_start"))
    fresh = (
        keys.select(key)
        .where(F.col(key).isNotNull())
        .distinct()
        .join(existing.select(key), key, "left_anti")
    )
    numbered = fresh.withColumn("_n", F.row_number().over(Window.orderBy(key)))
    # ALS ids are Java ints; ANSI mode fails the cast rather than wrap past 2^31 - 1.
    return numbered.crossJoin(F.broadcast(start)).select(
        key,
        (F.col("_start") + F.col("_n")).cast("int").alias(idx),
    )


def with_idx(df: DataFrame, id_map: DataFrame, key: str, idx: str) -> DataFrame:
    """`df` with its integer id; rows whose key has no id are dropped (the map is built first)."""
    return df.join(id_map.select(key, idx), key, "inner")
