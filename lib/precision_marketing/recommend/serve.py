"""Candidate lists per customer -> exactly N ranked rows, the model's list first (the blend, or
ALS), then the fallbacks.

Every customer row carries its candidate arrays (the model's, its segment's popular items, the
global popular items) and the item ids it must not get. The lists are filtered and concatenated with
SQL higher-order functions row by row: no shuffle, no window over customers x candidates, which
is what keeps a million customers cheap. A fallback list is only scanned for customers whose
earlier lists came up short.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.recommend.baselines import CANDIDATES

BLEND = "blend"
ALS = "als"
COOCCURRENCE = "cooccurrence"
SEGMENT_POPULAR = "segment_popular"
POPULAR = "popular"
# The order lists fill a customer's N slots in: a model list (the blend when it serves, else
# ALS; co-occurrence alone in the evaluation), then the fallbacks.
SOURCES = (BLEND, ALS, COOCCURRENCE, SEGMENT_POPULAR, POPULAR)


def _empty_ids() -> Column:
    return F.array().cast("array<int>")


def _empty_candidates() -> Column:
    return F.array().cast(CANDIDATES)


def als_candidates(recommendations: Column, item_col: str = "item_idx") -> Column:
    """ALSModel.recommendFor* output (item, float rating) as (item_idx, double score), best
    first with ties broken by item id: the heap's order among equal scores is arbitrary, and
    reruns must give the same rows."""
    return by_score(
        F.transform(
            recommendations,
            lambda r: F.struct(
                r[item_col].alias("item_idx"), r["rating"].cast("double").alias("score")
            ),
        )
    )


def by_score(candidates: Column) -> Column:
    """(item_idx, score) structs sorted by score descending, then item id ascending."""
    keyed = F.sort_array(
        F.transform(candidates, lambda c: F.struct((-c["score"]).alias("k"), c["item_idx"]))
    )
    return F.transform(
        keyed, lambda c: F.struct(c["item_idx"].alias("item_idx"), (-c["k"]).alias("score"))
    )


def _ids(candidates: Column) -> Column:
    return F.transform(candidates, lambda c: c["item_idx"])


def _take(candidates: Column, blocked: Column, room: Column) -> Column:
    """The first `room` candidates whose item is not in `blocked` (empty when room is 0)."""
    fresh = F.filter(
        F.coalesce(candidates, _empty_candidates()),
        lambda c: ~F.array_contains(blocked, c["item_idx"]),
    )
    return F.when(room > 0, F.slice(fresh, 1, room)).otherwise(_empty_candidates())


def _tagged(candidates: Column, source: str) -> Column:
    return F.transform(
        candidates,
        lambda c: F.struct(
            c["item_idx"].alias("item_idx"),
            c["score"].alias("score"),
            F.lit(source).alias("source"),
        ),
    )


def top_n(customers: DataFrame, keys: list[str], n: int) -> DataFrame:
    """(keys..., rank, item_idx, score, source): up to n rows per customer row.

    `customers` has the key columns, `excluded` (array<int> of item ids never to show, e.g.
    bought ones) and candidate arrays named in `SOURCES` (each ordered best first, nullable;
    missing ones count as null). Items keep the first list they appear in; a list fills only the
    room its predecessors left.
    """
    excluded = F.coalesce(F.col("excluded"), _empty_ids())
    blocked, room = excluded, F.lit(n)
    frame, taken = with_candidate_columns(customers), []
    for source in SOURCES:
        name = f"_{source}"
        frame = frame.withColumn(name, _take(F.col(source), blocked, room))
        taken.append(_tagged(F.col(name), source))
        blocked = F.concat(blocked, _ids(F.col(name)))
        room = room - F.size(F.col(name))
    exploded = frame.select(*keys, F.posexplode(F.concat(*taken)).alias("_pos", "_c"))
    return exploded.select(
        *keys,
        (F.col("_pos") + 1).alias("rank"),
        F.col("_c.item_idx").alias("item_idx"),
        F.col("_c.score").alias("score"),
        F.col("_c.source").alias("source"),
    )


def with_candidate_columns(customers: DataFrame) -> DataFrame:
    """Adds null candidate/exclusion columns a caller did not supply (e.g. a baseline)."""
    out = customers
    for name in SOURCES:
        if name not in out.columns:
            out = out.withColumn(name, F.lit(None).cast(CANDIDATES))
    if "excluded" not in out.columns:
        out = out.withColumn("excluded", F.lit(None).cast("array<int>"))
    return out
