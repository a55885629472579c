"""features: hand-computed values on a tiny silver fixture, point-in-time cut, RFM grid, reruns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, StringType, StructField, StructType

from precision_marketing.config import Config
from precision_marketing.features import cadence, categories, transforms
from precision_marketing.features.interests import ranked_tags
from precision_marketing.features.rfm import NO_PURCHASE, RFM_GRID, rfm_segment
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from tests.features_fixture import (
    AS_OF,
    BASE_CRM,
    BASE_EVENTS,
    BASE_ITEMS,
    BASE_LINES,
    CUSTOMERS,
    EVENTS,
    ITEMS,
    LATE_CRM,
    LATE_EVENTS,
    LATE_LINES,
    LATE_STORED_CRM,
    ORDER_LINES,
    event,
    line,
    ts,
    write_silver,
)
from tests.support import make_config, run_stage

CATEGORIES = ["electronics", "home", "fashion", "beauty", "sports", "books", "toys", "grocery"]

EXPECTED: dict[str, dict[str, Any]] = {
    "c1": {
        "loyalty_tier": "gold",  # the 2026-06-30T08:00 version is after as_of
        "age_band": "25-34",  # 34 on as_of: the band a later silver run stores does not leak
        "tenure_days": 180,
        "region": "west",
        "consent_email": True,
        "days_since_last_order": 10,
        "days_since_first_order": 531,
        "orders_30d": 2,
        "orders_90d": 2,
        "orders_365d": 3,
        "orders_lifetime": 4,  # o4 cancelled, o5 after as_of
        "spend_30d": 149.0,  # o1 100 + o2 (18 - refunded half 9) + 40
        "spend_90d": 149.0,
        "spend_365d": 189.0,  # + o3 40 (its refund comes after as_of)
        "spend_lifetime": 199.0,
        "avg_order_value": 49.75,
        "lines_per_order": 1.25,
        "discount_order_share": 0.25,
        "refund_rate": 1 / 6,
        "spend_share_electronics": 100 / 199,
        "spend_share_books": 19 / 199,
        "spend_share_home": 80 / 199,
        "spend_share_toys": 0.0,
        "sessions": 3,
        "sessions_30d": 3,
        "active_days": 3,
        "product_views": 3,
        "searches": 1,
        "add_to_carts": 1,
        "purchase_events": 1,
        "view_to_cart_rate": 1 / 3,
        "cart_to_purchase_rate": 1.0,
        "days_since_last_visit": 1,
        "preferred_platform": "web",
        "preferred_hour": 10,
        "email_opens": 1,
        "email_opens_30d": 1,
        "email_open_rate": 3.0,  # 1 open in the 10 days since first seen, per 30 days
        "campaign_clicks": 1,
        "campaign_click_rate": 1 / 3,
        "view_share_electronics": 1 / 3,
        "view_share_books": 1 / 3,
        "view_share_home": 1 / 3,
        "view_share_fashion": 0.0,
        "rfm_r": 5,
        "rfm_f": 3,
        "rfm_m": 3,
        "rfm_fm": 3,
        "rfm_segment": "Potential loyalist",
        # Purchase days 2025-01-15, 2026-03-01 (o3: refunded only after as_of), 06-01, 06-20
        # (o4 cancelled, o5 after as_of): gaps 410, 92 and 19 days.
        "purchase_gap_mean_days": 521 / 3,
        "purchase_gap_stddev_days": 207.8998156,  # sqrt(((410-m)^2+(92-m)^2+(19-m)^2) / 2)
        "purchase_recency_ratio": 10 / (521 / 3),
        # Last 90 days (from 04-01): 100 + 49; the 90 before (from 01-01): o3's 40.
        "spend_trend": (149 - 40) / (149 + 40),
    },
    "c2": {
        "loyalty_tier": "none",
        "age_band": "25-34",
        "tenure_days": 121,
        "days_since_last_order": 76,
        "days_since_first_order": 76,
        "orders_30d": 0,
        "orders_90d": 1,
        "orders_365d": 1,
        "orders_lifetime": 1,
        "spend_30d": 0.0,
        "spend_90d": 10.0,
        "spend_lifetime": 10.0,
        "avg_order_value": 10.0,
        "discount_order_share": 0.0,
        "refund_rate": 0.0,
        "spend_share_books": 1.0,
        "sessions": 1,  # d3's anonymous visit is claimed only after as_of
        "sessions_30d": 0,
        "active_days": 1,
        "product_views": 2,
        "searches": 0,
        "add_to_carts": 1,
        "view_to_cart_rate": 0.5,
        "cart_to_purchase_rate": 0.0,
        "days_since_last_visit": 60,
        "preferred_platform": "android",
        "preferred_hour": 20,
        "email_opens": 0,
        "email_open_rate": 0.0,
        "campaign_click_rate": 0.0,
        "view_share_books": 1.0,
        "rfm_r": 3,
        "rfm_f": 1,
        "rfm_m": 1,
        "rfm_segment": "Needs attention",
        "purchase_gap_mean_days": None,  # one purchase day
        "purchase_gap_stddev_days": None,
        "purchase_recency_ratio": None,
        "spend_trend": 1.0,  # 10 EUR on 04-15, nothing in the 90 days before
    },
    "c5": {
        "age_band": None,  # no birth year
        "tenure_days": 365,
        "days_since_last_order": None,
        "orders_lifetime": 0,
        "spend_lifetime": 0.0,
        "avg_order_value": None,
        "refund_rate": None,
        "spend_share_books": None,
        "sessions": 0,
        "product_views": 0,
        "view_to_cart_rate": None,
        "days_since_last_visit": None,
        "preferred_platform": None,
        "email_opens": 0,
        "view_share_books": None,
        "rfm_r": None,
        "rfm_segment": NO_PURCHASE,
        "interest_tags": [],
        "purchase_gap_mean_days": None,
        "spend_trend": None,
    },
}


def _config(tmp: Path, *overrides: str) -> Config:
    """Tiny LDA; the hand-computed values pin the generator's eight categories."""
    return make_config(
        tmp,
        "features.lda.topics=2",
        "features.lda.max_iter=5",
        "features.lda.min_documents=1",
        f"features.top_categories=[{', '.join(CATEGORIES)}]",
        *overrides,
    )


