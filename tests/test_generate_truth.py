"""The planted item windows as the benchmarks read them (generate.truth.preferred_items) are the
items the generator draws from (generate.items.choose_item)."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.generate import customers, items, model, truth
from tests.support import RUN_DATE

PREFERENCES = "customer_id string, category string, weight double, item_offset int, " + (
    "item_window int, category_items int"
)


def test_a_window_wraps_around_its_category(spark: SparkSession) -> None:
    # home is category 1: its j-th item has index 1 + 8j, id I<index + 1>.
    rows = [("c1", "home", 0.5, 4, 3, 5), ("c1", "books", 0.05, 0, 3, 5)]
    got = truth.preferred_items(spark.createDataFrame(rows, PREFERENCES), 0.1)
    assert sorted(r["item_id"] for r in got.collect()) == ["I000002", "I000010", "I000034"]


def test_the_windows_are_what_the_generator_draws_from(spark: SparkSession) -> None:
    p = model.GenParams(42, RUN_DATE, 30, 60, 0.0)
    people = customers.customers(spark, p, partitions=1)
    planted = truth.preferred_items(truth.truth_item_preferences(people, p), 0.0)
    # Every position of each category's window, drawn the way the generator picks an item that
    # is not a bestseller (u_popular = 1).
    widths = F.array(*(F.lit(model.item_window(p.items, c)) for c in range(items.N_CATEGORIES)))
    drawn = (
        people.select("customer_id", "offsets", F.posexplode(widths).alias("category", "width"))
        .select("*", F.explode(F.sequence(F.lit(0), F.col("width") - 1)).alias("w"))
        .select(
            "customer_id",
            items.item_id(
                items.choose_item(
                    p,
                    F.col("category"),
                    F.col("offsets"),
                    F.lit(1.0),
                    (F.col("w") + 0.5) / F.col("width"),
                )
            ).alias("item_id"),
        )
    )
    window_items = sum(model.item_window(p.items, c) for c in range(items.N_CATEGORIES))
    assert planted.count() == drawn.count() == 30 * window_items
    assert planted.exceptAll(drawn).count() == 0
    assert drawn.exceptAll(planted).count() == 0
