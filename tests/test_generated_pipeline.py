"""generate -> ingest -> validate -> silver on 100 synthetic customers, scored on planted truth.

The generator lists every bad row it injected (ground_truth/defects, each with a marker token
and the rule it must break) and how many clean rows and keys it wrote (ground_truth/counts), so
these tests assert exact outcomes: each defect quarantined with its rule and nothing else, every
clean row in silver, nothing added by a rerun, no PII past bronze.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.validate.suites import Severity, load_suite
from tests.pipeline_fixture import pipeline_warehouse
from tests.support import run_stage

SOURCES = ("events", "crm", "transactions", "catalog")
SILVER_BY_SOURCE = {
    "events": "events",
    "crm": "customers",
    "transactions": "order_lines",
    "catalog": "items",
}


@pytest.fixture(scope="module")
def generated(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The shared pipeline warehouse: generate, then ingest, validate and silver (among the
    other steps) on the same 100 customers."""
    return pipeline_warehouse(spark, tmp_path_factory).config


def truth(spark: SparkSession, config: Config, table: str) -> DataFrame:
    return tables.read(spark, tables.ground_truth(config, table))


def layer(spark: SparkSession, config: Config, where: Layer, name: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, where, name))


@pytest.mark.parametrize("source", SOURCES)
def test_each_injected_defect_is_quarantined_with_exactly_its_rule(
    spark: SparkSession, generated: Config, source: str
) -> None:
    suite = load_suite(generated.expectations_path(), source)
    quarantine_rules = [r.rule for r in suite.rules(Severity.QUARANTINE)]
    expected = {
        (row["marker"], (row["expected_rule"],))
        for row in truth(spark, generated, "defects")
        .where((F.col("source") == source) & F.col("expected_rule").isin(quarantine_rules))
        .collect()
    }
    assert expected, f"the generator planted no quarantine defect in {source}"

    quarantined = layer(spark, generated, Layer.QUARANTINE, source)
    raw_text = F.to_json(F.struct(*[c for c in quarantined.columns if not c.startswith("_")]))
    marker_pattern = rf"(dfx-{source}-[0-9]+)"
    marker = F.regexp_extract(F.coalesce(F.col("_corrupt_record"), raw_text), marker_pattern, 1)
    found = {
        (row["marker"], tuple(row["_failed_rules"]))
        for row in quarantined.select(marker.alias("marker"), "_failed_rules").collect()
    }
    assert found == expected
    assert quarantined.count() == len(expected)


@pytest.mark.parametrize("source", SOURCES)
def test_every_clean_row_reaches_silver(
    spark: SparkSession, generated: Config, source: str
) -> None:
    counts = truth(spark, generated, "counts").where(F.col("source") == source).first()
    assert counts is not None
    silver = layer(spark, generated, Layer.SILVER, SILVER_BY_SOURCE[source])
    assert silver.count() == counts["distinct_keys"]
    marker_column = {"events": "session_id", "transactions": "store_id", "catalog": "title"}
    if source in marker_column:
        assert silver.where(F.col(marker_column[source]).contains("dfx-")).count() == 0


def test_duplicates_and_unexpected_fields_are_reported_not_dropped(
    spark: SparkSession, generated: Config
) -> None:
    defects = truth(spark, generated, "defects")

    def planted(kind: str, source: str) -> int:
        row = defects.where((F.col("kind") == kind) & (F.col("source") == source)).agg(
            F.sum("rows")
        )
        return int(row.first()[0] or 0)  # type: ignore[index]

    results = layer(spark, generated, Layer.OPS, "validation_results")
    reported = {
        (r["table"], r["rule"]): r["unexpected_count"]
        for r in results.where("severity = 'warn'").collect()
    }
    # Great Expectations counts every copy of a duplicated id: the original and its copy.
    assert reported[("events", "event_id_unique")] == 2 * planted("duplicate_event", "events")
    assert reported[("events", "no_unexpected_fields")] == planted("extra_field", "events")
    assert reported[("crm", "no_unexpected_fields")] == planted("extra_column", "crm")


def test_no_silver_value_is_an_email_phone_or_name(spark: SparkSession, generated: Config) -> None:
    crm = layer(spark, generated, Layer.BRONZE, "crm")
    names = (
        crm.select(F.explode(F.array("first_name", "last_name", "email", "phone")).alias("v"))
        .where(F.col("v").isNotNull())
        .distinct()
    )
    for name in ("events", "customers", "customer_history", "order_lines"):
        silver = layer(spark, generated, Layer.SILVER, name)
        strings = [f.name for f in silver.schema.fields if f.dataType.simpleString() == "string"]
        values = silver.select(F.explode(F.array(*strings)).alias("v")).where(
            F.col("v").isNotNull()
        )
        email_or_phone = values.where(
            F.col("v").rlike(r"[^@\s]+@[^@\s]+\.[A-Za-z]+")
            | F.col("v").rlike(r"^\+?[0-9 ()-]{8,}$")
        )
        assert email_or_phone.count() == 0, name
        assert values.join(names, "v").count() == 0, name
    assert "birth_date" not in layer(spark, generated, Layer.SILVER, "customers").columns


def test_rerun_adds_no_row_anywhere(spark: SparkSession, generated: Config) -> None:
    paths = [
        tables.table_path(generated, where, name)
        for where, names in (
            (Layer.BRONZE, SOURCES),
            (Layer.QUARANTINE, SOURCES),
            (Layer.SILVER, ("events", "customers", "customer_history", "order_lines", "items")),
        )
        for name in names
    ]
    before = {p: tables.version(spark, p) for p in paths}
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, generated, stage)
    assert {p: tables.version(spark, p) for p in paths} == before


def test_the_empty_landing_file_is_recorded_and_read_once(
    spark: SparkSession, generated: Config
) -> None:
    ledger = layer(spark, generated, Layer.OPS, "ingest_ledger")
    empty = ledger.where((F.col("source") == "transactions") & (F.col("file_size") == 0))
    names = [Path(r["file_path"]).name for r in empty.collect()]
    assert len(names) == 1
    assert names[0].endswith("-empty.csv")
    assert ledger.groupBy("file_path").count().where("count > 1").count() == 0
