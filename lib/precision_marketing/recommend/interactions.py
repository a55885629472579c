"""Silver events and order lines -> one implicit-feedback confidence per (customer, item).

ALS with implicit preferences reads a confidence, not a rating: how sure we are that a customer
likes an item. Each signal adds its event type's weight, halved every `half_life_days` of age (a
view last week says more than a purchase last year), and the sum is capped so one compulsive
re-viewer cannot dominate the loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import definitions
from precision_marketing.windows import epoch_seconds, in_window  # the window rule

PURCHASE = "purchase"
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class InteractionParams:
    weights: Mapping[str, float]
    half_life_days: float
    max_confidence: float
    lookback_days: int | None  # None: all history before the run date


def decay(ts: Column, as_of: date, half_life_days: float) -> Column:
    """0.5 ** (age in days / half-life), age measured from midnight UTC of `as_of`."""
    age_days = (F.lit(epoch_seconds(as_of)) - ts.cast("double")) / F.lit(SECONDS_PER_DAY)
    return F.pow(F.lit(0.5), age_days / F.lit(half_life_days))


def weighted_events(events: DataFrame, p: InteractionParams, as_of: date) -> DataFrame:
    """Click-stream signals of known customers on items, with their event type's weight."""
    types = {t: w for t, w in p.weights.items() if t != PURCHASE}
    if not types:
        return events.sparkSession.createDataFrame(
            [], "customer_id string, item_id string, weight double, ts timestamp"
        )
    (first_type, first_w), *rest = types.items()
    weight_col = F.when(F.col("event_type") == first_type, F.lit(float(first_w)))
    for event_type, w in rest:
        weight_col = weight_col.when(F.col("event_type") == event_type, F.lit(float(w)))
    return events.where(
        F.col("customer_id").isNotNull()
        & F.col("item_id").isNotNull()
        & F.col("event_type").isin(list(types))
        & in_window(F.col("event_ts"), F.col("event_date"), as_of, p.lookback_days)
    ).select("customer_id", "item_id", weight_col.alias("weight"), F.col("event_ts").alias("ts"))


def weighted_purchases(order_lines: DataFrame, p: InteractionParams, as_of: date) -> DataFrame:
    """Order lines still (partly) kept, each weighing the `purchase` weight."""
    w = p.weights.get(PURCHASE)
    if w is None:
        return order_lines.sparkSession.createDataFrame(
            [], "customer_id string, item_id string, weight double, ts timestamp"
        )
    return bought_lines(order_lines, as_of, p.lookback_days).select(
        "customer_id", "item_id", F.lit(float(w)).alias("weight"), F.col("order_ts").alias("ts")
    )


def bought_lines(order_lines: DataFrame, as_of: date, lookback_days: int | None) -> DataFrame:
    """Purchases (`definitions.purchases`: bought and kept) of an item, in the window."""
    return definitions.purchases(order_lines).where(
        F.col("item_id").isNotNull()
        & in_window(F.col("order_ts"), F.col("order_date"), as_of, lookback_days)
    )


def signals(
    events: DataFrame, order_lines: DataFrame, p: InteractionParams, as_of: date
) -> DataFrame:
    """(customer_id, item_id, weight, ts): every weighted signal in the window."""
    return weighted_events(events, p, as_of).unionByName(weighted_purchases(order_lines, p, as_of))


def interactions(
    events: DataFrame, order_lines: DataFrame, p: InteractionParams, as_of: date
) -> DataFrame:
    """(customer_id, item_id, confidence, signals, first_ts, last_ts): decayed, summed, capped,
    > 0."""
    summed = (
        signals(events, order_lines, p, as_of)
        .groupBy("customer_id", "item_id")
        .agg(
            F.sum(F.col("weight") * decay(F.col("ts"), as_of, p.half_life_days)).alias("raw"),
            F.count(F.lit(1)).alias("signals"),
            F.min("ts").alias("first_ts"),
            F.max("ts").alias("last_ts"),
        )
    )
    return summed.where(F.col("raw") > 0).select(
        "customer_id",
        "item_id",
        F.least(F.col("raw"), F.lit(float(p.max_confidence))).alias("confidence"),
        "signals",
        "first_ts",
        "last_ts",
    )


Exclude = Literal["bought", "seen", "none"]


def excluded_pairs(
    events: DataFrame, order_lines: DataFrame, exclude: Exclude, as_of: date
) -> DataFrame:
    """(customer_id, item_id, since): what a customer must never be recommended, over all
    history before `as_of`; `since` is the first signal that excludes it.

    The one definition both the served lists and the evaluation use: `bought` = kept order
    lines (a refund is not a purchase kept), `seen` = any event on the item or any order line.
    A point-in-time caller (a per-customer holdout) keeps the pairs with `since` before its
    cutoff.
    """
    spark = order_lines.sparkSession
    if exclude == "none":
        return spark.createDataFrame([], "customer_id string, item_id string, since timestamp")
    lines = (
        bought_lines(order_lines, as_of, None)
        if exclude == "bought"
        else order_lines.where(
            F.col("customer_id").isNotNull()
            & F.col("item_id").isNotNull()
            & in_window(F.col("order_ts"), F.col("order_date"), as_of, None)
        )
    )
    found = lines.select("customer_id", "item_id", F.col("order_ts").alias("ts"))
    if exclude == "seen":
        seen = events.where(
            F.col("customer_id").isNotNull()
            & F.col("item_id").isNotNull()
            & in_window(F.col("event_ts"), F.col("event_date"), as_of, None)
        ).select("customer_id", "item_id", F.col("event_ts").alias("ts"))
        found = found.unionByName(seen)
    return found.groupBy("customer_id", "item_id").agg(F.min("ts").alias("since"))