def _snapshot(spark: SparkSession, config: Config) -> DataFrame:
    table = tables.read(spark, tables.table_path(config, Layer.GOLD, "user_features"))
    return table.where(F.col("as_of_date") == AS_OF)


def _share_columns(df: DataFrame) -> list[str]:
    return sorted(c for c in df.columns if c.startswith(("view_share_", "spend_share_")))


def _features(spark: SparkSession, config: Config, late: bool = False) -> DataFrame:
    events = BASE_EVENTS + (LATE_EVENTS if late else [])
    crm = (LATE_STORED_CRM + LATE_CRM) if late else BASE_CRM
    lines = BASE_LINES + (LATE_LINES if late else [])
    write_silver(spark, config, events, crm, lines)
    run_stage(spark, config, "features", run_date=AS_OF)
    return tables.read(spark, tables.table_path(config, Layer.GOLD, "user_features"))


def _rows(df: DataFrame) -> list[tuple[Any, ...]]:
    """Every row as a tuple in a fixed order (tiny frames: compared on the driver)."""
    return sorted(tuple(r) for r in df.orderBy("as_of_date", "customer_id").collect())


@dataclass(frozen=True)
class Runs:
    config: Config
    first: list[tuple[Any, ...]]  # the whole table after runs for 06-01 and as_of


