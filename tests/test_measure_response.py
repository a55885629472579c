"""simulate_response on 4,000 synthetic customers: contract, planted effect, determinism, rerun.

Only the generator's `generation` row is written (the simulation recomputes every customer's
planted attributes from its index), plus published audiences:
- `resp` (06-01..06-14): customers C00000001..C00004000, even indexes treated, odd ones
  controls, every 40th excluded, plus a customer the generator never made (X1);
- `also` (06-05..06-10): the first 400 customers again (a third treated), overlapping `resp`:
  their baseline orders on the shared days must exist once;
- `later` (06-10..06-30): not over on the simulation date, so not simulated.
The planted response is large (0.3 for every archetype but window shoppers, 0) so the test can
see it in 2,000 customers per group. The landing CSV is read back with plain Python.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.config import Config, ConfigError
from precision_marketing.generate import generate as gen
from precision_marketing.generate import model, response
from precision_marketing.generate.model import GenParams
from precision_marketing.ingest.read import read_csv
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.measure import transforms
from tests.support import make_config, run_stage

CUSTOMERS = 4000
HISTORY_END = date(2026, 5, 31)
WINDOWS = {
    "resp": (date(2026, 6, 1), date(2026, 6, 14)),
    "also": (date(2026, 6, 5), date(2026, 6, 10)),
}
SIM_DATE = date(2026, 6, 20)
PARAMS = GenParams(seed=42, run_date=HISTORY_END, customers=CUSTOMERS, days=120, defect_rate=0.0)
UPLIFT = {a.name: 0.3 for a in model.ARCHETYPES} | {"window_shopper": 0.0}
OVERRIDES = [f"response.uplift_by_archetype.{k}={v}" for k, v in UPLIFT.items()]


def customer(i: int) -> str:
    return f"C{i + 1:08d}"


def group_of(i: int) -> str | None:
    if i % 40 == 39:
        return None
    return "treatment" if i % 2 == 0 else "control"


def also_group(i: int) -> str:
    return "treatment" if i % 3 == 0 else "control"


def world(spark: SparkSession) -> dict[str, DataFrame]:
    """The generation row and publish's tables, as frames."""
    p = PARAMS
    generation = spark.createDataFrame(
        [(p.seed, p.run_date, p.customers, p.days, p.defect_rate, p.items, 3, 4, 4)],
        "seed long, run_date date, customers long, days int, defect_rate double, items int, "
        "crm_exports int, transaction_files int, event_files int",
    )

    def member(campaign: str, who: str, group: str | None) -> tuple:
        excluded = None if group else "frequency_cap"
        run_id = f"pub-{campaign}"
        return (campaign, run_id, HISTORY_END, who, "email", group, excluded, "Seg", "Champions",
                1, 1.0, 0.1)  # fmt: skip

    members = [member("resp", customer(i), group_of(i)) for i in range(CUSTOMERS)]
    members.append(member("resp", "X1", "treatment"))  # not a generated customer: not simulated
    members += [member("also", customer(i), also_group(i)) for i in range(400)]
    members += [member("later", customer(i), "treatment") for i in range(10)]
    audiences = spark.createDataFrame(
        members,
        "campaign_id string, run_id string, run_date date, customer_id string, channel string, "
        "group string, excluded_reason string, segment_name string, rfm_segment string, "
        "propensity_decile int, expected_value double, contact_cost double",
    )
    windows = [*WINDOWS.items(), ("later", (date(2026, 6, 10), date(2026, 6, 30)))]
    runs = spark.createDataFrame(
        [(c, f"pub-{c}", HISTORY_END, "email", start, end, 0.1) for c, (start, end) in windows],
        "campaign_id string, run_id string, run_date date, channel string, start_date date, "
        "end_date date, cost_per_contact double",
    )
    return {"generation": generation, "audiences": audiences, "campaign_runs": runs}


def write_world(spark: SparkSession, config: Config) -> None:
    frames = world(spark)
    tables.append(frames.pop("generation"), tables.ground_truth(config, "generation"))
    for name, df in frames.items():
        tables.append(df, tables.table_path(config, Layer.ACTIVATION, name))


def landing_files(config: Config) -> list[Path]:
    root = Path(config.storage.landing) / "transactions"
    return sorted(p for p in root.rglob("*.csv") if not p.name.startswith(("_", ".")))


