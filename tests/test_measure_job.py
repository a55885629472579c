"""The measure job end to end on a hand-built activation + silver fixture, exact values.

Publish's tables (activation/audiences, activation/campaign_runs) are written here with the
columns of its contract. Run date 2026-06-30.

Campaign `spring` has the absolute window 2026-06-01..06-14 at 0.50 per contact and sent twice
(publish runs of 06-01 and 06-02): one experiment, whose members are everyone given a group in
either send. Members (segment and decile of their first send) and what they bought:

| customer | group | segment | decile | in the window | converted | revenue |
|---|---|---|---|---|---|---|
| T1 | treatment (twice) | Loyal | 10 | 50.00 on 06-03, 20.00 (part refunded) 06-10 | 1 | 70 |
| T2 | treatment | Loyal | 10 | only 05-31 and 06-15 (outside) | 0 | 0 |
| T3 | treatment | Bargain | 9 | 40.00 on 06-14 (last day) | 1 | 40 |
| T4 | treatment | Bargain | 9 | a fully refunded line | 0 | 0 |
| T5 | treatment | Bargain | - | 10.00 on 06-01 (first day) + a cancelled line | 1 | 10 |
| N1 | treatment (2nd send only) | Bargain | 9 | nothing | 0 | 0 |
| K1 | control (both sends) | Loyal | 10 | 25.00 on 06-07 | 1 | 25 |
| K2 | control | Bargain | 9 | nothing | 0 | 0 |
| K3 | control | Bargain | 9 | 30.00 on 06-20 (after) | 0 | 0 |
| E1 | excluded | Loyal | 10 | 100.00 on 06-05 (not in the experiment) | - | - |

Overall: treatment 6 customers, 3 conversions, revenue 120; control 3, 1, 25. Uplift
3/6 - 1/3 = 1/6; revenue per customer 20 - 25/3 = 35/3, times 6 treated = 70 incremental
revenue; 7 contacts (T1 twice) cost 3.50; ROI (70 - 3.5) / 3.5 = 19.

Campaign `weekly` is dated relative to the run date: its sends of 06-01 (window 06-01..06-07)
and 06-08 (06-08..06-14) are two experiments. T1 is treated in both; K1 is the control of the
first, K3 of the second. `summer` ends 07-10 (not over); `winter` ended 03-01, beyond the
90-day lookback.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType
from scipy.stats import norm

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.measure import transforms
from precision_marketing.schemas import activation, silver
from precision_marketing.schemas.project import project
from tests.support import make_config, run_stage

RUN_DATE = date(2026, 6, 30)

# The fixture's columns of the layers' declared schemas (schemas/activation.py, silver.py).
AUDIENCES_SCHEMA = project(
    activation.AUDIENCES,
    "campaign_id", "run_id", "run_date", "customer_id", "channel", "group", "excluded_reason",
    "segment_name", "rfm_segment", "propensity_decile", "expected_value", "contact_cost",
)  # fmt: skip
ORDER_LINES_SCHEMA = project(
    silver.ORDER_LINES,
    "order_id", "line_no", "customer_id", "item_id", "quantity", "refunded_quantity",
    "net_quantity", "unit_price", "discount", "gross_amount", "net_amount", "currency",
    "order_ts", "order_date", "refunded_at", "channel", "store_id", "status",
)  # fmt: skip


def d(month: int, day: int) -> date:
    return date(2026, month, day)


def member(
    campaign: str,
    run: str,
    run_date: date,
    customer: str,
    group: str | None,
    segment: str,
    decile: int | None,
) -> tuple:
    excluded = None if group else "no_consent"
    return (
        campaign,
        run,
        run_date,
        customer,
        "email",
        group,
        excluded,
        segment,
        "Champions",
        decile,
        12.5,
        0.5,
    )


SPRING_FIRST_SEND = [
    ("T1", "treatment", "Loyal", 10),
    ("T2", "treatment", "Loyal", 10),
    ("T3", "treatment", "Bargain", 9),
    ("T4", "treatment", "Bargain", 9),
    ("T5", "treatment", "Bargain", None),
    ("K1", "control", "Loyal", 10),
    ("K2", "control", "Bargain", 9),
    ("K3", "control", "Bargain", 9),
    ("E1", None, "Loyal", 10),
]
SPRING_SECOND_SEND = [
    ("T1", "treatment", "Bargain", 3),  # the first send's segment and decile count
    ("N1", "treatment", "Bargain", 9),
    ("K1", "control", "Loyal", 10),
    ("E1", None, "Loyal", 10),
]


def audiences() -> list[tuple]:
    rows = [member("spring", "pub-0601", d(6, 1), *m) for m in SPRING_FIRST_SEND]
    rows += [member("spring", "pub-0602", d(6, 2), *m) for m in SPRING_SECOND_SEND]
    rows += [member("weekly", "pub-w1", d(6, 1), "T1", "treatment", "Loyal", 10)]
    rows += [member("weekly", "pub-w1", d(6, 1), "K1", "control", "Loyal", 10)]
    rows += [member("weekly", "pub-w2", d(6, 8), "T1", "treatment", "Loyal", 10)]
    rows += [member("weekly", "pub-w2", d(6, 8), "K3", "control", "Bargain", 9)]
    rows += [member("summer", "pub-s", d(6, 25), "T1", "control", "Loyal", 10)]
    rows += [member("winter", "pub-x", d(2, 10), "T1", "treatment", "Loyal", 10)]
    return rows


def campaign_runs() -> list[tuple]:
    def run(campaign: str, run_id: str, run_date: date, start: date, end: date) -> tuple:
        return (
            campaign,
            run_id,
            run_date,
            "email",
            start,
            end,
            0.5,
            0.3,
            None,
            None,
            5,
            3,
            1,
            "{}",
        )

    return [
        run("spring", "pub-0601", d(6, 1), d(6, 1), d(6, 14)),
        run("spring", "pub-0602", d(6, 2), d(6, 1), d(6, 14)),
        run("weekly", "pub-w1", d(6, 1), d(6, 1), d(6, 7)),
        run("weekly", "pub-w2", d(6, 8), d(6, 8), d(6, 14)),
        run("summer", "pub-s", d(6, 25), d(6, 25), d(7, 10)),
        run("winter", "pub-x", d(2, 10), d(2, 10), d(3, 1)),
    ]


def line(
    order: str,
    customer: str,
    day: date,
    quantity: int,
    net_quantity: int,
    price: float,
    status: str = "completed",
) -> tuple:
    gross = quantity * price
    net = round(gross * net_quantity / quantity, 2)
    ts = datetime(day.year, day.month, day.day, 12)
    return (
        order,
        1,
        customer,
        "I1",
        quantity,
        quantity - net_quantity,
        net_quantity,
        price,
        0.0,
        gross,
        net,
        "EUR",
        ts,
        day,
        None,
        "web",
        None,
        status,
    )


def order_lines() -> list[tuple]:
    return [
        line("o1", "T1", d(6, 3), 2, 2, 25.0),
        line("o2", "T1", d(6, 10), 2, 1, 20.0, "partially_refunded"),
        line("o3", "T2", d(5, 31), 1, 1, 30.0),
        line("o4", "T2", d(6, 15), 1, 1, 30.0),
        line("o5", "T3", d(6, 14), 1, 1, 40.0),
        line("o6", "T4", d(6, 5), 1, 0, 15.0, "refunded"),
        line("o7", "T5", d(6, 1), 1, 1, 10.0),
        line("o8", "T5", d(6, 2), 3, 0, 9.0, "cancelled"),
        line("o9", "K1", d(6, 7), 1, 1, 25.0),
        line("o10", "K3", d(6, 20), 1, 1, 30.0),
        line("o11", "E1", d(6, 5), 1, 1, 100.0),
        line("o14", "Z9", d(6, 5), 1, 1, 60.0),  # not in any audience
    ]


def write_fixture(spark: SparkSession, config: Config) -> None:
    def write(layer: Layer, name: str, rows: list[tuple], schema: StructType) -> None:
        tables.append(spark.createDataFrame(rows, schema), tables.table_path(config, layer, name))

    write(Layer.ACTIVATION, "audiences", audiences(), AUDIENCES_SCHEMA)
    write(Layer.ACTIVATION, "campaign_runs", campaign_runs(), activation.CAMPAIGN_RUNS)
    write(Layer.SILVER, "order_lines", order_lines(), ORDER_LINES_SCHEMA)


def results(spark: SparkSession, config: Config) -> list[dict[str, Any]]:
    path = tables.table_path(config, Layer.GOLD, "campaign_results")
    return [r.asDict() for r in tables.read(spark, path).collect()]


@pytest.fixture(scope="module")
def measured(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The job run for the next day, then twice for the run date (a rerun)."""
    config = make_config(tmp_path_factory.mktemp("measure"))
    write_fixture(spark, config)
    run_stage(spark, config, "measure", d(7, 1))
    run_stage(spark, config, "measure", RUN_DATE)
    first = results(spark, config)
    run_stage(spark, config, "measure", RUN_DATE)
    return {"config": config, "first": first, "second": results(spark, config)}


