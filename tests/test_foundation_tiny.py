"""ingest -> validate -> silver on the hand-written landing set: exact outcomes and reruns."""

from __future__ import annotations

from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from tests.support import make_config, run_stage
from tests.tiny_landing import EXPECTED_QUARANTINE, EXPECTED_SILVER, write_tiny_landing

SILVER_TABLES = ("events", "customers", "customer_history", "order_lines", "items")


def run_foundation(spark: SparkSession, config: Config) -> None:
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, config, stage)


@pytest.fixture(scope="module")
def tiny(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_landing(root / "landing")
    config = make_config(root, "validate.data_docs=true")  # conf/test.yaml has them off
    run_foundation(spark, config)
    return config


def read(spark: SparkSession, config: Config, layer: Layer, name: str):
    return tables.read(spark, tables.table_path(config, layer, name))


def quarantine_by_rule(spark: SparkSession, config: Config, table: str) -> dict[str, int]:
    rows = (
        read(spark, config, Layer.QUARANTINE, table)
        .select(F.explode("_failed_rules").alias("rule"))
        .groupBy("rule")
        .count()
        .collect()
    )
    return {r["rule"]: r["count"] for r in rows}


@pytest.mark.parametrize("table", sorted(EXPECTED_QUARANTINE))
def test_each_defect_is_quarantined_with_the_rule_it_broke(
    spark: SparkSession, tiny: Config, table: str
) -> None:
    assert quarantine_by_rule(spark, tiny, table) == EXPECTED_QUARANTINE[table]


def test_no_good_row_is_lost(spark: SparkSession, tiny: Config) -> None:
    counts = {t: read(spark, tiny, Layer.SILVER, t).count() for t in SILVER_TABLES}
    assert counts == EXPECTED_SILVER
    events = read(spark, tiny, Layer.SILVER, "events").select("event_id").collect()
    assert sorted(r[0] for r in events) == ["e1", "e2", "e7"]


def test_bronze_keeps_raw_text_and_lineage(spark: SparkSession, tiny: Config) -> None:
    events = read(spark, tiny, Layer.BRONZE, "events")
    assert events.count() == 8
    corrupt = events.where(F.col("_corrupt_record").isNotNull()).collect()
    assert [r["_corrupt_record"] for r in corrupt] == [
        '{"event_id":"e4","device_id":"d2","session_id":"s2","event_ty'
    ]
    extra = events.where(F.col("_unexpected_fields").isNotNull()).select(
        "event_id", "_unexpected_fields"
    )
    assert [tuple(r) for r in extra.collect()] == [("e7", "debug_payload")]
    crm = read(spark, tiny, Layer.BRONZE, "crm")
    by_file = {
        Path(r["_source_file"]).name: r["_unexpected_fields"]
        for r in crm.select("_source_file", "_unexpected_fields").distinct().collect()
    }
    assert by_file == {"export-1.csv": None, "export-2.csv": "loyalty_points"}
    assert events.select("_batch_no").distinct().collect()[0][0] == 1
    assert (
        events.where(F.col("_record_id").isNull() | F.col("_ingest_run_id").isNull()).count() == 0
    )


def test_csv_columns_are_mapped_by_header_name(spark: SparkSession, tiny: Config) -> None:
    """export-2 has an extra trailing column; its values still land in the right fields."""
    c1 = read(spark, tiny, Layer.SILVER, "customers").where("customer_id = 'c1'").first()
    assert c1 is not None
    assert (c1["region"], c1["loyalty_tier"], c1["age_band"]) == ("south", "platinum", "35-44")


def test_refunds_are_netted(spark: SparkSession, tiny: Config) -> None:
    lines = {
        (r["order_id"], r["line_no"]): r
        for r in read(spark, tiny, Layer.SILVER, "order_lines").collect()
    }
    first, second = lines[("o1", 1)], lines[("o1", 2)]
    assert (first["quantity"], first["refunded_quantity"], first["net_quantity"]) == (2, 1, 1)
    assert (first["gross_amount"], first["net_amount"], first["status"]) == (
        25.0,
        12.5,
        "partially_refunded",
    )
    assert (second["gross_amount"], second["net_amount"], second["status"]) == (
        25.0,
        25.0,
        "completed",
    )


def test_ge_counts_agree_with_the_quarantine_predicates(spark: SparkSession, tiny: Config) -> None:
    results = read(spark, tiny, Layer.OPS, "validation_results")
    row_level = results.where(F.col("rows_broken").isNotNull())
    disagreeing = row_level.where(~F.col("unexpected_count").eqNullSafe(F.col("rows_broken")))
    assert disagreeing.count() == 0
    statuses = {
        r["table"]: r["table_status"]
        for r in results.select("table", "table_status").distinct().collect()
    }
    assert statuses == {
        "events": "quarantined",
        "crm": "quarantined",
        "transactions": "quarantined",
        "catalog": "quarantined",
    }
    warned = {
        (r["table"], r["rule"], r["unexpected_count"])
        for r in results.where("severity = 'warn' AND NOT success").collect()
    }
    assert warned == {
        ("events", "event_id_unique", 2),
        ("events", "no_unexpected_fields", 1),
        ("crm", "no_unexpected_fields", 1),
    }


def test_data_docs_are_rendered(tiny: Config) -> None:
    docs = list(Path(tables.reports_path(tiny, "validate")).glob("*/data_docs/index.html"))
    assert len(docs) == 1
    pages = list(docs[0].parent.glob("validations/**/*.html"))
    assert len(pages) == 4


def test_second_run_changes_nothing(spark: SparkSession, tiny: Config) -> None:
    paths = [tables.table_path(tiny, Layer.SILVER, t) for t in SILVER_TABLES] + [
        tables.table_path(tiny, layer, t)
        for layer in (Layer.BRONZE, Layer.QUARANTINE)
        for t in ("events", "crm", "transactions", "catalog")
    ]
    versions = {p: tables.version(spark, p) for p in paths}
    run_foundation(spark, tiny)
    assert {p: tables.version(spark, p) for p in paths} == versions


def test_a_new_file_is_ingested_once_and_flows_to_silver(
    spark: SparkSession, tmp_path: Path
) -> None:
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    run_foundation(spark, config)
    (tmp_path / "landing" / "events" / "2026-06-04.jsonl").write_text(
        '{"event_id":"e8","device_id":"d3","customer_id":"c1","session_id":"s9",'
        '"event_type":"page_view","event_time":"2026-06-04T08:00:00Z","platform":"web"}\n'
        # a late duplicate of an event silver already has
        '{"event_id":"e2","device_id":"d1","customer_id":null,"session_id":"s1",'
        '"event_type":"search","search_query":"shoes","event_time":"2026-06-01T10:01:00+02:00",'
        '"platform":"web"}\n'
    )
    run_foundation(spark, config)
    bronze = read(spark, config, Layer.BRONZE, "events")
    assert bronze.groupBy("_batch_no").count().orderBy("_batch_no").collect() == [(1, 8), (2, 2)]
    silver = read(spark, config, Layer.SILVER, "events")
    assert sorted(r[0] for r in silver.select("event_id").collect()) == ["e1", "e2", "e7", "e8"]


def test_unfinished_ingest_batch_is_replayed_exactly_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A run that died after planning a batch but before bronze: the next run finishes it."""
    from precision_marketing.contracts import SOURCES
    from precision_marketing.ingest import job as ingest_job
    from precision_marketing.io import files

    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    ctx = run_stage(spark, config, "ingest")
    landed = tmp_path / "landing" / "catalog" / "catalog-2.csv"
    landed.write_text(
        "item_id,title,category,brand,price,active,updated_at\ni4,New,toys,Kid,9,true,2026-06-01T00:00:00Z\n"
    )
    new = [f for f in files.list_files(spark, str(landed)) if f.path.endswith("catalog-2.csv")]
    ledger = tables.table_path(config, Layer.OPS, "ingest_ledger")
    ingest_job._plan_batch(spark, ledger, SOURCES["catalog"], 2, new, ctx)

    run_stage(spark, config, "ingest")
    run_stage(spark, config, "ingest")

    catalog = read(spark, config, Layer.BRONZE, "catalog")
    assert catalog.where("item_id = 'i4'").select("_batch_no").collect() == [(2,)]
    assert catalog.count() == 4


def test_a_rerun_of_a_committed_batch_is_skipped_by_delta(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Bronze committed but the run died before recording it: the replay appends nothing."""
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    run_stage(spark, config, "ingest")
    bronze = tables.table_path(config, Layer.BRONZE, "catalog")
    version = tables.version(spark, bronze)
    from precision_marketing.contracts import SOURCES
    from precision_marketing.ingest import job as ingest_job
    from precision_marketing.io import files

    batch = files.list_files(spark, str(tmp_path / "landing" / "catalog"))
    ingest_job._write_bronze(spark, SOURCES["catalog"], batch, 1, "replay", bronze)
    assert tables.version(spark, bronze) == version
    assert DeltaTable.forPath(spark, bronze).toDF().count() == 3


def test_every_table_opens_with_delta_spark_and_delta_rs(spark: SparkSession, tiny: Config) -> None:
    import deltalake

    layers = {
        Layer.BRONZE: ("events", "crm", "transactions", "catalog"),
        Layer.QUARANTINE: ("events", "crm", "transactions", "catalog"),
        Layer.SILVER: SILVER_TABLES,
        Layer.OPS: ("ingest_ledger", "validation_results", "watermarks"),
    }
    for layer, names in layers.items():
        for name in names:
            path = tables.table_path(tiny, layer, name)
            spark_rows = DeltaTable.forPath(spark, path).toDF().count()
            rs_rows = deltalake.DeltaTable(path).to_pyarrow_table().num_rows
            assert (name, rs_rows) == (name, spark_rows)
