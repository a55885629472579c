"""The categories behind the view_share_<c> / spend_share_<c> columns: from the data, fixed.

A fixed list of the generator's categories gave real catalogs (film genres) all-null share
columns. Unless features.top_categories pins a list, the first features run ranks the catalog's
categories by order lines, then product events, then catalog items (ties: by name), keeps the
top features.top_category_count and stores them under <warehouse>/models/features/; every later
snapshot (and activation's campaign check) reuses that file, so the columns stay comparable
between snapshots even when new items and categories arrive. Delete the file to choose again.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.features.transforms import TOUCH_EVENTS, as_of_ts, safe_name
from precision_marketing.io import files, tables

log = logging.getLogger(__name__)


def stored_path(config: Config) -> str:
    return f"{tables.warehouse(config)}/models/features/categories.json"


def ranking(items: DataFrame, lines: DataFrame, events: DataFrame, as_of: date) -> DataFrame:
    """(category, order_lines, product_events, catalog_items), best first, over what happened
    before as_of. Lines and events are counted per item first, then mapped to the catalog."""
    cut = as_of_ts(as_of)
    line_counts = (
        lines.where(F.col("order_ts") < cut)
        .groupBy("item_id")
        .agg(F.count(F.lit(1)).alias("order_lines"))
    )
    event_counts = (
        events.where(
            (F.col("event_ts") < cut)
            & F.col("event_type").isin(*TOUCH_EVENTS)
            & F.col("item_id").isNotNull()
        )
        .groupBy("item_id")
        .agg(F.count(F.lit(1)).alias("product_events"))
    )
    catalog = items.where(F.col("category").isNotNull()).select("item_id", "category").distinct()
    per_item = catalog.join(line_counts, "item_id", "left").join(event_counts, "item_id", "left")
    return (
        per_item.groupBy("category")
        .agg(
            F.coalesce(F.sum("order_lines"), F.lit(0)).alias("order_lines"),
            F.coalesce(F.sum("product_events"), F.lit(0)).alias("product_events"),
            F.countDistinct("item_id").alias("catalog_items"),
        )
        .orderBy(
            F.col("order_lines").desc(),
            F.col("product_events").desc(),
            F.col("catalog_items").desc(),
            F.col("category"),
        )
    )


def top(ranked: DataFrame, count: int) -> list[str]:
    """The first `count` categories with distinct, non-empty column suffixes (safe_name)."""
    chosen: list[str] = []
    suffixes: set[str] = set()
    # A few times `count` rows of the ranking: bounded by config, safe to collect.
    for row in ranked.limit(4 * count).collect():  # bounded by limit
        suffix = safe_name(row["category"])
        if suffix and suffix not in suffixes:
            chosen.append(row["category"])
            suffixes.add(suffix)
        if len(chosen) == count:
            break
    return chosen


def stored(spark: SparkSession, config: Config) -> list[str] | None:
    """The categories chosen by an earlier run, or None."""
    path = stored_path(config)
    if not files.exists(spark, path):
        return None
    text = spark.sparkContext.wholeTextFiles(path).first()[1]
    return [str(c) for c in json.loads(text)["categories"]]


def configured_or_stored(spark: SparkSession, config: Config) -> list[str]:
    """The affinity categories as a reader of user_features sees them (activation's campaign
    check): the pinned list, else the stored choice, else none yet."""
    pinned = config.features.top_categories
    if pinned is not None:
        return list(pinned)
    return stored(spark, config) or []


def choose(
    spark: SparkSession,
    config: Config,
    items: DataFrame,
    lines: DataFrame,
    events: DataFrame,
    as_of: date,
) -> list[str]:
    """The pinned list, else the stored choice, else the top categories now (then stored)."""
    params = config.features
    if params.top_categories is not None:
        return list(params.top_categories)
    kept = stored(spark, config)
    if kept is not None:
        return kept
    chosen = top(ranking(items, lines, events, as_of), params.top_category_count)
    record = {
        "categories": chosen,
        "chosen_as_of": as_of.isoformat(),
        "ranked_by": ["order_lines", "product_events", "catalog_items", "category"],
        "count": params.top_category_count,
    }
    files.write_text(spark, stored_path(config), json.dumps(record, indent=2))
    log.info("feature categories chosen from the data (stored in %s): %s",
             stored_path(config), ", ".join(chosen) or "none")  # fmt: skip
    return chosen