def by_key(rows: list[dict[str, Any]], as_of: date = RUN_DATE) -> dict[tuple, dict[str, Any]]:
    return {
        (r["campaign_id"], r["start_date"].day, r["breakdown"], r["breakdown_value"]): r
        for r in rows
        if r["as_of_date"] == as_of
    }


def counts(r: dict[str, Any]) -> tuple:
    return (
        r["treatment_customers"],
        r["treatment_conversions"],
        r["treatment_revenue"],
        r["control_customers"],
        r["control_conversions"],
        r["control_revenue"],
    )


def test_every_ended_window_is_measured_with_all_breakdowns(measured: dict) -> None:
    assert sorted(by_key(measured["first"])) == [
        ("spring", 1, "overall", "all"),
        ("spring", 1, "propensity_decile", "10"),
        ("spring", 1, "propensity_decile", "9"),
        ("spring", 1, "propensity_decile", "unknown"),
        ("spring", 1, "segment", "Bargain"),
        ("spring", 1, "segment", "Loyal"),
        ("weekly", 1, "overall", "all"),
        ("weekly", 1, "propensity_decile", "10"),
        ("weekly", 1, "segment", "Loyal"),
        ("weekly", 8, "overall", "all"),
        ("weekly", 8, "propensity_decile", "10"),
        ("weekly", 8, "propensity_decile", "9"),
        ("weekly", 8, "segment", "Bargain"),
        ("weekly", 8, "segment", "Loyal"),
    ]


