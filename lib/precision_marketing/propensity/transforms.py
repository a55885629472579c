"""Point-in-time training sets: features at an as_of date, outcomes in [as_of, as_of + H).

Features come from a gold/user_features snapshot, which only saw data strictly before as_of.
Outcomes come from silver order lines on or after as_of: a line counts as a purchase by
`definitions.net_purchase`, as everywhere (not cancelled, not fully refunded). So the label window
starts where the features' view of the world ends, and nothing after as_of reaches a feature.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing import definitions
from precision_marketing.config import ConfigError, PropensityConfig
from precision_marketing.definitions import recently_active
from precision_marketing.features.transforms import order_features
from precision_marketing.recommend.interactions import bought_lines

LABEL = "label"  # 1.0: bought in [as_of, as_of + H)
CHURN_LABEL = "churn_label"  # 1.0: no purchase in [as_of, as_of + H)
SPEND_NEXT = "spend_next"  # net spend in [as_of, as_of + H), 0 without a purchase
SPEND_PREVIOUS = "spend_previous"  # spend in [as_of - H, as_of) as known at as_of
RECENTLY_ACTIVE = "recently_active"  # an order or a visit in the last churn_active_days
# How far back the order history reaches at as_of (the longest days_since_first_order): the
# exposure of a customer is min(tenure, history), whatever the data's retention.
HISTORY_DAYS = "history_days"
WEIGHT = "class_weight"


def snapshot_dates(run_date: date, cfg: PropensityConfig) -> tuple[list[date], date]:
    """(training as_of dates, oldest first; the validation as_of date).

    Every label window must have ended by the run date, and the training windows must end on
    or before the validation date, so validation is strictly later data than training.
    """
    h = cfg.horizon_days
    if h < 1:
        raise ConfigError("propensity.horizon_days must be at least 1")
    if cfg.validation_offset_days < h:
        raise ConfigError(
            f"propensity.validation_offset_days ({cfg.validation_offset_days}) must be >= "
            f"horizon_days ({h}): its label window has to end by the run date"
        )
    if not cfg.train_as_of_offsets_days:
        raise ConfigError("propensity.train_as_of_offsets_days is empty")
    too_late = [o for o in cfg.train_as_of_offsets_days if o < cfg.validation_offset_days + h]
    if too_late:
        raise ConfigError(
            f"propensity.train_as_of_offsets_days: {too_late[0]} < validation_offset_days + "
            f"horizon_days ({cfg.validation_offset_days + h}): its label window would overlap "
            "the validation period"
        )
    train = sorted({run_date - timedelta(days=o) for o in cfg.train_as_of_offsets_days})
    return train, run_date - timedelta(days=cfg.validation_offset_days)


def latest_labelled_date(run_date: date, cfg: PropensityConfig) -> date:
    """The latest as_of whose label window [as_of, as_of + H) has ended by the run date: the
    freshest base rate there is to calibrate on (the validation date when its offset is H)."""
    return run_date - timedelta(days=cfg.horizon_days)


def window_outcomes(order_lines: DataFrame, start: date, days: int) -> DataFrame:
    """(customer_id, orders, spend) of purchases (`definitions.net_purchase`) in
    [start, start + days), spend summed in exact cents."""
    lines = bought_lines(order_lines, start + timedelta(days=days), days)
    return lines.groupBy("customer_id").agg(
        F.count_distinct("order_id").alias("orders"),
        F.sum(definitions.net_amount()).cast("double").alias("spend"),
    )


def previous_spend(order_lines: DataFrame, items: DataFrame, as_of: date, days: int) -> DataFrame:
    """(customer_id, spend_previous): spend in [as_of - days, as_of) by the features' own
    definition, so refunds that happened after as_of do not reach back into it."""
    spend = order_features(order_lines, items, as_of, [days], [])
    return spend.select("customer_id", F.col(f"spend_{days}d").alias(SPEND_PREVIOUS))


def with_history_days(snapshot: DataFrame) -> DataFrame:
    """Adds `history_days` to every row of one as_of snapshot (one aggregate, broadcast)."""
    reach = snapshot.agg(
        F.greatest(F.coalesce(F.max("days_since_first_order"), F.lit(1)), F.lit(1)).alias(
            HISTORY_DAYS
        )
    )
    return snapshot.crossJoin(F.broadcast(reach))


def labelled(
    snapshot: DataFrame,
    order_lines: DataFrame,
    items: DataFrame,
    as_of: date,
    cfg: PropensityConfig,
) -> DataFrame:
    """The snapshot's rows with their outcome over the next H days and last period's spend."""
    h = cfg.horizon_days
    outcomes = window_outcomes(order_lines, as_of, h)
    bought = F.coalesce(F.col("orders"), F.lit(0)) > 0
    return (
        snapshot.join(outcomes, "customer_id", "left")
        .join(previous_spend(order_lines, items, as_of, h), "customer_id", "left")
        .withColumns(
            {
                LABEL: bought.cast("double"),
                CHURN_LABEL: (~bought).cast("double"),
                SPEND_NEXT: F.coalesce(F.col("spend"), F.lit(0.0)),
                SPEND_PREVIOUS: F.coalesce(F.col(SPEND_PREVIOUS), F.lit(0.0)),
                RECENTLY_ACTIVE: recently_active(cfg.churn_active_days),
            }
        )
        .drop("orders", "spend")
    )


def with_class_weights(df: DataFrame, label: str = LABEL, out: str = WEIGHT) -> DataFrame:
    """Balanced class weights: rows / (2 x rows of the class), each class weighing half.

    A rare positive class would otherwise barely move the loss; one small aggregate, joined
    back as a broadcast row.
    """
    counts = df.agg(
        F.count(F.lit(1)).alias("_n"),
        F.sum(F.when(F.col(label) > 0, 1).otherwise(0)).alias("_pos"),
    )
    both = (F.col("_pos") > 0) & (F.col("_n") > F.col("_pos"))
    # With one class only there is nothing to balance (and ANSI mode forbids dividing by 0).
    weight = (
        F.when(~both, F.lit(1.0))
        .when(F.col(label) > 0, F.col("_n") / (2.0 * F.col("_pos")))
        .otherwise(F.col("_n") / (2.0 * (F.col("_n") - F.col("_pos"))))
    )
    return df.crossJoin(F.broadcast(counts)).withColumn(out, weight).drop("_n", "_pos")
