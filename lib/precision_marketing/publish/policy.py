"""The contact policy: the one place that decides who of a campaign's audience may be contacted.

Every matched customer keeps a row; those not selected say why (`excluded_reason`), checked in
this order: no consent for the channel, suppressed, frequency cap, then the campaign's budget or
size limit. The control group passes the same checks, so it stays comparable to the treatment
group, but is never contacted (and so never counts toward anyone's frequency cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precision_marketing.publish.audience import ALL_CHANNELS, holdout_bucket
from precision_marketing.publish.campaigns import Campaign

NO_CONSENT = "no_consent"
SUPPRESSED = "suppressed"
FREQUENCY_CAP = "frequency_cap"
OVER_BUDGET = "over_budget"
OVER_MAX_SIZE = "over_max_size"
TREATMENT = "treatment"
CONTROL = "control"
# Money is summed as decimals: 0.1 + 0.2 must fit a budget of 0.3.
MONEY = "decimal(20,6)"


@dataclass(frozen=True)
class ContactPolicy:
    channel_consent: dict[str, list[str]]
    max_contacts: int
    window_days: int
    salt: str


def recent_contacts(history: DataFrame, run_date: date, window_days: int) -> DataFrame:
    """customer_id, contacts: contacts in the window_days days ending on the run date."""
    first_day = run_date - timedelta(days=window_days - 1)
    return (
        history.where(F.col("contact_date").between(F.lit(first_day), F.lit(run_date)))
        .groupBy("customer_id")
        .agg(F.count(F.lit(1)).alias("contacts"))
    )


def _money(value: float) -> Column:
    return F.lit(Decimal(repr(value))).cast(MONEY)


def apply_policy(
    candidates: DataFrame,
    campaign: Campaign,
    policy: ContactPolicy,
    earlier_contacts: DataFrame | None = None,
) -> DataFrame:
    """Adds `group` (treatment/control, null when excluded), `excluded_reason`, `contact_cost`.

    `candidates` are the customers the campaign's rule matched, as audience.customer_base
    rows: consent columns, suppressed_channels, recent_contacts and expected_value.
    `earlier_contacts` (customer_id, contacts) are this run's contacts by campaigns decided
    before this one. With a budget or size limit, eligible customers are taken by expected
    value, highest first (ties by customer_id), until the treatment group's cost or size would
    exceed it; control customers in that ranked range are kept, so both groups come from the
    same part of the ranking.
    """
    consent = reduce(
        lambda a, b: a | b,
        (F.coalesce(F.col(c), F.lit(False)) for c in policy.channel_consent[campaign.channel]),
    )
    frame = candidates.withColumn("campaign_id", F.lit(campaign.id))
    contacts = F.coalesce(F.col("recent_contacts"), F.lit(0))
    if earlier_contacts is not None:
        frame = frame.join(
            earlier_contacts.select("customer_id", F.col("contacts").alias("_earlier")),
            "customer_id",
            "left",
        )
        contacts = contacts + F.coalesce(F.col("_earlier"), F.lit(0))
    blocked = F.coalesce(F.col("suppressed_channels"), F.array().cast("array<string>"))
    suppressed = F.array_contains(blocked, campaign.channel) | F.array_contains(
        blocked, ALL_CHANNELS
    )
    capped = contacts >= F.lit(policy.max_contacts)
    eligible = consent & ~suppressed & ~capped
    in_control = holdout_bucket(F.col("campaign_id"), F.col("customer_id"), policy.salt) < F.lit(
        campaign.holdout_share
    )
    contacted = eligible & ~in_control
    ranking = (
        Window.partitionBy("campaign_id")
        .orderBy(F.col("expected_value").desc_nulls_last(), F.col("customer_id"))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    frame = frame.select(
        "*",
        consent.alias("_consent"),
        suppressed.alias("_is_suppressed"),
        capped.alias("_capped"),
        in_control.alias("_control"),
        F.sum(F.when(contacted, _money(campaign.cost_per_contact)).otherwise(_money(0.0)))
        .over(ranking)
        .alias("_spent"),
        F.sum(F.when(contacted, F.lit(1)).otherwise(F.lit(0))).over(ranking).alias("_reached"),
    )
    over_budget = (
        F.col("_spent") > _money(campaign.budget) if campaign.budget is not None else F.lit(False)
    )
    over_size = (
        F.col("_reached") > F.lit(campaign.max_audience_size)
        if campaign.max_audience_size is not None
        else F.lit(False)
    )
    reason = (
        F.when(~F.col("_consent"), F.lit(NO_CONSENT))
        .when(F.col("_is_suppressed"), F.lit(SUPPRESSED))
        .when(F.col("_capped"), F.lit(FREQUENCY_CAP))
        .when(over_budget, F.lit(OVER_BUDGET))
        .when(over_size, F.lit(OVER_MAX_SIZE))
    )
    group = F.when(
        reason.isNull(), F.when(F.col("_control"), F.lit(CONTROL)).otherwise(F.lit(TREATMENT))
    )
    return frame.select(
        *(c for c in candidates.columns),
        "campaign_id",
        group.alias("group"),
        reason.alias("excluded_reason"),
        F.when(group == TREATMENT, F.lit(campaign.cost_per_contact))
        .otherwise(F.lit(0.0))
        .alias("contact_cost"),
    )
