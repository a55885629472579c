"""monitor: exact figures on hand-written scorings whose outcomes are known, and the stage on
the shared generated warehouse (tests/pipeline_fixture.py), where nothing has matured yet.

The hand-written warehouse: run date R = RUN_DATE, a propensity scoring and a served list at
S = R - 14 days (conf/test.yaml's horizon), so their outcome window [S, R) has just ended, and
the serving propensity version fitted on S, whose inputs drift by R.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.monitor import transforms
from precision_marketing.monitor.job import MONITORING
from tests.pipeline_fixture import Warehouse, pipeline_warehouse
from tests.support import RUN_DATE, make_config, run_stage

S = RUN_DATE - timedelta(days=14)  # the matured scoring
LATER = S + timedelta(days=20)  # after the window: does not count
SERVING = f"prop-{S:%Y%m%d}-bbbbbbbb"  # scored on R, fitted on S's snapshot
MATURED = f"prop-{S:%Y%m%d}-aaaaaaaa"
RECS = f"als-{S:%Y%m%d}-cccccccc"


# ------------------------------------------------------------------------------------------
# PSI on known distributions


def columns(spark: SparkSession, **values: list[float | None]) -> DataFrame:
    """Features as columns of equal length (None: a null)."""
    names = list(values)
    rows = [
        tuple(None if v is None else float(v) for v in row)
        for row in zip(*values.values(), strict=True)
    ]
    return spark.createDataFrame(rows, ", ".join(f"{n} double" for n in names))


def test_psi_of_known_distributions_in_one_pass(spark: SparkSession) -> None:
    """Four features of ten rows each, judged together in 2 quantile bins."""
    nulls: list[float | None] = [None] * 6
    training = columns(
        spark,
        shifted=list(range(1, 11)),
        emptied=[1, 2, 3, 4, *nulls],
        same=list(range(1, 11)),
        gone=list(range(1, 11)),
    )
    current = columns(
        spark,
        shifted=[1, 2, 3, 4, 5, 1, 2, 3, 9, 10],
        emptied=[1, 1, 2, 2, *nulls],
        same=list(range(10, 0, -1)),
        gone=[None] * 10,
    )
    found = {
        r["feature"]: r.asDict()
        for r in transforms.drift(training, current, ["shifted", "emptied", "same", "gone"], 2,
                                  1e-4).collect()
    }  # fmt: skip
    # shifted: training 1..10, edge 5, shares (0.5, 0.5); today 8 values <= 5 and 2 above:
    # shares (0.8, 0.2). PSI = 0.3 ln(1.6) - 0.3 ln(0.4) = 0.3 ln(4).
    assert found["shifted"]["psi"] == pytest.approx(0.3 * math.log(1.6) - 0.3 * math.log(0.4))
    assert found["shifted"]["psi"] == pytest.approx(0.415888, abs=1e-6)
    # emptied: training 1..4 (edge 2), shares (0.5, 0.5); today every non-null value is in the
    # first bin, the second is empty and counts as epsilon = 1e-4.
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert found["emptied"]["psi"] == pytest.approx(expected)
    assert found["emptied"]["psi"] == pytest.approx(4.604318, abs=1e-6)
    # Nulls stay out of the bins and are followed as their share: 6 of 10 in both.
    assert (found["emptied"]["null_share_training"], found["emptied"]["null_share_current"]) == (
        0.6, 0.6
    )  # fmt: skip
    # The same values in another order give 0; a feature with no value today has no PSI.
    assert found["same"]["psi"] == 0.0
    assert found["gone"]["psi"] is None
    assert (found["gone"]["null_share_training"], found["gone"]["null_share_current"]) == (0, 1)
    assert found["shifted"]["null_share_current"] == 0.0


# ------------------------------------------------------------------------------------------
# The stage on a hand-written warehouse


def write(spark: SparkSession, config: Config, layer: Layer, name: str, rows: list[tuple],
          schema: str) -> None:  # fmt: skip
    df = spark.createDataFrame(rows, schema)
    df.write.format("delta").mode("overwrite").save(tables.table_path(config, layer, name))


def ts(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12)


FEATURES_SCHEMA = (
    "customer_id string, as_of_date date, days_since_last_order int, "
    "days_since_last_visit int, tenure_days int, orders_lifetime int, active_days int, "
    "days_since_first_order int"
)


def feature_rows(as_of: date, orders: list[int], visits: list[int | None]) -> list[tuple]:
    return [
        (f"c{i}", as_of, o, v, 100, 3, 5, 100)
        for i, (o, v) in enumerate(zip(orders, visits, strict=True), 1)
    ]


@pytest.fixture(scope="module")
def hand_written(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    config = make_config(
        tmp_path_factory.mktemp("monitor"),
        "propensity.model_features=[days_since_last_order, days_since_last_visit]",
        "propensity.log_features=[]",
        "monitor.psi_bins=2",
    )
    propensity = (
        "customer_id string, as_of_date date, probability double, decile int, "
        "predicted_spend double, expected_value double, churn_risk double, model_version string"
    )
    # Buyers c1 and c3 scored 0.9 and 0.4; c2 and c4 did not buy (c2's order was refunded, c4
    # bought after the window) and scored 0.6 and 0.2.
    scored = [("c1", 0.9, 1), ("c2", 0.6, 2), ("c3", 0.4, 3), ("c4", 0.2, 4)]
    write(spark, config, Layer.GOLD, "propensity", [
        *[(c, S, p, d, None, None, None, MATURED) for c, p, d in scored],
        *[(c, RUN_DATE, 0.5, 1, None, None, None, SERVING) for c, _, _ in scored],
    ], propensity)  # fmt: skip
    lines = (
        "order_id string, line_no int, customer_id string, item_id string, order_ts timestamp, "
        "order_date date, status string, net_quantity int, net_amount double"
    )
    bought = [
        ("o1", "c1", "A", S + timedelta(days=1), "completed", 1),
        ("o2", "c2", "A", S + timedelta(days=3), "refunded", 0),
        ("o3", "c3", "B", S + timedelta(days=5), "partially_refunded", 1),
        ("o4", "c4", "C", LATER, "completed", 1),
        ("o5", "c6", "D", S + timedelta(days=2), "completed", 2),
    ]
    write(spark, config, Layer.SILVER, "order_lines", [
        (o, 1, c, item, ts(day), day, status, qty, 10.0 * qty)
        for o, c, item, day, status, qty in bought
    ], lines)  # fmt: skip
    # Served lists at S: c1 got A first (a hit at rank 1), c3 got B third (a hit at rank 3),
    # c6 bought D but got X; c2 (refunded) and c5 (bought nothing) are not judged.
    served = {"c1": ["A", "X"], "c2": ["A"], "c3": ["Y", "Z", "B"], "c5": ["A"], "c6": ["X"]}
    write(spark, config, Layer.GOLD, "recommendations", [
        (c, rank, item, 1.0, "als", RECS, S)
        for c, items in served.items() for rank, item in enumerate(items, 1)
    ], "customer_id string, rank int, item_id string, score double, source string, "
       "model_version string, as_of_date date")  # fmt: skip
    # 10 customers; days_since_last_order moves up, days_since_last_visit loses 3 values.
    write(spark, config, Layer.GOLD, "user_features", [
        *feature_rows(S, list(range(1, 11)), list(range(1, 11))),
        *feature_rows(RUN_DATE, [1, 2, 3, 4, 5, 1, 2, 3, 9, 10],
                      [1, 2, 3, 4, 5, 6, 7, None, None, None]),
    ], FEATURES_SCHEMA)  # fmt: skip
    # Between the previous snapshot and R: 6 stayed in 0, 2 moved 0 -> 1, 2 stayed in 1, and
    # 5 are new (left out of the rate): 2 / 10 moved.
    write(spark, config, Layer.GOLD, "segment_migrations", [
        (RUN_DATE, "km-x", S, 0, 0, 6), (RUN_DATE, "km-x", S, 0, 1, 2),
        (RUN_DATE, "km-x", S, 1, 1, 2), (RUN_DATE, "km-x", S, None, 1, 5),
    ], "as_of_date date, model_version string, previous_as_of_date date, "
       "from_segment_id int, to_segment_id int, customers long")  # fmt: skip
    run_stage(spark, config, "monitor")
    return config


def monitoring(spark: SparkSession, config: Config) -> DataFrame:
    return tables.read(spark, tables.table_path(config, Layer.GOLD, MONITORING))


def figures(spark: SparkSession, config: Config, model: str) -> dict[tuple[str, str | None], tuple]:
    rows = monitoring(spark, config).where(F.col("model") == model).collect()
    return {
        (r["metric"], r["feature"]): (r["value"], r["threshold"], r["status"], r["scored_as_of"],
                                      r["model_version"])
        for r in rows
    }  # fmt: skip


def test_propensity_auc_lift_and_calibration_on_known_outcomes(
    spark: SparkSession, hand_written: Config
) -> None:
    found = figures(spark, hand_written, "propensity")
    value = {metric: v[0] for (metric, feature), v in found.items() if v[3] == S}
    # Pairs buyer above non-buyer: 0.9 > 0.6, 0.9 > 0.2, 0.4 > 0.2, not 0.4 > 0.6: 3 of 4.
    assert value["roc_auc"] == pytest.approx(0.75)
    # Spark's PR curve: (0, 1) (0.5, 1) (0.5, 0.5) (1, 2/3) (1, 0.5); trapezoids: 0.5 + 0.5 x
    # (0.5 + 2/3) / 2.
    assert value["pr_auc"] == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert value["base_rate"] == 0.5
    assert value["top_decile_lift"] == 2.0  # decile 1 bought (1.0) / 0.5
    # |0.9 - 1| + |0.6 - 0| + |0.4 - 1| + |0.2 - 0|, one customer each, over 4.
    assert value["calibration_error"] == pytest.approx(1.5 / 4)
    assert value["mean_predicted_d02"] == 0.6
    assert value["observed_rate_d03"] == 1.0
    assert found[("roc_auc", None)][1:] == (0.6, "ok", S, MATURED)
    assert len(value) == 5 + 2 * 4


def test_recommendation_hit_rate_recall_and_ndcg_on_a_tiny_served_list(
    spark: SparkSession, hand_written: Config
) -> None:
    found = figures(spark, hand_written, "recommend")
    value = {metric: v[0] for (metric, _), v in found.items() if metric != "model_status"}
    # Judged: c1 (hit at 1), c3 (hit at 3), c6 (no hit).
    assert value == pytest.approx(
        {
            "customers_judged": 3.0,
            "hit_rate": 2 / 3,
            "recall_at_10": 2 / 3,
            "ndcg_at_10": (1.0 + 1 / math.log2(4) + 0.0) / 3,
        }
    )
    assert {v[3] for v in found.values()} == {S}
    assert {v[4] for v in found.values()} == {RECS}


def test_drift_marks_the_model_for_refit_when_a_threshold_is_crossed(
    spark: SparkSession, hand_written: Config
) -> None:
    found = figures(spark, hand_written, "propensity")
    # The serving version was fitted on S: S's snapshot against R's.
    psi_order = found[("psi", "days_since_last_order")]
    assert psi_order[0] == pytest.approx(0.3 * math.log(4))
    assert psi_order[1:] == (0.25, "refit", RUN_DATE, SERVING)
    # 1..7 of 1..10 left: shares (5/7, 2/7) against (0.5, 0.5): under psi_refit, over psi_warn.
    psi_visit = found[("psi", "days_since_last_visit")]
    expected = (5 / 7 - 0.5) * math.log(10 / 7) + (2 / 7 - 0.5) * math.log(4 / 7)
    assert psi_visit[0] == pytest.approx(expected)
    assert psi_visit[1:3] == (0.1, "warn")
    assert found[("null_share_increase", "days_since_last_visit")][:3] == (
        pytest.approx(0.3),
        0.2,
        "refit",
    )
    assert found[("null_share_increase", "days_since_last_order")][:3] == (0.0, 0.05, "ok")
    # The row retraining reads: the model's worst status.
    assert found[("model_status", None)][2] == "refit"
    assert found[("model_status", None)][0] == 3.0  # figures not ok


def test_segment_migration_rate_and_what_could_not_be_measured(
    spark: SparkSession, hand_written: Config
) -> None:
    found = figures(spark, hand_written, "segment")
    assert found[("migration_rate", None)] == (0.2, 0.3, "ok", RUN_DATE, "km-x")
    assert found[("model_status", None)][2] == "ok"
    # No gold/segments: segment drift is said in the report, not fatal.
    (page,) = Path(tables.reports_path(hand_written, "monitor")).glob("*/index.html")
    html = page.read_text()
    assert "Not measured: segment drift: no gold/segments snapshot." in html
    assert {p.name for p in page.parent.glob("*.png")} == {
        "trends.png",
        "calibration.png",
        "drift.png",
    }


# ------------------------------------------------------------------------------------------
# End to end on the generated warehouse: first run, nothing matured yet


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return pipeline_warehouse(spark, tmp_path_factory)


def test_first_run_writes_drift_rows_only_says_so_and_a_rerun_adds_nothing(
    spark: SparkSession, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    """The pipeline ran monitor after measure on the run date; nothing had matured."""
    assert warehouse.steps[-2:] == ["measure", "monitor"]
    table = monitoring(spark, warehouse.config)
    columns = [c for c in table.columns if c != "run_id"]
    before = sorted(table.select(*columns).collect())
    assert {r["as_of_date"] for r in before} == {RUN_DATE}
    assert {r["metric"] for r in before} == {"psi", "null_share_increase", "model_status"}
    assert {r["model"] for r in before if r["metric"] == "psi"} == {"segment", "propensity"}
    # Both models were fitted on the run date's snapshot: no drift from themselves.
    assert {r["value"] for r in before if r["metric"] == "psi"} == {0.0}
    assert {r["status"] for r in before} == {"ok"}
    with caplog.at_level(logging.INFO, logger="precision_marketing.monitor.job"):
        run_stage(spark, warehouse.config, "monitor")
    assert sorted(monitoring(spark, warehouse.config).select(*columns).collect()) == before
    assert "monitor: nothing matured to measure yet: " in caplog.text
    assert "propensity: no scoring's 14-day outcome window has ended" in caplog.text
    assert "  monitor: propensity: ok; max PSI 0.000" in warehouse.summary
    assert list(Path(tables.reports_path(warehouse.config, "monitor")).glob("*/index.html"))
