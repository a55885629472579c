"""The catalog: everything about item i is a function of i, so no join is ever needed."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.generate import model as m
from precision_marketing.generate.draws import Draw, choose_in_groups, lookup, padded, time_text
from precision_marketing.generate.model import DAY_MS, GenParams

N_CATEGORIES = len(m.CATEGORIES)


def item_id(item_idx: Column) -> Column:
    """'I000001'...; null for a null index."""
    return F.concat(F.lit("I"), padded(item_idx + 1, 6))


def item_category(item_idx: Column) -> Column:
    return lookup(m.CATEGORY_NAMES, item_idx % N_CATEGORIES)


def item_price(d: Draw, item_idx: Column) -> Column:
    """Lognormal around the category's median, ending in .99; in [0.99, 99999.99]."""
    cat = item_idx % N_CATEGORIES
    median = lookup([c.median_price for c in m.CATEGORIES], cat)
    sigma = lookup([c.price_sigma for c in m.CATEGORIES], cat)
    raw = median * F.exp(sigma * d.z("price", item_idx))
    euros = F.least(F.greatest(F.round(raw, 0), F.lit(1.0)), F.lit(100_000.0))
    return F.when(item_idx.isNotNull(), F.round(euros - 0.01, 2))


def choose_item(
    p: GenParams, category: Column, offsets: Column, u_popular: Column, u_item: Column
) -> Column:
    """The item index a customer picks in `category` (documented in docs/data-contract.md).

    With POPULAR_SHARE a bestseller (low index within the category, skewed), otherwise an item
    of the customer's own window: `window` consecutive items from the customer's offset.
    """
    n_c = lookup([m.items_in_category(p.items, c) for c in range(N_CATEGORIES)], category)
    width = lookup([m.item_window(p.items, c) for c in range(N_CATEGORIES)], category)
    offset = F.element_at(offsets, (category + 1).cast("int"))
    popular = F.floor(F.pow(u_item, m.POPULAR_SKEW) * n_c)
    own = (offset + F.floor(u_item * width)) % n_c
    j = F.when(u_popular < m.POPULAR_SHARE, popular).otherwise(own)
    return item_index(category, j)


def item_index(category: Column, j: Column) -> Column:
    """The index of the j-th item (from 0) of `category`: items are dealt to categories in turn."""
    return (category + j * N_CATEGORIES).cast("long")


def catalog(spark: SparkSession, p: GenParams) -> DataFrame:
    """Clean catalog rows in contract column order (one per item)."""
    d = Draw(p.seed)
    i = F.col("item_idx")
    cat = i % N_CATEGORIES
    brand = choose_in_groups([c.brands for c in m.CATEGORIES], cat, d.u("brand", i))
    noun = choose_in_groups([c.products for c in m.CATEGORIES], cat, d.u("noun", i))
    adjective = lookup(m.TITLE_ADJECTIVES, d.index("adjective", len(m.TITLE_ADJECTIVES), i))
    updated_ms = p.run_day * DAY_MS - 1 - F.floor(d.u("item_updated", i) * (p.days + 365) * DAY_MS)
    return (
        spark.range(0, p.items, 1, 1)
        .withColumnRenamed("id", "item_idx")
        .select(
            item_id(i).alias("item_id"),
            F.concat_ws(" ", brand, adjective, F.initcap(noun)).alias("title"),
            item_category(i).alias("category"),
            brand.alias("brand"),
            item_price(d, i).alias("price"),
            (d.u("item_active", i) >= m.INACTIVE_ITEM_SHARE).alias("active"),
            time_text(updated_ms, F.lit(0)).alias("updated_at"),
        )
    )