def csv_rows(files: list[Path]) -> list[dict[str, str]]:
    rows = []
    for path in files:
        with path.open(newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def order_day(row: dict[str, str]) -> date:
    return datetime.fromisoformat(row["order_time"]).astimezone(UTC).date()


@pytest.fixture(scope="module")
def simulated(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = make_config(tmp_path_factory.mktemp("response"), *OVERRIDES)
    write_world(spark, config)
    run_stage(spark, config, "simulate_response", SIM_DATE)
    effects_path = tables.ground_truth(config, "campaign_effects")
    files = landing_files(config)
    out = {
        "config": config,
        "files": files,
        "rows": csv_rows(files),
        "effects": [r.asDict() for r in tables.read(spark, effects_path).collect()],
        "effects_version": tables.version(spark, effects_path),
    }
    run_stage(spark, config, "simulate_response", SIM_DATE)  # a rerun: nothing new
    return out


def test_one_file_in_the_transaction_contract(spark: SparkSession, simulated: dict) -> None:
    files = simulated["files"]
    assert len(files) == 1
    assert files[0].parent.name.startswith("response=20260620-")
    with files[0].open() as f:
        assert f.readline().strip().split(",") == contracts.TRANSACTIONS.fieldNames()
    read = read_csv(spark, contracts.SOURCES["transactions"], [str(p) for p in files])
    assert read is not None
    bad = read.where(F.col("_corrupt_record").isNotNull() | F.col("_unexpected_fields").isNotNull())
    assert bad.count() == 0


def test_orders_are_valid_new_and_inside_the_windows(spark: SparkSession, simulated: dict) -> None:
    rows = simulated["rows"]
    assert len(rows) > 1000
    keys = [(r["order_id"], r["line_no"]) for r in rows]
    assert len(set(keys)) == len(keys)  # overlapping windows did not draw a day twice
    assert {r["order_id"][:3] for r in rows} == {"RB-", "RR-"}
    # Only treatment and control members of generated customers; never the excluded.
    allowed = {customer(i) for i in range(CUSTOMERS) if group_of(i)} | {
        customer(i) for i in range(400)
    }
    assert {r["customer_id"] for r in rows} <= allowed
    catalog = gen.catalog(spark, PARAMS).select("item_id", "price", "active").collect()
    prices = {r["item_id"]: r["price"] for r in catalog if r["active"]}
    assert all(float(r["unit_price"]) == prices[r["item_id"]] for r in rows)  # active items
    first, last = WINDOWS["resp"]
    assert all(first <= order_day(r) <= last for r in rows)
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["currency"] for r in rows} == {"EUR"}
    for r in rows:
        assert 1 <= int(r["quantity"]) <= 10
        assert 0 <= float(r["discount"]) <= float(r["unit_price"]) * int(r["quantity"])
        assert (r["store_id"] != "") == (r["channel"] == "store")


def test_ground_truth_matches_the_landed_orders(simulated: dict) -> None:
    baseline: dict[str, list[date]] = defaultdict(list)
    responses = set()
    for r in simulated["rows"]:
        if r["line_no"] != "1":
            continue
        if r["order_id"].startswith("RB-"):
            baseline[r["customer_id"]].append(order_day(r))
        else:
            campaign = r["order_id"].split("-")[1]
            responses.add((campaign, r["customer_id"]))
            start, end = WINDOWS[campaign]
            assert start <= order_day(r) <= end
    effects = simulated["effects"]
    expected = {("resp", customer(i)): group_of(i) for i in range(CUSTOMERS) if group_of(i)}
    expected |= {("also", customer(i)): also_group(i) for i in range(400)}
    assert {(e["campaign_id"], e["customer_id"]): e["group"] for e in effects} == expected
    for e in effects:
        start, end = WINDOWS[e["campaign_id"]]
        in_window = [day for day in baseline[e["customer_id"]] if start <= day <= end]
        assert e["baseline_orders"] == len(in_window), e
        assert e["responded"] == ((e["campaign_id"], e["customer_id"]) in responses), e
        assert e["treated"] == (e["group"] == "treatment")
        assert e["planted_uplift"] == UPLIFT[e["archetype"]]
        assert not e["responded"] or e["treated"]
        assert e["expected_conversion_uplift"] == pytest.approx(
            e["planted_uplift"] * (1 - e["baseline_conversion_probability"])
        )
    responders = [e for e in effects if e["treated"] and e["planted_uplift"] > 0]
    assert sum(e["responded"] for e in responders) / len(responders) == pytest.approx(0.3, abs=0.04)


def test_treatment_converts_more_by_the_planted_uplift(simulated: dict) -> None:
    # Conversions in `resp` from its own orders: baseline orders and `resp` responses.
    first, last = WINDOWS["resp"]
    bought = {
        r["customer_id"]
        for r in simulated["rows"]
        if not r["order_id"].startswith("RR-also") and first <= order_day(r) <= last
    }
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in simulated["effects"]:
        if e["campaign_id"] == "resp":
            by_group[e["group"]].append(e)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    rate = {g: mean([e["customer_id"] in bought for e in es]) for g, es in by_group.items()}
    baseline = mean([e["baseline_conversion_probability"] for e in by_group["control"]])
    planted = mean([e["expected_conversion_uplift"] for e in by_group["treatment"]])
    assert planted > 0.15
    # Controls convert at their planted baseline: one binomial standard error is about 0.01.
    assert rate["control"] == pytest.approx(baseline, abs=0.035)
    # The measured difference is the planted uplift, within about three standard errors.
    assert rate["treatment"] - rate["control"] == pytest.approx(planted, abs=0.05)


def test_planted_rates_are_the_generators(spark: SparkSession, simulated: dict) -> None:
    """λ and the activity window come from the generator's own customer frame: expected
    baseline orders are λ x the days of the window the customer is active."""
    sample = [customer(i) for i in range(400)]
    people = gen.customers(spark, PARAMS).where(F.col("customer_id").isin(sample))
    effects = {e["customer_id"]: e for e in simulated["effects"] if e["campaign_id"] == "also"}
    start, end = ((day - model.EPOCH).days for day in WINDOWS["also"])
    churned = 0
    for r in people.select("customer_id", "lam", "active_from_day", "active_until_day").collect():
        days = max(0, min(end, r["active_until_day"]) + 1 - max(start, r["active_from_day"]))
        churned += days == 0
        got = effects[r["customer_id"]]["expected_baseline_orders"]
        assert got == pytest.approx(r["lam"] * days), r["customer_id"]
    assert churned > 0  # churned customers buy nothing unless a campaign wins them back


def test_rerun_adds_nothing(spark: SparkSession, simulated: dict) -> None:
    config = simulated["config"]
    assert landing_files(config) == simulated["files"]
    path = tables.ground_truth(config, "campaign_effects")
    assert tables.version(spark, path) == simulated["effects_version"]


def simulated_lines(spark: SparkSession, seed: int, partitions: int) -> set:
    """The simulation's order lines straight from the transforms, members split differently."""
    frames = world(spark)
    ended = transforms.ended_runs(frames["campaign_runs"], SIM_DATE, None)
    members = transforms.members(frames["audiences"], ended).repartition(partitions)
    planted = response.planted(response.with_world(members, PARAMS), UPLIFT, seed)
    days = response.baseline_days(planted, seed)
    orders = response.baseline_orders(days, seed).unionByName(
        response.response_orders(planted, seed)
    )
    lines = response.transactions(response.order_lines(orders, PARAMS, seed))
    return {(r[0], str(r[1]), r[2], r[3], str(r[4]), r[8]) for r in lines.collect()}


def test_same_seed_same_orders_other_seed_other_orders(
    spark: SparkSession, simulated: dict
) -> None:
    landed = {
        (r["order_id"], r["line_no"], r["customer_id"], r["item_id"], r["quantity"],
         r["order_time"])
        for r in simulated["rows"]
    }  # fmt: skip
    seed = simulated["config"].response.seed
    assert simulated_lines(spark, seed, partitions=3) == landed
    assert simulated_lines(spark, seed + 1, partitions=1) != landed


def test_unknown_archetype_is_rejected(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, "response.uplift_by_archetype.big_spender=0.1")
    with pytest.raises(ConfigError, match=r"response\.uplift_by_archetype\.big_spender"):
        run_stage(spark, config, "simulate_response", SIM_DATE)
