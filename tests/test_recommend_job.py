"""The recommend job end to end on the tiny silver fixture: real Spark, Delta and ALS."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend.job import model_version, models_path
from tests import recommend_fixture as fx
from tests.support import make_config, run_stage


def gold(spark: SparkSession, config: Config, name: str, layer: Layer = Layer.GOLD) -> list[Any]:
    return tables.read(spark, tables.table_path(config, layer, name)).collect()


@pytest.fixture(scope="module")
def plain(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The job run twice on the same inputs, without gold/segments."""
    config = make_config(tmp_path_factory.mktemp("recommend_plain"))
    fx.write_silver(spark, config)
    run_stage(spark, config, "recommend", fx.RUN_DATE)
    first = {n: gold(spark, config, n) for n in ("recommendations", "similar_items", "rules")}
    ids_first = gold(spark, config, "recommend_item_ids")
    run_stage(spark, config, "recommend", fx.RUN_DATE)
    return {"config": config, "first": first, "ids_first": ids_first}


@pytest.fixture(scope="module")
def segmented(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    config = make_config(tmp_path_factory.mktemp("recommend_segments"))
    fx.write_silver(spark, config)
    # One snapshot before the tuning cutoff (the baseline's) and the run date's (served).
    fx.write_segments(spark, config, (fx.RUN_DATE - timedelta(days=8), fx.RUN_DATE))
    run_stage(spark, config, "recommend", fx.RUN_DATE)
    return config


def rows_by_customer(rows: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["rank"])):
        out.setdefault(row["customer_id"], []).append(row)
    return out


def test_every_active_customer_gets_exactly_n_rows(spark: SparkSession, plain: dict) -> None:
    config = plain["config"]
    by_customer = rows_by_customer(gold(spark, config, "recommendations"))
    n = config.recommend.top_n
    assert sorted(by_customer) == sorted(fx.ACTIVE_CUSTOMERS)  # C8 signs up later
    for customer, rows in by_customer.items():
        assert [r["rank"] for r in rows] == list(range(1, n + 1)), customer
        assert len({r["item_id"] for r in rows}) == n, customer


def test_bought_and_inactive_items_never_recommended(spark: SparkSession, plain: dict) -> None:
    rows = gold(spark, plain["config"], "recommendations")
    recommended = {(r["customer_id"], r["item_id"]) for r in rows}
    assert ("C1", "H1") not in recommended
    for customer in ("C5", "C6"):  # bought B1 and B2 together
        assert not {(customer, "B1"), (customer, "B2")} & recommended
    assert all(r["item_id"] in fx.ACTIVE_ITEMS for r in rows)  # never the inactive X9
    # Known customers are served by the tuned blend (its ALS list alone holds eight candidates
    # minus a few bought: enough for N).
    assert {r["source"] for r in rows if r["customer_id"] != fx.COLD} == {"blend"}
    # Refunded purchases are not exclusions: C2 returned H2, which ALS may still suggest.


def test_cold_customer_gets_global_popular_without_segments(
    spark: SparkSession, plain: dict
) -> None:
    cold = rows_by_customer(gold(spark, plain["config"], "recommendations"))[fx.COLD]
    assert {r["source"] for r in cold} == {"popular"}
    # Each touched by three customers (X9, by all six, is inactive): summed confidence decides.
    assert [r["item_id"] for r in cold] == ["B2", "B1", "B3"]


def test_cold_customer_gets_segment_popular_with_segments(
    spark: SparkSession, segmented: Config
) -> None:
    cold = rows_by_customer(gold(spark, segmented, "recommendations"))[fx.COLD]
    assert {r["source"] for r in cold} == {"segment_popular"}
    # C7's segment are the home lovers: their items by summed confidence.
    assert [r["item_id"] for r in cold] == ["H3", "H1", "H2"]
    models = {r["model"] for r in gold(spark, segmented, "recommend_metrics", Layer.OPS)}
    assert models == {
        "als",
        "cooccurrence",
        "popular",
        "recent_popular",
        "own_history",
        "segment_popular",
        "blend",
        "run",
    }


def test_rerun_is_idempotent_and_ids_are_stable(spark: SparkSession, plain: dict) -> None:
    config = plain["config"]
    for name, before in plain["first"].items():
        after = gold(spark, config, name)
        assert sorted(map(tuple, after)) == sorted(map(tuple, before)), name
    assert sorted(map(tuple, gold(spark, config, "recommend_item_ids"))) == sorted(
        map(tuple, plain["ids_first"])
    )
    assert len(plain["ids_first"]) == 10  # the catalog, each item once


