"""Unit tests of the recommend transforms on tiny hand-built frames, exact values."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.recommend import baselines, evaluate, ids, rules, serve, similar
from precision_marketing.recommend.evaluate import RankingMetric
from precision_marketing.recommend.interactions import InteractionParams, interactions
from precision_marketing.recommend.job import assign_ids
from tests.recommend_fixture import EVENTS, ORDER_LINES

AS_OF = date(2026, 6, 30)


def assert_rows(df: DataFrame, expected: list[tuple], rel: float = 1e-9) -> None:
    """Rows equal in any order, floats within `rel` (pyspark.testing.assertDataFrameEqual
    imports pyspark.pandas, which fails with the pandas this venv has)."""
    got = sorted(tuple(r) for r in df.collect())
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, sorted(expected), strict=True):
        assert len(g) == len(e), (g, e)
        for a, b in zip(g, e, strict=True):
            assert a == (pytest.approx(b, rel=rel) if isinstance(b, float) else b), (got, expected)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


def ev(n: int, customer: str | None, kind: str, item: str | None, when: datetime) -> tuple:
    return (f"e{n}", "d", customer, "s", kind, item, None, None, None, when, when.date(), "web")


def line(order: str, customer: str, item: str, when: datetime, status: str, net: int) -> tuple:
    return (order, 1, customer, item, 1, 1 - net, net, 10.0, when, when.date(), status)


def test_interactions_weight_decay_cap_and_exclusions(spark: SparkSession) -> None:
    params = InteractionParams(
        {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},
        half_life_days=10.0,
        max_confidence=4.0,
        lookback_days=60,
    )
    events = spark.createDataFrame(
        [
            ev(1, "c1", "product_view", "i1", at(20)),  # 10 days old: 1 * 0.5
            ev(2, "c1", "add_to_cart", "i1", at(10)),  # 20 days: 3 * 0.25
            ev(3, "c1", "purchase", "i1", at(29)),  # purchases come from order lines only
            ev(4, "c1", "page_view", "i1", at(29)),  # type without a weight
            ev(5, None, "product_view", "i1", at(29)),  # anonymous
            ev(6, "c1", "product_view", "i1", at(30)),  # on the run date: not before it
            *[ev(10 + n, "c2", "add_to_cart", "i2", at(29, 12)) for n in range(3)],
        ],
        EVENTS,
    )
    orders = spark.createDataFrame(
        [
            line("o1", "c1", "i1", at(1), "completed", 1),
            line("o2", "c1", "i3", at(20), "refunded", 0),
            line("o3", "c1", "i4", at(20), "cancelled", 0),
            line("o4", "c2", "i5", at(20), "partially_refunded", 1),
        ],
        ORDER_LINES,
    )
    got = interactions(events, orders, params, AS_OF).select("customer_id", "item_id", "confidence")
    # o1 is 29 days old: 5 * 0.5 ** 2.9; c2's three carts are 0.5 days old and hit the cap.
    expected = [
        ("c1", "i1", 0.5 + 0.75 + 5 * 0.5**2.9),
        ("c2", "i2", 4.0),
        ("c2", "i5", 5 * 0.5),
    ]
    assert_rows(got, expected)


def test_new_ids_continue_after_the_max_in_key_order(spark: SparkSession) -> None:
    existing = spark.createDataFrame([("a", 0), ("b", 1)], "customer_id string, customer_idx int")
    keys = spark.createDataFrame([("d",), ("b",), ("c",), (None,), ("d",)], "customer_id string")
    got = ids.new_ids(keys, existing, "customer_id", "customer_idx")
    assert_rows(got, [("c", 2), ("d", 3)])


def test_id_map_is_append_only_and_stable(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "ids")
    first = spark.createDataFrame([("b",), ("a",)], "item_id string")
    assign_ids(spark, path, first, "item_id", "item_idx")
    again = sorted(map(tuple, assign_ids(spark, path, first, "item_id", "item_idx").collect()))
    assert again == [("a", 0), ("b", 1)]
    more = spark.createDataFrame([("c",), ("a",)], "item_id string")
    later = sorted(map(tuple, assign_ids(spark, path, more, "item_id", "item_idx").collect()))
    assert later == [("a", 0), ("b", 1), ("c", 2)]


def _ranked(spark: SparkSession, lists: dict[int, list[int]]) -> DataFrame:
    rows = [(c, r + 1, i) for c, items in lists.items() for r, i in enumerate(items)]
    return spark.createDataFrame(rows, "customer_idx int, rank int, item_idx int")


def test_ranking_metrics_match_hand_computation_and_spark(spark: SparkSession) -> None:
    truth = spark.createDataFrame(
        [(1, [1.0, 2.0, 3.0]), (2, [5.0]), (3, [7.0])], "customer_idx int, relevant array<double>"
    )
    ranked = _ranked(spark, {1: [1, 4, 2], 2: [6, 5]})  # customer 3 gets nothing
    got = {
        (m.k, m.metric): m.value
        for m in evaluate.ranking_metrics("als", evaluate.ranked_lists(ranked), truth, [1, 2])
    }
    g = 1 / math.log2(3)
    hand: dict[tuple[int, RankingMetric], float] = {
        (1, "precisionAtK"): (1 + 0 + 0) / 3,
        (1, "recallAtK"): (1 / 3) / 3,
        (1, "ndcgAtK"): (1 + 0 + 0) / 3,
        (1, "meanAveragePrecisionAtK"): (1 + 0 + 0) / 3,
        (2, "precisionAtK"): (1 / 2 + 1 / 2 + 0) / 3,
        (2, "recallAtK"): (1 / 3 + 1 + 0) / 3,
        (2, "ndcgAtK"): (1 / (1 + g) + g / 1 + 0) / 3,
        (2, "meanAveragePrecisionAtK"): (1 / 2 + (1 / 2) / 1 + 0) / 3,
    }
    assert got == pytest.approx(hand, rel=1e-12)
    # Same definitions as Spark's evaluator (which makes one pass per metric and k).
    judged = truth.join(evaluate.ranked_lists(ranked), "customer_idx", "left").select(
        "relevant", F.coalesce("predicted", F.array().cast("array<double>")).alias("predicted")
    )
    for (k, metric), value in ((key, v) for key, v in hand.items() if key[0] == 2):
        spark_value = RankingEvaluator(
            predictionCol="predicted", labelCol="relevant", metricName=metric, k=k
        ).evaluate(judged)
        assert spark_value == pytest.approx(value, rel=1e-12), (k, metric)


def test_catalog_coverage(spark: SparkSession) -> None:
    ranked = _ranked(spark, {1: [1, 4, 2], 2: [1, 5]})
    got = evaluate.catalog_coverage("als", ranked, 10, [1, 2, 3])
    assert [(m.k, m.value) for m in got] == [(1, 0.1), (2, 0.3), (3, 0.4)]


def test_validation_truth_drops_excluded_items_and_unknown_customers(spark: SparkSession) -> None:
    schema = "customer_idx int, item_idx int"
    train = spark.createDataFrame([(1, 10), (1, 11), (2, 10)], schema)
    future = spark.createDataFrame([(1, 10), (1, 12), (2, 10), (3, 13)], schema)
    # Everything trained on is excluded: only 1's new item 12 is relevant.
    got = evaluate.validation_truth(train, future, train)
    assert_rows(got, [(1, [12.0])])
    # Nothing excluded: re-interactions are relevant too (what exclude=none serves).
    got = evaluate.validation_truth(train, future, train.limit(0))
    assert_rows(got, [(1, [10.0, 12.0]), (2, [10.0])])


CANDS = "array<struct<item_idx:int,score:double>>"


def test_top_n_excludes_then_falls_back_with_sources(spark: SparkSession) -> None:
    customers = spark.createDataFrame(
        [
            ("a", [(10, 0.9), (11, 0.8), (12, 0.7), (13, 0.6)], [11], None, [(20, 5.0), (30, 4.0)]),
            ("b", [(10, 0.9)], None, [(10, 3.0), (20, 2.0), (21, 1.0)], [(20, 5.0), (30, 4.0)]),
            ("c", None, [30], None, [(20, 5.0), (30, 4.0), (40, 3.0)]),
            ("d", None, [20, 30], None, [(20, 5.0), (30, 4.0)]),
        ],
        f"customer_id string, als {CANDS}, excluded array<int>, "
        f"segment_popular {CANDS}, popular {CANDS}",
    )
    got = serve.top_n(customers, ["customer_id"], 3)
    assert_rows(
        got,
        [
            ("a", 1, 10, 0.9, "als"),
            ("a", 2, 12, 0.7, "als"),
            ("a", 3, 13, 0.6, "als"),
            ("b", 1, 10, 0.9, "als"),
            ("b", 2, 20, 2.0, "segment_popular"),
            ("b", 3, 21, 1.0, "segment_popular"),
            ("c", 1, 20, 5.0, "popular"),
            ("c", 2, 40, 3.0, "popular"),
        ],
    )


def test_popularity_counts_customers_and_breaks_ties(spark: SparkSession) -> None:
    inter = spark.createDataFrame(
        [
            ("c1", 1, 9.0),
            ("c2", 1, 1.0),
            ("c1", 2, 1.0),
            ("c2", 2, 1.0),
            ("c3", 3, 30.0),  # one heavy user does not make an item popular
            ("c1", 4, 1.0),
            ("c2", 4, 1.0),
            ("c1", 5, 5.0),
            ("c2", 5, 5.0),  # 5 is inactive
        ],
        "customer_id string, item_idx int, confidence double",
    )
    active = spark.createDataFrame([(i,) for i in (1, 2, 3, 4)], "item_idx int")
    got = baselines.popular(inter, active, 3).first()
    assert got is not None
    assert [(x["item_idx"], x["score"]) for x in got["items"]] == [(1, 2.0), (2, 2.0), (4, 2.0)]
    segments = spark.createDataFrame([("c1", 1), ("c3", 2)], "customer_id string, segment_id int")
    by_segment = {
        r["segment_id"]: [x["item_idx"] for x in r["items"]]
        for r in baselines.segment_popular(inter, segments, active, 2).collect()
    }
    assert by_segment == {1: [1, 2], 2: [3]}


def test_latest_segments_point_in_time(spark: SparkSession) -> None:
    segs = spark.createDataFrame(
        [
            ("c1", 1, date(2026, 6, 1), "v1"),
            ("c1", 2, date(2026, 6, 20), "v1"),
            ("c1", 3, date(2026, 7, 1), "v1"),
            ("c2", 4, date(2026, 6, 1), "v1"),
        ],
        "customer_id string, segment_id int, as_of_date date, model_version string",
    )
    got = baselines.latest_segments(segs, date(2026, 6, 30))
    assert_rows(got, [("c1", 2), ("c2", 4)])


def test_unit_factors_and_neighbours(spark: SparkSession) -> None:
    factors = spark.createDataFrame(
        [(1, [3.0, 4.0]), (2, [0.0, 0.0])], "id int, features array<float>"
    )
    unit = {r["id"]: list(r["features"]) for r in similar.unit_factors(factors).collect()}
    assert unit == {1: pytest.approx([0.6, 0.8])}
    recs = spark.createDataFrame(
        [(1, [(1, 1.0), (3, 0.9), (2, 0.5)]), (2, [(3, 0.7), (2, 1.0), (1, 0.5)])],
        "item_idx int, recommendations array<struct<item_idx:int,rating:float>>",
    )
    got = similar.factor_neighbours(recs, 2)
    assert_rows(got, [(1, 1, 3, 0.9), (1, 2, 2, 0.5), (2, 1, 3, 0.7), (2, 2, 1, 0.5)], rel=1e-6)


def test_content_neighbours_same_category_brand_nearest_price(spark: SparkSession) -> None:
    schema = "item_id string, category string, brand string, price double"
    catalog = spark.createDataFrame(
        [
            ("new", "home", "A", 20.0),
            ("p19", "home", "A", 19.0),
            ("p22", "home", "A", 22.0),
            ("p18", "home", "A", 18.0),
            ("q20", "home", "B", 20.0),  # other brand
            ("r20", "toys", "A", 20.0),  # other category
        ],
        schema,
    )
    new = catalog.where("item_id = 'new'")
    got = similar.content_neighbours(new, catalog, 3)
    assert_rows(got, [("new", 1, "p19", -1.0), ("new", 2, "p18", -2.0), ("new", 3, "p22", -2.0)])


def test_rules_from_kept_baskets(spark: SparkSession) -> None:
    orders = spark.createDataFrame(
        [
            line("o1", "c1", "a", at(10), "completed", 1),
            ("o1", 2, "c1", "b", 1, 0, 1, 10.0, at(10), at(10).date(), "completed"),
            line("o2", "c2", "a", at(11), "completed", 1),
            ("o2", 2, "c2", "b", 1, 0, 1, 10.0, at(11), at(11).date(), "completed"),
            line("o3", "c3", "c", at(12), "completed", 1),
            line("o4", "c4", "c", at(12), "partially_refunded", 1),
            ("o4", 2, "c4", "a", 1, 1, 0, 10.0, at(12), at(12).date(), "refunded"),
        ],
        ORDER_LINES,
    )
    baskets = rules.baskets(orders, AS_OF, 60)
    got = rules.association_rules(baskets, 2, 0.5, 1.0)
    # a and b: 2 of 4 baskets each and always together -> confidence 1, lift 1 / 0.5 = 2.
    assert_rows(got, [(["a"], "b", 0.5, 1.0, 2.0), (["b"], "a", 0.5, 1.0, 2.0)])
    # min_orders is a count of baskets: no pair is in 3 of them.
    assert rules.association_rules(baskets, 3, 0.5, 1.0).count() == 0


def test_rules_keep_the_best_consequents_of_short_antecedents(spark: SparkSession) -> None:
    # Four baskets: {a, b, c} twice, {a, b} once, {a, d} once.
    baskets = spark.createDataFrame(
        [("o1", ["a", "b", "c"]), ("o2", ["a", "b", "c"]), ("o3", ["a", "b"]), ("o4", ["a", "d"])],
        "order_id string, items array<string>",
    )
    every = rules.association_rules(baskets, 2, 0.5, 0.0)
    # Six one-item rules among a, b and c, and [a, b] -> c, [a, c] -> b, [b, c] -> a.
    assert every.where(F.size("antecedent") == 2).count() == 3
    assert every.count() == 9
    capped = rules.association_rules(baskets, 2, 0.5, 0.0, max_antecedent_items=1, per_antecedent=1)
    # a -> b and a -> c tie on lift (1): confidence 3/4 beats 1/2. b -> c and c -> b (lift
    # 4/3) beat b -> a and c -> a (lift 1).
    assert_rows(
        capped,
        [
            (["a"], "b", 0.75, 0.75, 1.0),
            (["b"], "c", 0.5, 2 / 3, 4 / 3),
            (["c"], "b", 0.5, 1.0, 4 / 3),
        ],
    )
