"""A blend of ALS, co-occurrence, popularity priors and the customer's own history, with
weights chosen on the tuning split.

Each component gives a customer a candidate list, best first. Excluded items are dropped first,
then each list is cut to `pool` entries and its scores are scaled per customer into (0, 1]: ALS
and co-occurrence by their score range (the last entry keeps a small positive share), the
popularity priors by rank (their counts tie often). An item's blended score is the weighted sum
of its scaled scores, 0 where a list does not hold it; items scoring 0 are left to the
fallbacks. The weights are a grid on the simplex, which holds every component alone (its
corners), so on the split where it is chosen the blend is never worse than its best component.

A logistic-regression re-ranker on the same features was the alternative; the grid needs no
labels per candidate, no second model to persist, and judges every point on the tuning metric
itself. Everything is column expressions on one row per customer: no shuffle over candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.recommend import evaluate
from precision_marketing.recommend.baselines import CANDIDATES
from precision_marketing.recommend.serve import ALS, COOCCURRENCE, POPULAR

RECENT_POPULAR = "recent_popular"
OWN_HISTORY = "own_history"  # baselines.own_history
# The blended lists, in the order of a weight vector; the priors are scaled by rank.
COMPONENTS = (ALS, COOCCURRENCE, POPULAR, RECENT_POPULAR, OWN_HISTORY)
BY_RANK = (POPULAR, RECENT_POPULAR)
FEATURES = "_features"
Weights = tuple[float, ...]


def simplex(step: float, dims: int = len(COMPONENTS)) -> list[Weights]:
    """Every weight vector of `dims` multiples of `step` summing to 1, corners first (so a tie
    keeps a single component)."""
    m = round(1 / step)

    def parts(total: int, n: int) -> list[tuple[int, ...]]:
        if n == 1:
            return [(total,)]
        return [
            (first, *rest) for first in range(total, -1, -1) for rest in parts(total - first, n - 1)
        ]

    points = [tuple(p / m for p in c) for c in parts(m, dims)]
    corners = [p for p in points if max(p) == 1.0]
    return corners + [p for p in points if max(p) < 1.0]


def _fresh(candidates: Column, excluded: Column, pool: int) -> Column:
    """The first `pool` candidates not excluded."""
    kept = F.filter(
        F.coalesce(candidates, F.array().cast(CANDIDATES)),
        lambda c: ~F.array_contains(excluded, c["item_idx"]),
    )
    return F.slice(kept, 1, pool)


def _scaled(fresh: Column, by_rank: bool) -> Column:
    """map<item_idx, scaled score in (0, 1]> of a best-first list."""
    n = F.size(fresh).cast("double")
    if by_rank:
        scaled = F.transform(
            fresh, lambda c, i: F.struct(c["item_idx"], ((n - i) / n).alias("score"))
        )
    else:
        hi = F.try_element_at(fresh, F.lit(1))["score"]
        lo = F.try_element_at(fresh, F.lit(-1))["score"]
        floor = (hi - lo) / n  # the last entry gets floor / (range + floor), not 0
        scaled = F.transform(
            fresh,
            lambda c: F.struct(
                c["item_idx"],
                F.when(hi > lo, (c["score"] - lo + floor) / (hi - lo + floor))
                .otherwise(F.lit(1.0))
                .alias("score"),
            ),
        )
    return F.map_from_entries(scaled)


def _merged(acc: Column, scores: Column, filled: int) -> Column:
    """map<item_idx, array<double>> `acc` (arrays of `filled` scores) with one more
    component's map appended: 0.0 where either side does not hold the item."""
    zeros = F.array_repeat(F.lit(0.0), filled)
    return F.map_zip_with(
        acc,
        scores,
        lambda _, seen, s: F.concat(F.coalesce(seen, zeros), F.array(F.coalesce(s, F.lit(0.0)))),
    )


