"""The real-shaped fixtures (tests/fixtures/real_shaped/README.md) through the whole pipeline.

Each fixture is copied to a temp landing and run once by the `pipeline` job, with every stage of
conf/base.yaml's pipeline.steps (tests/real_shaped_fixture.py, which holds the expected
numbers). The tests then assert exact outputs: each step's status in ops/pipeline_runs, the rows
of every silver table, and the rows of the gold tables.

Numbers marked DATA follow from the fixture files alone (make.py's `expected_counts` and the
README derive them); the others are the suite's documented behaviour
(docs/bring-your-own-data.md), each said where it is asserted.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import DataQualityError
from tests.real_shaped_fixture import (
    CASES,
    FIXTURES,
    GOLD_LAYER,
    ROOT,
    SILVER_TABLES,
    USD_RATE,
    Run,
    pipeline_run,
)
from tests.support import make_config, run_stage


def _load_make() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_shaped_make", FIXTURES / "make.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# Without Spark: the committed fixtures are make.py's output; the 10k bench set is fast.


def test_committed_fixtures_are_what_make_py_writes(tmp_path: Path) -> None:
    make = _load_make()
    make.write_all(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(FIXTURES)
        for name in make.FIXTURES
        for p in (FIXTURES / name).rglob("*")
        if p.is_file()
    )
    assert written == committed
    for rel in written:
        assert (tmp_path / rel).read_bytes() == (FIXTURES / rel).read_bytes(), rel


def test_real_shaped_bench_writes_10k_customers_deterministically(tmp_path: Path) -> None:
    def write(out: Path) -> None:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "real_shaped.py"), "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    write(tmp_path / "a")
    write(tmp_path / "b")
    for rel in ("transactions/online_retail.csv", "crm/customers.csv", "catalog/items.csv"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    with (tmp_path / "a" / "crm" / "customers.csv").open() as f:
        crm = list(csv.DictReader(f))
    with (tmp_path / "a" / "transactions" / "online_retail.csv").open() as f:
        buyers = {row["CustomerID"] for row in csv.DictReader(f)}
    assert len(crm) == 10_000
    assert buyers == {row["CustomerID"] for row in crm}
    assert (tmp_path / "a" / "sources.yaml").exists()
    assert not (tmp_path / "a" / "events").exists()


# ----------------------------------------------------------------------------------------------
# Through the pipeline.


def read(spark: SparkSession, config: Config, layer: Layer, name: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, layer, name))


def step_statuses(spark: SparkSession, run: Run) -> dict[str, str]:
    runs = read(spark, run.config, Layer.OPS, "pipeline_runs").where(
        F.col("run_date") == F.lit(run.case.run_date)
    )
    return {r["step"]: r["status"] for r in runs.select("step", "status").collect()}


@pytest.mark.parametrize("name", list(CASES))
def test_each_stage_ran_or_said_no_input(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    run = pipeline_run(spark, tmp_path_factory, name)
    assert step_statuses(spark, run) == run.case.steps, run.error


@pytest.mark.parametrize("name", list(CASES))
def test_every_silver_table_exists_with_exact_rows(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    run = pipeline_run(spark, tmp_path_factory, name)
    counts = {t: read(spark, run.config, Layer.SILVER, t).count() for t in SILVER_TABLES}
    assert counts == run.case.silver


@pytest.mark.parametrize("name", list(CASES))
def test_nothing_is_quarantined(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    run = pipeline_run(spark, tmp_path_factory, name)
    for source in ("events", "crm", "transactions", "catalog"):
        path = tables.table_path(run.config, Layer.QUARANTINE, source)
        rows = tables.read(spark, path).count() if tables.is_delta(spark, path) else 0
        assert rows == 0, source


@pytest.mark.parametrize("name", list(CASES))
def test_gold_tables_have_exact_rows(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    run = pipeline_run(spark, tmp_path_factory, name)
    counts = {}
    for table in run.case.gold:
        df = read(spark, run.config, GOLD_LAYER.get(table, Layer.GOLD), table)
        column = "as_of_date" if "as_of_date" in df.columns else "run_date"
        counts[table] = df.where(F.col(column) == F.lit(run.case.run_date)).count()
    assert counts == run.case.gold


@pytest.mark.parametrize("name", list(CASES))
def test_served_lists_exclude_what_the_customer_bought_or_saw_over_all_history(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """DATA: exclusion is over the whole history, not only the training lookback."""
    run = pipeline_run(spark, tmp_path_factory, name)
    if run.case.exclude == "seen":
        touched = read(spark, run.config, Layer.SILVER, "events").where(
            F.col("item_id").isNotNull()
        )
    else:
        touched = read(spark, run.config, Layer.SILVER, "order_lines").where(
            F.col("net_quantity") > 0
        )
    served = read(spark, run.config, Layer.GOLD, "recommendations").where(
        F.col("as_of_date") == F.lit(run.case.run_date)
    )
    clashes = served.join(
        touched.select("customer_id", "item_id").distinct(), ["customer_id", "item_id"]
    )
    assert clashes.count() == 0


@pytest.mark.parametrize("name", ["transactions_only"])  # the case in the id: conftest.py
def test_usd_amounts_are_converted_at_the_configured_rate(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    run = pipeline_run(spark, tmp_path_factory, name)
    with (FIXTURES / "transactions_only" / "transactions" / "online_retail_export.csv").open() as f:
        usd = sum(int(r["Quantity"]) * float(r["UnitPrice"]) for r in csv.DictReader(f))
    lines = read(spark, run.config, Layer.SILVER, "order_lines")
    row: Any = lines.agg(
        F.sum("gross_amount").alias("eur"),
        F.collect_set("currency").alias("currencies"),
        F.collect_set("original_currency").alias("originals"),
    ).first()
    assert row["currencies"] == ["EUR"]
    assert row["originals"] == ["USD"]
    assert row["eur"] == pytest.approx(usd * USD_RATE, abs=0.01 * 133)  # rounding per line


def test_a_currency_without_a_rate_stops_validate(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """DATA: all 133 rows are USD; with no rate configured the run fails and names them."""
    root = tmp_path_factory.mktemp("real_no_rate")
    shutil.copytree(FIXTURES / "transactions_only", root / "landing")
    config = make_config(root, f"ingest.sources_file={FIXTURES}/transactions_only/sources.yaml")
    run_stage(spark, config, "ingest", CASES["transactions_only"].run_date)
    with pytest.raises(DataQualityError, match=r"USD.*133|133.*USD"):
        run_stage(spark, config, "validate", CASES["transactions_only"].run_date)


def _rows_without_run_ids(df: DataFrame) -> list[tuple[Any, ...]]:
    """A table's rows, sorted, without the columns that name the run that wrote them."""
    kept = [c for c in df.columns if not c.endswith("run_id")]
    return sorted((tuple(r) for r in df.select(*kept).collect()), key=repr)