@pytest.fixture(scope="module")
def runs(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Features for 2026-06-01 and as_of, then as_of once more (the rerun)."""
    config = _config(tmp_path_factory.mktemp("features"))
    write_silver(spark, config, BASE_EVENTS, BASE_CRM, BASE_LINES)
    run_stage(spark, config, "features", run_date=date(2026, 6, 1))
    run_stage(spark, config, "features", run_date=AS_OF)
    first = _rows(tables.read(spark, tables.table_path(config, Layer.GOLD, "user_features")))
    run_stage(spark, config, "features", run_date=AS_OF)
    return Runs(config, first)


@pytest.fixture(scope="module")
def features(spark: SparkSession, runs: Runs) -> DataFrame:
    table = tables.read(spark, tables.table_path(runs.config, Layer.GOLD, "user_features"))
    return table.where(F.col("as_of_date") == AS_OF).cache()


def test_one_row_per_known_customer(features: DataFrame) -> None:
    rows = features.select("customer_id", "as_of_date").orderBy("customer_id").collect()
    # c3 signs up on as_of, c4 is first known after it.
    assert [(r.customer_id, r.as_of_date) for r in rows] == [
        ("c1", AS_OF),
        ("c2", AS_OF),
        ("c5", AS_OF),
    ]


def test_features_equal_hand_computed_values(features: DataFrame) -> None:
    rows = {r.customer_id: r.asDict() for r in features.collect()}
    for customer, expected in EXPECTED.items():
        for column, value in expected.items():
            actual = rows[customer][column]
            assert actual == (pytest.approx(value) if isinstance(value, float) else value), (
                f"{customer}.{column}: {actual!r} != {value!r}"
            )


def test_every_configured_category_has_affinity_columns(features: DataFrame) -> None:
    for category in CATEGORIES:
        assert f"view_share_{category}" in features.columns
        assert f"spend_share_{category}" in features.columns


def test_interest_tags_name_topics_by_their_terms(features: DataFrame) -> None:
    terms = {"electronics", "books", "home", "Voltix", "Penfold", "Casalo"}
    tags = features.where("customer_id = 'c1'").first()["interest_tags"]  # type: ignore[index]
    assert 1 <= len(tags) <= 3
    for tag in tags:
        assert set(tag.split("#")[0].split("+")) <= terms


def test_rows_dated_on_or_after_as_of_change_nothing(
    spark: SparkSession, features: DataFrame, tmp_path: Path
) -> None:
    with_late = _features(spark, _config(tmp_path), late=True)
    assert _rows(with_late) == _rows(features)


def test_rerun_replaces_the_snapshot_only(spark: SparkSession, runs: Runs) -> None:
    again = tables.read(spark, tables.table_path(runs.config, Layer.GOLD, "user_features"))
    assert _rows(again) == runs.first
    counts = {r[0]: r[1] for r in again.groupBy("as_of_date").count().collect()}
    assert counts == {date(2026, 6, 1): 3, AS_OF: 3}


def test_categories_come_from_the_data_and_stay_fixed(spark: SparkSession, tmp_path: Path) -> None:
    """Top 2 by order lines (books 4; electronics and home 2 each), then product events
    (electronics 4, home 1); kept on the next run although toys now sell most."""
    config = make_config(
        tmp_path, "features.top_category_count=2", "features.lda.topics=2",
        "features.lda.max_iter=5", "features.lda.min_documents=1",
    )  # fmt: skip
    write_silver(spark, config, BASE_EVENTS, BASE_CRM, BASE_LINES)
    run_stage(spark, config, "features", run_date=AS_OF)
    chosen = ["books", "electronics"]
    assert categories.stored(spark, config) == chosen
    expected_columns = [
        "spend_share_books", "spend_share_electronics", "view_share_books",
        "view_share_electronics",
    ]  # fmt: skip
    assert _share_columns(_snapshot(spark, config)) == expected_columns
    toys = [line(f"t{n}", 1, "c2", "i4", 1, 5.0, "2026-06-15T10:00") for n in range(5)]
    items = [*BASE_ITEMS, ("i4", "Kid kite", "toys", "Kid", 5.0, True, ts("2026-06-01T00:00"))]
    write_silver(spark, config, BASE_EVENTS, BASE_CRM, BASE_LINES + toys, items)
    run_stage(spark, config, "features", run_date=AS_OF)
    assert categories.stored(spark, config) == chosen
    assert _share_columns(_snapshot(spark, config)) == expected_columns

    def silver(name: str) -> DataFrame:
        return tables.read(spark, tables.table_path(config, Layer.SILVER, name))

    ranked = categories.ranking(silver("items"), silver("order_lines"), silver("events"), AS_OF)
    assert categories.top(ranked, 2) == ["toys", "books"]  # what a fresh choice would take


def test_interest_tags_skipped_on_a_one_item_catalog(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, "features.lda.topics=2", "features.lda.min_documents=1")
    write_silver(spark, config, BASE_EVENTS, BASE_CRM, BASE_LINES, items=BASE_ITEMS[:1])
    with caplog.at_level(logging.WARNING, logger="precision_marketing"):
        run_stage(spark, config, "features", run_date=AS_OF)
    snapshot = _snapshot(spark, config)
    assert snapshot.schema["interest_tags"].dataType == ArrayType(StringType(), True)
    assert [r.interest_tags for r in snapshot.orderBy("customer_id").collect()] == [None] * 3
    skipped = [r.getMessage() for r in caplog.records if "interest tags" in r.getMessage()]
    assert skipped == [
        "interest tags skipped: 2 distinct terms for 2 topics (lda.min_vocabulary 4); "
        "interest_tags stays null"
    ]
    assert categories.stored(spark, config) == ["electronics"]


GRID_SCHEMA = StructType(
    [
        StructField("r", IntegerType(), True),
        StructField("f", IntegerType(), True),
        StructField("m", IntegerType(), True),
        StructField("expected", StringType(), True),
    ]
)


def test_rfm_grid_mapping(spark: SparkSession) -> None:
    cases = [
        (5, 5, 5, "Champions"),
        (5, 4, 3, "Champions"),  # FM = ceil(3.5) = 4
        (5, 1, 1, "New"),
        (5, 2, 3, "Potential loyalist"),
        (4, 1, 1, "Promising"),
        (4, 5, 4, "Loyal"),
        (3, 4, 4, "Loyal"),
        (3, 3, 3, "Needs attention"),
        (3, 1, 2, "Needs attention"),
        (2, 1, 2, "Hibernating"),
        (2, 3, 4, "At risk"),
        (1, 5, 5, "Cannot lose them"),
        (2, 5, 4, "Cannot lose them"),
        (1, 2, 1, "Lost"),
        (1, 3, 3, "At risk"),
        (None, None, None, NO_PURCHASE),
    ]
    df = spark.createDataFrame(cases, GRID_SCHEMA)
    got = df.select(
        rfm_segment(F.col("r"), F.col("f"), F.col("m")).alias("segment"), "expected"
    ).collect()
    assert [r.segment for r in got] == [r.expected for r in got]


def test_rfm_grid_covers_every_cell_with_the_ten_classic_names() -> None:
    assert sorted(RFM_GRID) == [1, 2, 3, 4, 5]
    assert all(len(row) == 5 for row in RFM_GRID.values())
    assert {name for row in RFM_GRID.values() for name in row} == {
        "Champions",
        "Loyal",
        "Potential loyalist",
        "New",
        "Promising",
        "Needs attention",
        "At risk",
        "Cannot lose them",
        "Hibernating",
        "Lost",
    }


def test_the_customer_base_is_the_crm_plus_active_customers_it_does_not_list(
    spark: SparkSession,
) -> None:
    """K1 signed up before the date, K2 after it (out, though active), K3 only ever ordered;
    without a CRM the active customers alone are the base, with null CRM attributes."""
    as_of = date(2026, 6, 30)
    updated = datetime(2026, 1, 1, tzinfo=UTC)
    crm = spark.createDataFrame(
        [
            ("K1", None, None, "30-39", "F", "north", date(2025, 1, 1), "gold", True, None, None,
             updated, None),
            ("K2", None, None, "40-49", "M", "south", date(2026, 7, 5), "none", True, None, None,
             updated, None),
        ],
        CUSTOMERS,
    )  # fmt: skip
    active = spark.createDataFrame([("K2",), ("K3",), ("K3",), ("K4",)], "customer_id string")

    def base(history: DataFrame) -> list[tuple[Any, ...]]:
        found = transforms.customer_base(history, active, as_of)
        return sorted(
            tuple(r) for r in found.select("customer_id", "region", "tenure_days").collect()
        )

    assert base(crm) == [("K1", "north", 545), ("K3", None, None), ("K4", None, None)]
    assert base(crm.limit(0)) == [("K2", None, None), ("K3", None, None), ("K4", None, None)]


def test_web_orders_give_interest_terms_when_the_events_hold_no_purchases(
    spark: SparkSession,
) -> None:
    """A store order never shows in events; a web order does, unless the shop has no
    clickstream (purchases_in_events false), when its order lines are the only trace."""
    lines = spark.createDataFrame(
        [
            line("o1", 1, "k1", "i1", 1, 5.0, "2026-06-01T10:00"),
            line("o2", 1, "k2", "i1", 1, 5.0, "2026-06-02T10:00", channel="store"),
            line("o3", 1, "k3", "i1", 1, 5.0, "2026-06-03T10:00", status="cancelled"),
        ],
        ORDER_LINES,
    )
    items = spark.createDataFrame([("i1", "Lamp", "home", "Casalo", 5.0, True, None)], ITEMS)
    behaviour = spark.createDataFrame(
        [], f"customer_id string, {transforms.TOUCHED_TERMS} array<string>"
    )

    def terms(purchases_in_events: bool) -> list[tuple[str, list[str]]]:
        found = transforms.activity_terms(
            behaviour, lines, items, date(2026, 6, 30), purchases_in_events
        )
        return sorted((r["customer_id"], sorted(r["terms"])) for r in found.collect())

    assert terms(True) == [("k2", ["Casalo", "home"])]
    assert terms(False) == [("k1", ["Casalo", "home"]), ("k2", ["Casalo", "home"])]


def test_features_do_not_depend_on_partitioning(spark: SparkSession) -> None:
    """Money is summed in exact cents: 19.99 + 1.17 + 15.97 over two orders (the second fully
    refunded) is an AOV of 37.13 / 2 = 18.565, 18.57 half up. Summed as doubles, the last bit
    of 37.13, so the rounding, followed the order Spark added the lines in."""
    rows = [
        line("o1", n, "k1", "i1", 1, price, "2026-06-01T10:00")
        for n, price in enumerate((19.99, 1.17, 15.97), 1)
    ]
    rows.append(
        line("o2", 1, "k1", "i2", 1, 5.0, "2026-06-02T10:00", refunded=1,
             refunded_at="2026-06-03T00:00", status="refunded")
    )  # fmt: skip
    lines = spark.createDataFrame(rows, ORDER_LINES)
    events = spark.createDataFrame(BASE_EVENTS, EVENTS)
    items = spark.createDataFrame(BASE_ITEMS, ITEMS)

    def computed(partitions: int, seed: int) -> list[tuple[Any, ...]]:
        orders = transforms.order_features(
            lines.repartition(partitions, F.rand(seed)), items, AS_OF, [30, 365], CATEGORIES
        )
        behaviour = transforms.behaviour_features(
            transforms.stitch(
                transforms.events_before(events.repartition(partitions, F.rand(seed)), AS_OF)
            ),
            items,
            AS_OF,
            CATEGORIES,
        ).withColumn(transforms.TOUCHED_TERMS, F.sort_array(transforms.TOUCHED_TERMS))
        joined = orders.join(behaviour, "customer_id", "full")
        return sorted(tuple(r) for r in joined.collect())

    first = computed(1, 0)
    for partitions, seed in ((2, 1), (3, 7), (5, 42), (8, 3)):
        assert computed(partitions, seed) == first, (partitions, seed)
    k1 = next(r for r in first if r[0] == "k1")
    aov = transforms.order_features(lines, items, AS_OF, [30, 365], CATEGORIES).columns.index(
        "avg_order_value"
    )
    assert (k1[aov], k1[aov - 1]) == (18.57, 37.13)  # avg_order_value, spend_lifetime


def test_tied_interest_topics_rank_by_name(spark: SparkSession) -> None:
    """Equal weights rank by topic name; topics under the minimum weight are left out."""
    weights = spark.createDataFrame([([0.3, 0.35, 0.3, 0.05],)], "w array<double>")
    tags = ranked_tags(F.col("w"), ["home", "books", "beauty", "toys"], 0.1, 3)
    assert weights.select(tags.alias("t")).first()["t"] == ["books", "beauty", "home"]  # type: ignore[index]
    top_two = ranked_tags(F.col("w"), ["home", "books", "beauty", "toys"], 0.1, 2)
    assert weights.select(top_two.alias("t")).first()["t"] == ["books", "beauty"]  # type: ignore[index]


# Three more items, so that forty customers' views make a vocabulary of twelve terms.
CROWD_ITEMS = [
    *BASE_ITEMS,
    ("i4", "Lumen scarf", "fashion", "Lumen", 30.0, True, ts("2026-01-01T00:00")),
    ("i5", "Stride shoe", "sports", "Stride", 60.0, True, ts("2026-01-01T00:00")),
    ("i6", "Bloq bricks", "toys", "Bloq", 20.0, True, ts("2026-01-01T00:00")),
]


def crowd_events(customers: int) -> list[tuple[Any, ...]]:
    """1 to 4 product views per customer k00, k01, ...: even ones on i1-i3, odd ones on i4-i6,
    every fifth customer one item of the other half as well."""
    category = {item[0]: item[2] for item in CROWD_ITEMS}
    rows = []
    for n in range(customers):
        items = [1 + (n % 2) * 3 + (n * 5 + j * 2) % 3 for j in range(1 + n % 4)]
        if n % 5 == 0:
            items.append(4 - (n % 2) * 3)
        for j, item in enumerate(items):
            rows.append(
                event(f"v{n}-{j}", f"dk{n}", f"k{n:02d}", f"sk{n}", "product_view",
                      f"2026-06-{10 + j}T10:00", "web", f"i{item}", category[f"i{item}"])
            )  # fmt: skip
    return rows


def test_user_features_do_not_depend_on_partitioning(spark: SparkSession, tmp_path: Path) -> None:
    """The same silver layer built with the test session's 2 shuffle partitions and adaptive
    execution off, then with 7 and adaptive coalescing on (conf/yarn.yaml's way): the same
    user_features, interest tags included. LDA fitted on whatever partitioning it was handed
    tagged most customers differently (found by the YARN comparison in tests/test_yarn.py)."""
    config = _config(tmp_path)
    write_silver(spark, config, BASE_EVENTS + crowd_events(40), BASE_CRM, BASE_LINES, CROWD_ITEMS)
    run_stage(spark, config, "features", run_date=AS_OF)
    first = _snapshot(spark, config)
    tags = first.columns.index("interest_tags")
    expected = _rows(first)
    other = {
        "spark.sql.shuffle.partitions": "7",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
    }
    saved = {key: spark.conf.get(key) for key in other}  # all three set by conf/test.yaml
    try:
        for key, value in other.items():
            spark.conf.set(key, value)
        run_stage(spark, config, "features", run_date=AS_OF)
        again = _rows(_snapshot(spark, config))
    finally:
        for key, was in saved.items():
            spark.conf.set(key, str(was))
    assert len(expected) == 43  # c1, c2, c5 and the forty
    assert sum(1 for row in expected if row[tags]) == 42  # fitted: all but c5, who did nothing
    assert again == expected


def test_cadence_features_on_hand_written_purchases(spark: SparkSession) -> None:
    """Purchase days (kept units, known at as_of), their gaps, lateness by the customer's own
    mean gap, and the bounded spend trend of the last 90 days against the 90 before."""

    def at(days_before: int, hour: int = 12) -> str:
        return f"{AS_OF - timedelta(days=days_before)}T{hour:02d}:00"

    rows = [
        # Gaps 10 and 10 (two orders on day 10 are one purchase day); due now.
        line("s1", 1, "steady", "i2", 1, 10.0, at(30)),
        line("s2", 1, "steady", "i2", 1, 10.0, at(20)),
        line("s3", 1, "steady", "i2", 1, 10.0, at(10, 9)),
        line("s4", 1, "steady", "i2", 1, 10.0, at(10, 18)),
        # One gap of 70 days, both purchases in the earlier 90 days: spend stopped.
        line("l1", 1, "lapsed", "i2", 2, 10.0, at(170)),
        line("l2", 1, "lapsed", "i2", 1, 10.0, at(100)),
        # 30 EUR in the earlier window, 10 in the recent one: (10 - 30) / 40.
        line("m1", 1, "mixed", "i2", 3, 10.0, at(120)),
        line("m2", 1, "mixed", "i2", 1, 10.0, at(60)),
        # A refund known at as_of and a cancellation leave one purchase day.
        line("r1", 1, "returned", "i2", 1, 10.0, at(50), refunded=1,
             refunded_at=at(48), status="refunded"),
        line("r2", 1, "returned", "i2", 1, 10.0, at(45), status="cancelled"),
        line("r3", 1, "returned", "i2", 1, 10.0, at(40)),
        # Refunded only after as_of: still a purchase at as_of.
        line("k1", 1, "late_refund", "i2", 1, 10.0, at(20)),
        line("k2", 1, "late_refund", "i2", 1, 10.0, at(5), refunded=1,
             refunded_at=f"{AS_OF + timedelta(days=2)}T00:00", status="refunded"),
        # At the as_of instant: not before it.
        line("a1", 1, "after", "i2", 1, 10.0, f"{AS_OF}T00:00"),
    ]  # fmt: skip
    lines = spark.createDataFrame(rows, ORDER_LINES)
    got = {
        r["customer_id"]: tuple(r[c] for c in cadence.COLUMNS)
        for r in cadence.cadence_features(lines, AS_OF).collect()
    }
    assert got == {
        "steady": (10.0, 0.0, 1.0, 1.0),
        "lapsed": (70.0, None, 100 / 70, -1.0),
        "mixed": (60.0, None, 1.0, -0.5),
        "returned": (None, None, None, 1.0),
        "late_refund": (15.0, None, 5 / 15, 1.0),
    }
