"""Purchase cadence: how regularly a customer buys, how overdue they are by their own rhythm,
and whether their spend is growing.

These carry signal in any shop whatever it sells: a customer who buys every 10 days and last
bought 30 days ago is late; one who buys every 60 days is not. Purchases are
`definitions.purchases` known at as_of midnight (units bought and kept, refunds after as_of not
yet known), counted by purchase day, so two orders on one day are one visit to the till.
Consecutive days come from a window partitioned by customer, then one grouped aggregate.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from precision_marketing import definitions
from precision_marketing.features.transforms import as_of_ts

# Spend trend: the last TREND_DAYS days against the TREND_DAYS before them.
TREND_DAYS = 90
COLUMNS = (
    "purchase_gap_mean_days",
    "purchase_gap_stddev_days",
    "purchase_recency_ratio",
    "spend_trend",
)


def cadence_features(lines: DataFrame, as_of: date, trend_days: int = TREND_DAYS) -> DataFrame:
    """(customer_id, *COLUMNS) for customers with a purchase before `as_of`.

    - purchase_gap_mean_days / purchase_gap_stddev_days: mean and sample standard deviation of
      the days between consecutive purchase days (the mean null with fewer than 2 purchase
      days, the deviation with fewer than 3: one gap has no spread to estimate).
    - purchase_recency_ratio: days since the last purchase day / the mean gap (1 = due now;
      null with fewer than 2 purchase days).
    - spend_trend: (s_recent - s_before) / (s_recent + s_before) for the spend of the last
      `trend_days` days and of the `trend_days` before them: in [-1, 1] whatever the shop's
      prices (1: new spend only, -1: stopped), where a plain ratio explodes when the earlier
      window is empty and a difference scales with basket size. Null when both are 0.
    """
    cut = as_of_ts(as_of)
    bought = definitions.purchases(lines.where(F.col("order_ts") < cut), known_at=cut)
    day = F.to_date("order_ts")
    recent_start = F.date_sub(F.lit(as_of), trend_days)
    earlier_start = F.date_sub(F.lit(as_of), 2 * trend_days)
    amount = definitions.net_amount(cut)
    days = bought.groupBy("customer_id", day.alias("day")).agg(
        F.sum(F.when(day >= recent_start, amount)).alias("_recent"),
        F.sum(F.when((day >= earlier_start) & (day < recent_start), amount)).alias("_earlier"),
    )
    previous = F.lag("day").over(Window.partitionBy("customer_id").orderBy("day"))
    gaps = days.withColumn("_gap", F.datediff(F.col("day"), previous))
    agg = gaps.groupBy("customer_id").agg(
        F.avg("_gap").alias("purchase_gap_mean_days"),
        F.stddev_samp("_gap").alias("purchase_gap_stddev_days"),
        F.max("day").alias("_last_day"),
        F.coalesce(F.sum("_recent"), F.lit(0)).cast("double").alias("_recent"),
        F.coalesce(F.sum("_earlier"), F.lit(0)).cast("double").alias("_earlier"),
    )
    since_last = F.datediff(F.lit(as_of), F.col("_last_day"))
    both = F.col("_recent") + F.col("_earlier")
    return agg.select(
        "customer_id",
        "purchase_gap_mean_days",
        "purchase_gap_stddev_days",
        F.when(
            F.col("purchase_gap_mean_days") > 0, since_last / F.col("purchase_gap_mean_days")
        ).alias("purchase_recency_ratio"),
        F.when(both > 0, (F.col("_recent") - F.col("_earlier")) / both).alias("spend_trend"),
    )