def test_group_counts_conversions_and_revenue_are_exact(measured: dict) -> None:
    got = {key[2:]: counts(r) for key, r in by_key(measured["first"]).items() if key[0] == "spring"}
    assert got == {
        ("overall", "all"): (6, 3, 120.0, 3, 1, 25.0),
        ("segment", "Loyal"): (2, 1, 70.0, 1, 1, 25.0),
        ("segment", "Bargain"): (4, 2, 50.0, 2, 0, 0.0),
        ("propensity_decile", "10"): (2, 1, 70.0, 1, 1, 25.0),
        ("propensity_decile", "9"): (3, 1, 40.0, 2, 0, 0.0),
        ("propensity_decile", "unknown"): (1, 1, 10.0, 0, 0, 0.0),
    }


def test_each_relative_send_is_its_own_window(measured: dict) -> None:
    rows = by_key(measured["first"])
    first, second = rows[("weekly", 1, "overall", "all")], rows[("weekly", 8, "overall", "all")]
    assert (first["end_date"], second["end_date"]) == (d(6, 7), d(6, 14))
    assert counts(first) == (1, 1, 50.0, 1, 1, 25.0)  # T1's 06-03 order; K1's 06-07
    assert counts(second) == (1, 1, 20.0, 1, 0, 0.0)  # T1's 06-10 order; K3 bought after
    assert (first["publish_runs"], second["publish_runs"]) == (1, 1)


