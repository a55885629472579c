"""segment: k by silhouette, stable ids across retrains, migrations, reruns, model and report.

The feature snapshots are hand-built: three well-separated blobs of 20 customers each.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from precision_marketing.config import Config, ConfigError, load_config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.segment import model, naming
from precision_marketing.segment.job import model_dir, model_version
from tests.support import make_config, run_stage

WEEK1 = date(2026, 6, 23)
WEEK2 = date(2026, 6, 30)
FEATURES = ["days_since_last_order", "orders_lifetime", "spend_lifetime", "sessions"]
SCHEMA = StructType(
    [
        StructField("customer_id", StringType(), False),
        StructField("days_since_last_order", IntegerType(), True),
        StructField("orders_lifetime", LongType(), False),
        StructField("spend_lifetime", DoubleType(), False),
        StructField("sessions", LongType(), False),
        StructField("as_of_date", DateType(), False),
    ]
)
# Blob centres: (days since last order or None, orders, spend, sessions).
BLOBS = {
    "a": (7, 21, 2015.0, 52),  # recent, frequent, high spend
    "b": (352, 9, 1515.0, 7),  # long gone, used to spend a lot
    "c": (None, 0, 0.0, 32),  # browse, never buy
}


def snapshot(as_of: date, shift: int = 0, movers: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """20 customers per blob with small deterministic scatter; `movers` take blob b's centre."""
    rows = []
    for blob, centre in BLOBS.items():
        for i in range(20):
            customer = f"{blob}{i:02d}"
            days, orders, spend, sessions = BLOBS["b"] if customer in movers else centre
            rows.append(
                (
                    customer,
                    None if days is None else days + i % 5 + shift,
                    orders + i % 3,
                    spend + 10.0 * (i % 4),
                    sessions + i % 5 + shift,
                    as_of,
                )
            )
    return rows


def _config(tmp: Path) -> Config:
    return make_config(
        tmp,
        f"segment.model_features=[{', '.join(FEATURES)}]",
        "segment.log_features=[]",
        f"segment.profile_features=[{', '.join(FEATURES)}]",
        "segment.k_min=2",
        "segment.k_max=4",
        "segment.max_iter=10",
        "segment.pca_sample=40",
    )


def _write_features(spark: SparkSession, config: Config, rows: list[tuple[Any, ...]]) -> None:
    as_of = rows[0][-1]
    tables.replace_where(
        spark.createDataFrame(rows, SCHEMA),
        tables.table_path(config, Layer.GOLD, "user_features"),
        f"as_of_date = '{as_of.isoformat()}'",
        partition_by=["as_of_date"],
    )


def _gold(spark: SparkSession, config: Config, name: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, Layer.GOLD, name))


def _rows(df: DataFrame, *order: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in df.orderBy(*order).collect()]


@dataclass(frozen=True)
class Retrains:
    config: Config
    week2_first: dict[str, list[tuple[Any, ...]]]  # gold tables after the first week-2 run


OUTPUTS = {
    "segments": ("as_of_date", "customer_id"),
    "segment_profiles": ("as_of_date", "segment_id"),
    "segment_migrations": ("as_of_date", "from_segment_id", "to_segment_id"),
}