@pytest.mark.parametrize("name", ["transactions_only"])  # the case in the id: conftest.py
def test_a_rerun_leaves_gold_and_activation_rows_as_they_were(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """README: after a complete attempt, a rerun runs every step again; gold and activation
    keep the same rows (run ids aside) but activation/campaign_runs, a log of publish runs, and
    ops/pipeline_runs gains one row per step. The case runs with a 7-day cadence, so the rerun
    serves the models the first run fitted: scores from the saved models equal those written at
    fit time. Last in this module: the other tests read the first run, which the rerun must
    leave as it was."""
    run = pipeline_run(spark, tmp_path_factory, name)
    assert run.error is None
    warehouse = Path(tables.warehouse(run.config))
    folders = [str(p) for layer in ("gold", "activation") for p in (warehouse / layer).iterdir()]
    paths = sorted(p for p in folders if tables.is_delta(spark, p))  # not activation/manifests
    assert len(paths) >= len(run.case.gold)
    before = {p: _rows_without_run_ids(tables.read(spark, p)) for p in paths}
    attempts = read(spark, run.config, Layer.OPS, "pipeline_runs").count()

    run_stage(spark, run.config, "pipeline", run.case.run_date)

    after = {p: _rows_without_run_ids(tables.read(spark, p)) for p in paths}
    changed = [Path(p).name for p in paths if after[p] != before[p]]
    assert changed == ["campaign_runs"]  # activation's log of publish runs, like pipeline_runs
    assert read(spark, run.config, Layer.OPS, "pipeline_runs").count() == attempts + len(
        run.case.steps
    )
