"""Who a campaign's rule matches, and which of them are held out as its control group."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.features.transforms import safe_name
from precision_marketing.publish.campaigns import AudienceRule, Campaign
from precision_marketing.schemas.activation import REC_SLOTS

CONSENT_COLUMNS = ("consent_email", "consent_sms", "consent_push")
ALL_CHANNELS = "*"  # a suppression without a channel
# 15 hex digits of SHA-256 = 60 bits: a long, and uniform over [0, 16**15).
_HASH_DIGITS = 15


def rec_columns(slots: int = REC_SLOTS) -> list[str]:
    return [f"rec_item_{n}" for n in range(1, slots + 1)] + [
        f"rec_title_{n}" for n in range(1, slots + 1)
    ]


def affinity_columns(campaigns: Iterable[Campaign]) -> list[str]:
    """The user_features share columns the campaigns' rules read."""
    names = []
    for c in campaigns:
        for a in c.audience.category_affinity:
            if a.min_view_share is not None:
                names.append(f"view_share_{safe_name(a.category)}")
            if a.min_spend_share is not None:
                names.append(f"spend_share_{safe_name(a.category)}")
    return sorted(set(names))


def top_recommendations(recommendations: DataFrame, items: DataFrame) -> DataFrame:
    """One row per customer: the first REC_SLOTS recommended items and their titles."""
    top = recommendations.where(F.col("rank") <= REC_SLOTS).join(
        items.select("item_id", "title"), "item_id", "left"
    )
    slots = range(1, REC_SLOTS + 1)
    return top.groupBy("customer_id").agg(
        *(F.max(F.when(F.col("rank") == n, F.col("item_id"))).alias(f"rec_item_{n}")
          for n in slots),
        *(F.max(F.when(F.col("rank") == n, F.col("title"))).alias(f"rec_title_{n}")
          for n in slots),
    )  # fmt: skip


def suppressed_channels(suppression: DataFrame) -> DataFrame:
    """customer_id, suppressed_channels: the channels each customer must not get ("*": all)."""
    return suppression.groupBy("customer_id").agg(
        F.collect_set(F.coalesce(F.col("channel"), F.lit(ALL_CHANNELS))).alias(
            "suppressed_channels"
        )
    )


def customer_base(
    features: DataFrame,
    segments: DataFrame,
    propensity: DataFrame,
    recommendations: DataFrame,
    items: DataFrame,
    customers: DataFrame,
    suppression: DataFrame,
    recent_contacts: DataFrame,
    affinity: Sequence[str],
) -> DataFrame:
    """Every customer of the user_features snapshot with what rules, policy and exports read.

    The features snapshot is the population (customers known as of its date); current consent
    comes from silver/customers, so an opt-out since then is honoured. Snapshots are given
    already filtered to one as_of_date each; `recent_contacts` (customer_id, contacts) counts
    contacts before this run inside the frequency-cap window. Built once per run, so each
    campaign is a filter of it.
    """
    return (
        features.select("customer_id", "rfm_segment", *affinity)
        .join(segments.select("customer_id", "segment_id", "segment_name"), "customer_id", "left")
        .join(
            propensity.select(
                "customer_id", F.col("decile").alias("propensity_decile"), "expected_value"
            ),
            "customer_id",
            "left",
        )
        .join(top_recommendations(recommendations, items), "customer_id", "left")
        .join(customers.select("customer_id", *CONSENT_COLUMNS), "customer_id", "left")
        .join(suppressed_channels(suppression), "customer_id", "left")
        .join(
            recent_contacts.select("customer_id", F.col("contacts").alias("recent_contacts")),
            "customer_id",
            "left",
        )
    )


def rule_condition(rule: AudienceRule) -> Column:
    """The rule as one predicate over customer_base rows (no criteria: everybody)."""
    conditions: list[Column] = []
    if rule.segments is not None:
        ids = [s for s in rule.segments if isinstance(s, int)]
        names = [s for s in rule.segments if isinstance(s, str)]
        conditions.append(F.col("segment_id").isin(ids) | F.col("segment_name").isin(names))
    if rule.rfm_segments is not None:
        conditions.append(F.col("rfm_segment").isin(rule.rfm_segments))
    if rule.propensity_deciles is not None:
        deciles = rule.propensity_deciles
        conditions.append(F.col("propensity_decile").between(deciles.min, deciles.max))
    for a in rule.category_affinity:
        category = safe_name(a.category)
        if a.min_view_share is not None:
            conditions.append(F.col(f"view_share_{category}") >= F.lit(a.min_view_share))
        if a.min_spend_share is not None:
            conditions.append(F.col(f"spend_share_{category}") >= F.lit(a.min_spend_share))
    if rule.requires_recommendations:
        conditions.append(F.col("rec_item_1").isNotNull())
    # A null (no segment, no score) never matches: coalesce each condition to false.
    return reduce(lambda a, b: a & b, (F.coalesce(c, F.lit(False)) for c in conditions),
                  F.lit(True))  # fmt: skip


def holdout_bucket(campaign_id: Column, customer_id: Column, salt: str) -> Column:
    """A number in [0, 1) from a salted SHA-256 of (campaign, customer).

    It depends on nothing else, so a customer's group is the same in every rerun and whoever
    else is in the audience; a bucket below the holdout share means control. Per campaign, so
    the same customers are not held out of every campaign.
    """
    digest = F.sha2(F.concat_ws("|", F.lit(salt), campaign_id, customer_id), 256)
    head = F.conv(F.substring(digest, 1, _HASH_DIGITS), 16, 10).cast("double")
    return head / F.lit(float(16**_HASH_DIGITS))
