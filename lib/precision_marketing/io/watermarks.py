"""How far each stage has processed each bronze table, in batch numbers (`ops/watermarks`).

validate advances its mark only when a batch passed its `fail` rules; silver reads only batches
up to validate's mark. Marks move after the stage's own writes, and those writes are idempotent,
so a run that dies in between simply redoes the batch.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas.ops import WATERMARKS as SCHEMA


def path(config: Config) -> str:
    return tables.table_path(config, Layer.OPS, "watermarks")


def get(spark: SparkSession, config: Config, stage: str, table: str) -> int:
    table_path = path(config)
    if not tables.is_delta(spark, table_path):
        return 0
    row = (
        tables.read(spark, table_path)
        .where((F.col("stage") == stage) & (F.col("table") == table))
        .select("batch_no")
        .first()
    )
    return int(row[0]) if row else 0


def advance(
    spark: SparkSession, config: Config, stage: str, table: str, batch_no: int, run_id: str
) -> None:
    row = spark.createDataFrame([(stage, table, batch_no, run_id, datetime.now(UTC))], SCHEMA)
    tables.upsert(spark, row, path(config), keys=["stage", "table"])