def test_overall_uplift_incremental_values_cost_and_roi(measured: dict) -> None:
    r = by_key(measured["first"])[("spring", 1, "overall", "all")]
    assert r["publish_runs"] == 2
    assert r["treatment_conversion_rate"] == pytest.approx(0.5)
    assert r["control_conversion_rate"] == pytest.approx(1 / 3)
    assert r["conversion_uplift"] == pytest.approx(1 / 6)
    assert r["relative_uplift"] == pytest.approx(0.5)  # 0.5 / (1/3) - 1
    # Agresti-Caffo interval: 3 of 6 and 1 of 3 become 4 of 8 and 2 of 5, centre 0.5 - 0.4;
    # 0.1 -+ 1.959964 x sqrt(0.5 x 0.5 / 8 + 0.4 x 0.6 / 5).
    half = 1.959963984540054 * (0.25 / 8 + 0.24 / 5) ** 0.5
    assert r["conversion_uplift_ci_low"] == pytest.approx(0.1 - half)
    assert r["conversion_uplift_ci_high"] == pytest.approx(0.1 + half)
    # Two-proportion z-test, pooled rate 4 of 9: z = (1/6) / sqrt(4/9 x 5/9 x (1/6 + 1/3)).
    z = (1 / 6) / (4 / 9 * 5 / 9 * (1 / 6 + 1 / 3)) ** 0.5
    assert r["conversion_p_value"] == pytest.approx(2 * norm.sf(z))
    assert r["treatment_revenue_per_customer"] == pytest.approx(20.0)
    assert r["control_revenue_per_customer"] == pytest.approx(25 / 3)
    assert r["revenue_uplift_per_customer"] == pytest.approx(35 / 3)
    assert r["incremental_conversions"] == pytest.approx(1.0)
    assert r["incremental_revenue"] == pytest.approx(70.0)
    assert r["treatment_contacts"] == 7
    assert r["cost_per_contact"] == pytest.approx(0.5)
    assert r["campaign_cost"] == pytest.approx(3.5)
    assert r["gross_margin"] == 1.0
    assert r["roi"] == pytest.approx(19.0)
    assert (r["channel"], r["start_date"], r["end_date"]) == ("email", d(6, 1), d(6, 14))


def test_a_breakdown_without_controls_has_no_uplift(measured: dict) -> None:
    r = by_key(measured["first"])[("spring", 1, "propensity_decile", "unknown")]
    assert r["treatment_conversion_rate"] == 1.0
    assert r["control_conversion_rate"] is None
    assert r["conversion_uplift"] is None
    assert r["conversion_p_value"] is None
    assert r["roi"] is None
    assert r["campaign_cost"] == pytest.approx(0.5)


def test_rerun_replaces_the_run_dates_rows_and_keeps_other_days(measured: dict) -> None:
    def stable(rows: list[dict[str, Any]]) -> list[tuple]:
        return sorted(tuple(v for k, v in r.items() if k != "measure_run_id") for r in rows)

    first, second = measured["first"], measured["second"]
    assert len(second) == len(first) == 2 * 14  # the same windows on both days
    assert stable(second) == stable(first)
    assert sorted({r["as_of_date"] for r in second}) == [RUN_DATE, d(7, 1)]
    rerun_ids = {r["measure_run_id"] for r in second if r["as_of_date"] == RUN_DATE}
    first_ids = {r["measure_run_id"] for r in first if r["as_of_date"] == RUN_DATE}
    assert len(rerun_ids) == 1
    assert rerun_ids != first_ids  # the day's rows were replaced, not added to


def test_ended_runs_respect_the_lookback(spark: SparkSession) -> None:
    runs = spark.createDataFrame(campaign_runs(), activation.CAMPAIGN_RUNS)

    def ended(as_of: date, lookback: int | None) -> list[str]:
        found = transforms.ended_runs(runs, as_of, lookback).select("run_id").collect()
        return sorted(r["run_id"] for r in found)

    assert ended(d(7, 11), None) == ["pub-0601", "pub-0602", "pub-s", "pub-w1", "pub-w2", "pub-x"]
    assert ended(d(7, 11), 30) == ["pub-0601", "pub-0602", "pub-s", "pub-w2"]  # ended 06-11+
    assert ended(d(6, 14), 90) == ["pub-w1"]
