"""Planted ground truth: what the pipeline should find (archetypes, preferences, defects)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import lookup
from precision_marketing.generate.items import N_CATEGORIES, item_id, item_index
from precision_marketing.generate.model import EPOCH, GenParams


def truth_customers(customers: DataFrame) -> DataFrame:
    """One row per customer: archetype, planted purchase rate and activity window, and more."""
    return customers.select(
        "customer_id",
        F.col("arch").alias("archetype_id"),
        lookup([a.name for a in m.ARCHETYPES], F.col("arch")).alias("archetype"),
        lookup([r.name for r in m.REGIONS], F.col("region")).alias("region"),
        F.col("lam").alias("purchase_rate_per_day"),
        F.date_add(F.lit(EPOCH), F.col("active_from_day").cast("int")).alias("active_from"),
        F.date_add(F.lit(EPOCH), F.col("active_until_day").cast("int")).alias("active_until"),
        F.col("engagement").alias("email_engagement"),
        lookup(contracts.PLATFORMS, F.col("pref_platform")).alias("preferred_platform"),
        lookup(contracts.SALES_CHANNELS, F.col("pref_channel")).alias("preferred_channel"),
        lookup(m.CATEGORY_NAMES, F.col("top_cat")).alias("top_category"),
        F.date_add(F.lit(EPOCH), F.col("signup_day").cast("int")).alias("signup_date"),
        F.col("srate").alias("sessions_per_day"),
        F.col("n_orders").alias("orders_in_history"),
        lookup(contracts.LOYALTY_TIERS, F.col("tier1")).alias("loyalty_tier"),
    )


def truth_item_preferences(customers: DataFrame, p: GenParams) -> DataFrame:
    """Per customer and category: the planted mix weight and the item window it favours."""
    pos = F.col("pos")
    return customers.select("customer_id", "offsets", F.posexplode("weights")).select(
        "customer_id",
        lookup(m.CATEGORY_NAMES, pos).alias("category"),
        F.col("col").alias("weight"),
        F.element_at("offsets", (pos + 1).cast("int")).alias("item_offset"),
        lookup([m.item_window(p.items, c) for c in range(N_CATEGORIES)], pos).alias("item_window"),
        lookup([m.items_in_category(p.items, c) for c in range(N_CATEGORIES)], pos).alias(
            "category_items"
        ),
    )


def preferred_items(preferences: DataFrame, min_weight: float) -> DataFrame:
    """(customer_id, item_id): the items of the window `choose_item` draws from, in each category
    whose planted weight is at least `min_weight`, from the truth_item_preferences table."""
    category = F.array_position(F.array(*map(F.lit, m.CATEGORY_NAMES)), F.col("category")) - 1
    window = F.sequence(F.lit(0), F.col("item_window") - 1)
    j = (F.col("item_offset") + F.col("w")) % F.col("category_items")
    return (
        preferences.where(F.col("weight") >= min_weight)
        .select("*", category.alias("category_no"), F.explode(window).alias("w"))
        .select("customer_id", item_id(item_index(F.col("category_no"), j)).alias("item_id"))
    )


DEFECTS_SCHEMA = (
    "source string, kind string, expected_rule string, marker string, marker_field string, "
    "record_key string, location string, rows long"
)


def defects_table(frame: DataFrame, source: str, location: Column) -> DataFrame:
    """Defects-table rows for the marked rows of `frame` (_kind, _marker, _key columns)."""
    kinds = [k for k in m.DEFECT_KINDS if k.source == source]
    rules = F.create_map(*(F.lit(x) for k in kinds for x in (k.kind, k.expected_rule)))
    fields = F.create_map(*(F.lit(x) for k in kinds for x in (k.kind, k.marker_field)))
    return frame.select(
        F.lit(source).alias("source"),
        F.col("_kind").alias("kind"),
        rules[F.col("_kind")].alias("expected_rule"),
        F.col("_marker").alias("marker"),
        fields[F.col("_kind")].alias("marker_field"),
        F.col("_key").alias("record_key"),
        location.alias("location"),
        F.lit(1).cast("long").alias("rows"),
    )