def with_features(customers: DataFrame, pool: int) -> DataFrame:
    """Adds `_features`: array<struct<item_idx, f array<double>>>, one entry per item in any
    component's fresh list, f in COMPONENTS order. `customers` has `excluded` and a candidate
    column per component (nullable).

    The components' maps are merged with map_zip_with, not looked up per item inside a lambda:
    Spark inlines a column read once into the lambda, which rebuilt every map for every item.
    """
    excluded = F.coalesce(F.col("excluded"), F.array().cast("array<int>"))
    frame = customers
    for c in COMPONENTS:
        frame = frame.withColumn(f"_f_{c}", _fresh(F.col(c), excluded, pool))
    maps = [_scaled(F.col(f"_f_{c}"), c in BY_RANK) for c in COMPONENTS]
    merged = F.transform_values(maps[0], lambda _, s: F.array(s))
    for filled, scores in enumerate(maps[1:], start=1):
        merged = _merged(merged, scores, filled)
    features = F.transform(
        F.map_entries(merged),
        lambda e: F.struct(e["key"].alias("item_idx"), e["value"].alias("f")),
    )
    return frame.withColumn(FEATURES, features).drop(*(f"_f_{c}" for c in COMPONENTS))


def blended(features: Column, weights: Weights) -> Column:
    """array<struct<item_idx, score>> of items with a positive weighted score, best first
    (ties to the smaller item id)."""

    def score(x: Column) -> Column:
        terms = [x["f"][i] * F.lit(w) for i, w in enumerate(weights) if w > 0]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total

    keyed = F.filter(
        F.transform(features, lambda x: F.struct((-score(x)).alias("k"), x["item_idx"])),
        lambda x: x["k"] < 0,
    )
    return F.transform(
        F.sort_array(keyed),
        lambda x: F.struct(x["item_idx"].alias("item_idx"), (-x["k"]).alias("score")),
    )


def _predicted(features: Column, fallback: Column, weights: Weights, k: int) -> Column:
    """The top k as served: the blended list, then fallback items not already in it.

    array_distinct keeps first occurrences in order; 2k fallback items hold at least k that
    the blended top k does not. (Filtering the fallback by `top` inside a lambda would sort
    the blended list again for every fallback item.)"""
    top = F.slice(F.transform(blended(features, weights), lambda x: x["item_idx"]), 1, k)
    filled = F.array_distinct(F.concat(top, F.slice(fallback, 1, 2 * k)))
    return F.transform(F.slice(filled, 1, k), lambda x: x.cast("double"))


def grid_values(
    frame: DataFrame,
    truth: DataFrame,
    grid: Sequence[Weights],
    metric: str,
    k: int,
    chunk: int = 12,
) -> list[float]:
    """The tuning metric at k of every grid point, averaged over the customers in `truth` (an
    unjudged one scores 0, as in evaluate.ranking_metrics). `frame` has customer_idx,
    `_features` and `_fallback` (array<int>, excluded items already dropped)."""
    judged = truth.join(frame, "customer_idx", "left").select(
        "relevant",
        F.coalesce(
            F.col(FEATURES), F.array().cast("array<struct<item_idx:int,f:array<double>>>")
        ).alias(FEATURES),
        F.coalesce(F.col("_fallback"), F.array().cast("array<int>")).alias("_fallback"),
    )
    values: list[float] = []
    for start in range(0, len(grid), chunk):
        points = grid[start : start + chunk]
        row = judged.agg(
            *(
                F.avg(
                    evaluate.per_customer_metrics(
                        _predicted(F.col(FEATURES), F.col("_fallback"), w, k),
                        F.col("relevant"),
                        k,
                    )[metric]
                ).alias(f"p{n}")
                for n, w in enumerate(points)
            )
        ).first()  # one row of len(points) averages
        assert row is not None
        values += [float(row[f"p{n}"] or 0.0) for n in range(len(points))]
    return values


def grid_sample(truth: DataFrame, customers: int, size: int) -> DataFrame:
    """`size` of the `customers` rows of `truth` (all when they fit): the smallest hashes of
    their ids, so the same data judges the grid on the same customers on every run."""
    if customers <= size:
        return truth
    return truth.orderBy(F.xxhash64("customer_idx"), "customer_idx").limit(size)


def choose(grid: Sequence[Weights], values: Sequence[float]) -> Weights:
    """The best point; ties keep the earlier one (corners come first)."""
    best = max(range(len(grid)), key=lambda n: (values[n], -n))
    return grid[best]


def fallback_ids(candidates: Column, excluded: Column) -> Column:
    """array<int>: a fallback list's items, excluded ones dropped (its whole depth)."""
    kept = _fresh(candidates, F.coalesce(excluded, F.array().cast("array<int>")), 1_000_000)
    return F.transform(kept, lambda c: c["item_idx"])