def test_similar_items_factors_and_content(spark: SparkSession, plain: dict) -> None:
    rows = gold(spark, plain["config"], "similar_items")
    m = plain["config"].recommend.similar_items
    sources = {r["item_id"]: r["source"] for r in rows}
    assert sources[fx.NEW_ITEM] == "content"
    assert all(sources[i] == "als" for i in [*fx.HOME, *fx.BOOKS])
    new = sorted((r for r in rows if r["item_id"] == fx.NEW_ITEM), key=lambda r: r["rank"])
    # N10 costs 26: nearest Casalo home items are H2 (25) and H3 (30); X9 is inactive.
    assert [r["similar_item_id"] for r in new] == ["H2", "H3"][:m]
    assert all(r["similar_item_id"] != r["item_id"] for r in rows)
    assert all(fx.INACTIVE not in (r["item_id"], r["similar_item_id"]) for r in rows)


def test_rules_metrics_model_and_report(spark: SparkSession, plain: dict) -> None:
    config = plain["config"]
    rules = {(tuple(r["antecedent"]), r["consequent"]) for r in gold(spark, config, "rules")}
    assert rules == {(("B1",), "B2"), (("B2",), "B1")}
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, "recommend_metrics"))
    version = model_version(config.recommend, fx.RUN_DATE)
    assert {r[0] for r in metrics.select("model_version").distinct().collect()} == {version}
    at = {
        (r["model"], r["metric"], r["k"]): r["value"]
        for r in metrics.where(F.col("model").isin("als", "popular")).collect()
    }
    # Six taste customers judged, one held-out item each. ALS finds the taste groups: every
    # held-out item is in its top 3 (the seeded fit ranks one first, four second, one third).
    # The popular list finds two of them: one second, one third.
    assert at[("als", "recallAtK", 3)] == pytest.approx(1.0)
    assert at[("als", "precisionAtK", 1)] == pytest.approx(1 / 6)
    assert at[("als", "ndcgAtK", 3)] == pytest.approx((1 + 4 / math.log2(3) + 1 / 2) / 6)
    assert at[("popular", "recallAtK", 3)] == pytest.approx(2 / 6)
    assert at[("popular", "ndcgAtK", 3)] == pytest.approx((1 / math.log2(3) + 1 / 2) / 6)
    # The blend's weights are chosen on the split's tuning metric (NDCG@3, k = top_n) from a
    # grid holding each component alone: never below its best component there.
    tuned = {
        r["model"]: r["value"]
        for r in metrics.where((F.col("metric") == "ndcgAtK") & (F.col("k") == 3)).collect()
    }
    components = ("als", "cooccurrence", "popular", "recent_popular", "own_history")
    assert set(tuned) == {*components, "blend"}
    assert tuned["blend"] >= max(tuned[c] for c in components)
    run = {r["metric"]: r["value"] for r in metrics.where(F.col("model") == "run").collect()}
    weights = [run[f"blend_weight_{c}"] for c in components]
    assert sum(weights) == pytest.approx(1.0)
    # Only active items compete in the evaluation too, so coverage is a share of them.
    coverage = {
        (r["model"], r["k"]): r["value"]
        for r in metrics.where(F.col("metric") == "catalogCoverageAtK").collect()
    }
    # Nine active items (X9 is not): ALS's top 3 lists reach 8 of them, popular's 5.
    assert coverage[("als", 3)] == pytest.approx(8 / 9)
    assert coverage[("als", 1)] == pytest.approx(4 / 9)
    assert coverage[("popular", 3)] == pytest.approx(5 / 9)
    model_dir = models_path(config, version)
    parts = ("als/metadata", "customer_ids", "item_ids", "params.json", "metrics.json")
    for part in (*parts, "cooccurrence"):  # the blend serves: its item similarities too
        assert files.exists(spark, f"{model_dir}/{part}"), part
    reports = Path(tables.reports_path(config, "recommend"))
    assert sorted(p.name for p in reports.glob("*/[!.]*")) == [
        "index.html",
        "index.html",
        "metrics_vs_k.png",
        "metrics_vs_k.png",
    ]