@pytest.fixture(scope="module")
def retrains(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Retrains:
    """Week 1, week 2 (a01 moved to blob b, the rest shifted a little), then week 2 again."""
    config = _config(tmp_path_factory.mktemp("segments"))
    _write_features(spark, config, snapshot(WEEK1))
    run_stage(spark, config, "segment", run_date=WEEK1)
    _write_features(spark, config, snapshot(WEEK2, shift=1, movers=("a01",)))
    run_stage(spark, config, "segment", run_date=WEEK2)
    first = {name: _rows(_gold(spark, config, name), *order) for name, order in OUTPUTS.items()}
    run_stage(spark, config, "segment", run_date=WEEK2)
    return Retrains(config, first)


def _segment_of(spark: SparkSession, config: Config, as_of: date) -> dict[str, int]:
    rows = _gold(spark, config, "segments").where(F.col("as_of_date") == as_of).collect()
    return {r.customer_id: r.segment_id for r in rows}


def _metadata(config: Config, as_of: date) -> dict[str, Any]:
    version = model_version(config.segment, as_of)
    return dict(json.loads(Path(model_dir(config, version), "metadata.json").read_text()))


def test_k_selection_picks_the_planted_k(retrains: Retrains) -> None:
    for as_of in (WEEK1, WEEK2):
        metrics = _metadata(retrains.config, as_of)["metrics"]
        assert _metadata(retrains.config, as_of)["params"]["k"] == 3
        assert sorted(metrics["silhouette_by_k"]) == ["2", "3", "4"]
        assert metrics["silhouette"] == max(metrics["silhouette_by_k"].values())


def test_segments_follow_the_blobs(spark: SparkSession, retrains: Retrains) -> None:
    week1 = _segment_of(spark, retrains.config, WEEK1)
    assert len(week1) == 60
    for blob in BLOBS:
        assert len({week1[f"{blob}{i:02d}"] for i in range(20)}) == 1
    assert len(set(week1.values())) == 3


def test_ids_and_names_stay_stable_across_retrains(spark: SparkSession, retrains: Retrains) -> None:
    week1 = _segment_of(spark, retrains.config, WEEK1)
    week2 = _segment_of(spark, retrains.config, WEEK2)
    moved = {c for c in week1 if week1[c] != week2[c]}
    assert moved == {"a01"}
    assert week2["a01"] == week1["b00"]
    names = {
        (r.as_of_date, r.segment_id): r.segment_name
        for r in _gold(spark, retrains.config, "segments").select(
            "as_of_date", "segment_id", "segment_name"
        ).distinct().collect()
    }  # fmt: skip
    for segment_id in set(week1.values()):
        assert names[(WEEK1, segment_id)] == names[(WEEK2, segment_id)]


def test_names_come_from_the_profile_rules(spark: SparkSession, retrains: Retrains) -> None:
    profiles = _gold(spark, retrains.config, "segment_profiles").where(F.col("as_of_date") == WEEK1)
    week1 = _segment_of(spark, retrains.config, WEEK1)
    by_id = {r.segment_id: r for r in profiles.collect()}
    assert by_id[week1["a00"]].segment_name == "High-value loyal"
    assert by_id[week1["b00"]].segment_name == "Lapsing big spenders"
    assert by_id[week1["c00"]].segment_name == "Window shoppers"
    a = by_id[week1["a00"]]
    assert (a.size, a.share) == (20, pytest.approx(1 / 3))
    # Blob a: orders 21 + i % 3 over i = 0..19 -> 21 * 20 + (7 * 0 + 7 * 1 + 6 * 2) = 439.
    assert a.feature_means["orders_lifetime"] == pytest.approx(439 / 20)
    assert a.feature_medians["sessions"] == 54.0
    assert len(a.distinguishing_features) == 3
    assert a.description.startswith("20 customers (33%)")


def test_migration_matrix_counts_movers(spark: SparkSession, retrains: Retrains) -> None:
    week1 = _segment_of(spark, retrains.config, WEEK1)
    moves = {
        (r.from_segment_id, r.to_segment_id): r.customers
        for r in _gold(spark, retrains.config, "segment_migrations").collect()
    }
    a, b, c = week1["a00"], week1["b00"], week1["c00"]
    assert moves == {(a, a): 19, (a, b): 1, (b, b): 20, (c, c): 20}


def test_rerun_is_idempotent(spark: SparkSession, retrains: Retrains) -> None:
    for name, order in OUTPUTS.items():
        assert _rows(_gold(spark, retrains.config, name), *order) == retrains.week2_first[name]


def test_model_saved_with_metadata_and_reloads(spark: SparkSession, retrains: Retrains) -> None:
    directory = model_dir(retrains.config, model_version(retrains.config.segment, WEEK2))
    metadata = _metadata(retrains.config, WEEK2)
    features_path = tables.table_path(retrains.config, Layer.GOLD, "user_features")
    assert metadata["feature_table"] == {"path": features_path, "delta_version": 1}
    assert metadata["params"]["k"] == 3
    assert metadata["previous_model_version"] == model_version(retrains.config.segment, WEEK1)
    assert metadata["previous_model_version"].startswith("km-20260623-")
    reloaded = PipelineModel.load(f"{directory}/pipeline")
    week2 = tables.read(spark, features_path).where(F.col("as_of_date") == WEEK2)
    clusters = reloaded.transform(week2).select("customer_id", model.CLUSTER)
    by_cluster = {s["cluster"]: s["segment_id"] for s in metadata["segments"]}
    expected = _segment_of(spark, retrains.config, WEEK2)
    assert {r.customer_id: by_cluster[r.cluster] for r in clusters.collect()} == expected


def test_report_has_page_and_charts(retrains: Retrains) -> None:
    folder = Path(tables.reports_path(retrains.config, "segment", WEEK2.isoformat()))
    names = set(os.listdir(folder))
    assert {"index.html", "sizes.png", "profile_heatmap.png", "pca.png", "silhouette.png"} <= names
    page = (folder / "index.html").read_text()
    assert "High-value loyal" in page
    assert all(f'src="{n}"' in page for n in ("sizes.png", "pca.png"))


def test_hungarian_matching_undoes_a_permutation() -> None:
    old = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    previous = model.Previous("v1", ["x", "y"], old, [7, 3, 5], ["A", "B", "C"])
    new = old[[2, 0, 1]] + 0.5  # same clusters, shuffled and drifted
    matched = model.match_clusters(new, np.array([1.0, 1.0]), previous)
    assert matched == {0: 2, 1: 0, 2: 1}
    assert model.assign_ids([10, 10, 10], matched, previous) == [5, 7, 3]


def test_new_clusters_get_fresh_ids_biggest_first() -> None:
    old = np.array([[0.0], [10.0]])
    previous = model.Previous("v1", ["x"], old, [1, 4], ["A", "B"])
    new = np.array([[10.2], [5.0], [0.1], [20.0]])
    matched = model.match_clusters(new, np.array([1.0]), previous)
    assert matched == {0: 1, 2: 0}
    assert model.assign_ids([5, 30, 5, 40], matched, previous) == [4, 6, 1, 5]
    assert model.assign_ids([5, 30], {}, None) == [2, 1]


def test_naming_rules_and_unique_names() -> None:
    new = {"tenure_days": -1.5, "orders_lifetime": -0.3}
    assert naming.rule_name({**new, "sessions": -0.4}) == "New browsers"
    # Without visit data (a transactions-only shop) nobody is called a browser.
    assert naming.rule_name(new) == "New customers"
    assert naming.rule_name({"spend_lifetime": 1.0, "orders_lifetime": 0.8}) == "High-value loyal"
    # No rule fits: named by the feature farthest from the population, if far enough.
    assert naming.rule_name({"spend_lifetime": 0.1}) == naming.FALLBACK
    assert naming.rule_name({"days_since_last_order": -0.9, "spend_lifetime": 0.3}) == (
        "Recent buyers"
    )
    assert naming.rule_name({"orders_lifetime": 0.4, "spend_lifetime": 0.45}) == "Higher spenders"
    assert naming.unique_names(["X", "X", "Y", "X"], [False, True, False, False]) == [
        "X 2",
        "X",
        "Y",
        "X 3",
    ]


# A shop without events or discounts: email_open_rate and sessions have no value for anyone,
# discount_order_share is 0 for everyone. Two clear groups (blobs a and b).
SPARSE_FEATURES = [
    "days_since_last_order", "orders_lifetime", "spend_lifetime", "email_open_rate", "sessions",
    "discount_order_share",
]  # fmt: skip
SPARSE_SCHEMA = StructType(
    [
        StructField("customer_id", StringType(), False),
        StructField("days_since_last_order", IntegerType(), True),
        StructField("orders_lifetime", LongType(), False),
        StructField("spend_lifetime", DoubleType(), False),
        StructField("email_open_rate", DoubleType(), True),
        StructField("sessions", LongType(), True),
        StructField("discount_order_share", DoubleType(), True),
        StructField("as_of_date", DateType(), False),
    ]
)
DROPPED = {
    "email_open_rate": "all null",
    "sessions": "all null",
    "discount_order_share": "constant",
}


def sparse_snapshot(as_of: date, blobs: str = "ab") -> list[tuple[Any, ...]]:
    return [
        (r[0], r[1], r[2], r[3], None, None, 0.0, as_of)
        for r in snapshot(as_of)
        if r[0][0] in blobs
    ]


class Captured(logging.Handler):
    """Warnings of the feature check (a module fixture cannot use caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass(frozen=True)
class Sparse:
    config: Config
    warnings: list[str]


@pytest.fixture(scope="module")
def sparse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Sparse:
    config = make_config(
        tmp_path_factory.mktemp("segments_sparse"),
        f"segment.model_features=[{', '.join(SPARSE_FEATURES)}]",
        "segment.log_features=[sessions]",
        f"segment.profile_features=[{', '.join(SPARSE_FEATURES)}]",
        "segment.k_max=3",
        "segment.max_iter=10",
        "segment.pca_sample=40",
    )
    rows = sparse_snapshot(WEEK1)
    tables.replace_where(
        spark.createDataFrame(rows, SPARSE_SCHEMA),
        tables.table_path(config, Layer.GOLD, "user_features"),
        f"as_of_date = '{WEEK1.isoformat()}'",
        partition_by=["as_of_date"],
    )
    captured = Captured()
    checker = logging.getLogger("precision_marketing.features.availability")
    checker.addHandler(captured)
    try:
        run_stage(spark, config, "segment", run_date=WEEK1)
    finally:
        checker.removeHandler(captured)
    return Sparse(config, captured.messages)


def test_features_without_data_are_left_out_with_one_warning_each(sparse: Sparse) -> None:
    assert sparse.warnings == [
        f"segment: feature '{f}' left out of this fit: {why} in "
        f"{tables.table_path(sparse.config, Layer.GOLD, 'user_features')} as_of_date=2026-06-23"
        for f, why in DROPPED.items()
    ]
    metadata = _metadata(sparse.config, WEEK1)
    assert metadata["features"] == {
        "configured": SPARSE_FEATURES,
        "used": ["days_since_last_order", "orders_lifetime", "spend_lifetime"],
        "used_categorical": [],
        "dropped": DROPPED,
    }
    assert metadata["params"]["model_features"] == metadata["features"]["used"]
    assert metadata["params"]["log_features"] == []
    page = Path(tables.reports_path(sparse.config, "segment", "2026-06-23")) / "index.html"
    text = page.read_text()
    assert "email_open_rate (all null), sessions (all null), discount_order_share (constant)" in (
        text
    )


def test_k_2_is_chosen_for_two_groups(spark: SparkSession, sparse: Sparse) -> None:
    metadata = _metadata(sparse.config, WEEK1)
    assert metadata["params"]["k"] == 2
    assert sorted(metadata["metrics"]["silhouette_by_k"]) == ["2", "3"]
    week1 = _segment_of(spark, sparse.config, WEEK1)
    assert len(week1) == 40
    assert {week1[f"a{i:02d}"] for i in range(20)} != {week1[f"b{i:02d}"] for i in range(20)}
    assert len(set(week1.values())) == 2


def test_descriptions_say_nothing_of_dropped_features(spark: SparkSession, sparse: Sparse) -> None:
    profiles = _gold(spark, sparse.config, "segment_profiles").collect()
    assert len(profiles) == 2
    for p in profiles:
        assert "visits" not in p.description
        assert "email" not in p.description
        assert {f for f, _ in p.distinguishing_features} <= {
            "days_since_last_order", "orders_lifetime", "spend_lifetime",
        }  # fmt: skip


def test_too_few_usable_features_stop_with_a_config_error(
    spark: SparkSession, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path,
        "segment.model_features=[orders_lifetime, email_open_rate, sessions, discount_order_share]",
        "segment.log_features=[]",
    )
    tables.replace_where(
        spark.createDataFrame(sparse_snapshot(WEEK1), SPARSE_SCHEMA),
        tables.table_path(config, Layer.GOLD, "user_features"),
        f"as_of_date = '{WEEK1.isoformat()}'",
        partition_by=["as_of_date"],
    )
    with pytest.raises(ConfigError) as raised:
        run_stage(spark, config, "segment", run_date=WEEK1)
    assert str(raised.value).startswith(
        "segment: 1 usable numeric feature(s) (orders_lifetime); need at least 2. Left out: "
        "email_open_rate (all null), sessions (all null), discount_order_share (constant)."
    )
    assert not Path(model_dir(config, model_version(config.segment, WEEK1))).exists()


@pytest.mark.parametrize(
    ("customers", "expected"), [(40, range(2, 5)), (15, range(2, 3)), (1_000, range(2, 11))]
)
def test_k_max_shrinks_with_the_customer_count(customers: int, expected: range) -> None:
    params = replace(load_config("test").segment, k_min=2, k_max=10, min_segment_customers=10)
    assert model.k_range(params, customers) == expected


def test_a_k_that_splits_off_a_handful_of_outliers_is_not_chosen(spark: SparkSession) -> None:
    # Two groups of 30 and two far outliers: silhouette is best at k = 3 (the outliers alone),
    # a segment of 3% that no campaign can use.
    rng = np.random.default_rng(7)
    points = [
        *((float(x), float(y)) for x, y in rng.normal(0.0, 0.3, (30, 2))),
        *((10.0 + float(x), float(y)) for x, y in rng.normal(0.0, 0.3, (30, 2))),
        (5.0, 40.0),
        (5.2, 40.1),
    ]
    prepared = spark.createDataFrame(
        [(Vectors.dense(p),) for p in points], StructType([StructField(model.VECTOR, VectorUDT())])
    ).cache()
    params = replace(
        load_config("test").segment,
        k_min=2,
        k_max=4,
        min_segment_customers=1,
        min_segment_share=0.0,
    )
    k, scores, _ = model.select_k(prepared, params, len(points))
    assert k == 3
    assert max(scores, key=lambda c: scores[c]) == 3
    k, _, _ = model.select_k(prepared, replace(params, min_segment_share=0.05), len(points))
    assert k == 2
    prepared.unpersist()
