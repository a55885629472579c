"""ingest: landing files -> bronze/<source>, each file read exactly once.

Exactly-once works like Structured Streaming's offset log: the batch's file list is written to
`ops/ingest_ledger` *before* bronze is written, and the bronze append carries Delta's idempotent
transaction id (txnAppId = ingest/<source>, txnVersion = batch number). A run that dies between
the two writes replays the very same files under the same batch number on the next run, and Delta
skips the append if it had already committed. Files already in the ledger are never read again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.contracts import SOURCES, Source
from precision_marketing.ingest.mapping import MappedSource, as_contract, load_sources
from precision_marketing.ingest.read import raw_schema, read_source, with_ingest_metadata
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas.ops import INGEST_LEDGER as LEDGER_SCHEMA

log = logging.getLogger(__name__)

BATCH_METADATA_PREFIX = "ingest-batch:"


def run(ctx: JobContext) -> None:
    written = [tables.table_path(ctx.config, Layer.OPS, "ingest_ledger")] + [
        tables.table_path(ctx.config, Layer.BRONZE, name) for name in SOURCES
    ]
    mapped = load_sources(ctx.config)
    with tables.restored_on_failure(ctx.spark, written):
        for source in SOURCES.values():
            if source.name not in mapped:
                log.warning(
                    "%s: not in %s: %s will be empty",
                    source.name,
                    ctx.config.sources_path(),
                    ", ".join(source.silver_tables),
                )
                continue
            ingest_source(ctx, mapped[source.name])


def landing_folder(config: Config, mapped: MappedSource) -> str:
    """The source's folder under storage.landing; an absolute path or URI is taken as is."""
    if mapped.folder.startswith("/") or "://" in mapped.folder:
        return tables.absolute_uri(mapped.folder)
    return tables.landing(config, mapped.folder)


def ingest_source(ctx: JobContext, mapped: MappedSource) -> None:
    spark, config, source = ctx.spark, ctx.config, mapped.source
    ledger_path = tables.table_path(config, Layer.OPS, "ingest_ledger")
    bronze_path = tables.table_path(config, Layer.BRONZE, source.name)
    with step(log, f"ingest {source.name}") as s:
        ledger = _ledger_rows(spark, ledger_path, source.name)
        last_planned = max((row["batch_no"] for row in ledger), default=0)
        pending = last_planned > last_committed_batch(spark, bronze_path)
        if pending:
            batch_no = last_planned
            batch = [_as_file(row) for row in ledger if row["batch_no"] == batch_no]
            log.warning(
                "%s: replaying batch %d left unfinished by a failed run", source.name, batch_no
            )
        else:
            known = {row["file_path"]: row for row in ledger}
            folder = landing_folder(config, mapped)
            landed = files.list_files(spark, folder)
            _warn_changed(source, landed, known)
            new = [f for f in landed if f.path not in known]
            if not landed and not known:
                log.warning(
                    "%s: no landing files under %s: %s will be empty",
                    source.name,
                    folder,
                    ", ".join(source.silver_tables),
                )
            if not new:
                s.rows(new_files=0, rows=0)
                return
            batch_no = last_planned + 1
            _plan_batch(spark, ledger_path, source, batch_no, new, ctx)
            batch = new
        rows = _write_bronze(spark, mapped, batch, batch_no, ctx.run_id, bronze_path)
        if rows == 0:
            log.warning(
                "%s: batch %d holds no rows (%d file(s), 0-byte or header only)%s",
                source.name,
                batch_no,
                len(batch),
                f": {', '.join(source.silver_tables)} will be empty"
                if tables.read(spark, bronze_path).isEmpty()
                else "",
            )
        s.rows(batch=batch_no, files=len(batch), rows=rows)


def _as_file(row: dict) -> files.LandingFile:
    modified_ms = int(row["file_modified_at"].timestamp() * 1000)
    return files.LandingFile(row["file_path"], row["file_size"], modified_ms)


def _ledger_rows(spark: SparkSession, ledger_path: str, source: str) -> list[dict]:
    # One row per landing file (small by construction): fine to bring to the driver.
    if not tables.is_delta(spark, ledger_path):
        return []
    rows = tables.read(spark, ledger_path).where(F.col("source") == source).collect()
    return [row.asDict() for row in rows]


def last_committed_batch(spark: SparkSession, bronze_path: str) -> int:
    """The highest batch bronze committed, from the commits' metadata (no data scan)."""
    if not tables.is_delta(spark, bronze_path):
        return 0
    # One row per bronze commit (one per ingest batch), not per data row.
    history = DeltaTable.forPath(spark, bronze_path).history().select("userMetadata")
    batches = [
        int(meta[len(BATCH_METADATA_PREFIX) :])
        for (meta,) in history.collect()
        if meta and meta.startswith(BATCH_METADATA_PREFIX)
    ]
    return max(batches, default=0)


def _warn_changed(source: Source, landed: list[files.LandingFile], known: dict[str, dict]) -> None:
    for f in landed:
        seen = known.get(f.path)
        if seen is not None and seen["file_size"] != f.size:
            log.warning(
                "%s: %s changed size after it was ingested (%d -> %d bytes); landing files are "
                "append-only, so it is not read again: land corrections as new files",
                source.name,
                f.path,
                seen["file_size"],
                f.size,
            )


def _plan_batch(
    spark: SparkSession,
    ledger_path: str,
    source: Source,
    batch_no: int,
    new: list[files.LandingFile],
    ctx: JobContext,
) -> None:
    planned_at = datetime.now(UTC)
    rows = [
        (
            source.name,
            batch_no,
            f.path,
            f.size,
            datetime.fromtimestamp(f.modified_ms / 1000, UTC),
            ctx.run_id,
            planned_at,
        )
        for f in new
    ]
    tables.append(spark.createDataFrame(rows, LEDGER_SCHEMA), ledger_path)


def _write_bronze(
    spark: SparkSession,
    source: MappedSource | Source,
    batch: list[files.LandingFile],
    batch_no: int,
    run_id: str,
    bronze_path: str,
) -> int:
    mapped = source if isinstance(source, MappedSource) else as_contract(source)
    non_empty = [f.path for f in batch if f.size > 0]
    raw = read_source(spark, mapped, non_empty) if non_empty else None
    if raw is None:
        # Still commit (no rows) so the batch counts as done and validate moves past it.
        raw = spark.createDataFrame([], raw_schema(mapped.source))
    bronze = with_ingest_metadata(raw, batch_no, run_id)
    (
        bronze.write.format("delta")
        .mode("append")
        .option("txnAppId", f"ingest/{mapped.name}")
        .option("txnVersion", batch_no)
        # A bronze table written before a lineage column was added (e.g. _invalid_fields) gains it.
        .option("mergeSchema", "true")
        .option("userMetadata", f"{BATCH_METADATA_PREFIX}{batch_no}")
        .save(bronze_path)
    )
    commit = tables.last_commit(spark, bronze_path)
    return commit.rows("numOutputRows")
