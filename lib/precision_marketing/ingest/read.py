"""Raw files -> bronze rows: explicit schemas, raw text kept for anything that does not parse.

Pure reading and shaping; which files to read and where rows go is decided in `ingest.job`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from precision_marketing.contracts import Source
from precision_marketing.io import files


def read_jsonl(spark: SparkSession, source: Source, paths: Sequence[str]) -> DataFrame:
    """One pass over the lines: parse with the contract schema, keep bad lines as raw text.

    A line is well formed when it is a JSON object; keys outside the contract are listed in
    `_unexpected_fields` (the row itself is kept) instead of being silently dropped.
    """
    expected = F.array(*[F.lit(name) for name in source.schema.fieldNames()])
    lines = (
        spark.read.text(list(paths))
        .select("value", F.col("_metadata.file_path").alias("_source_file"))
        .where(F.trim("value") != "")
    )
    keys = F.json_object_keys("value")
    parsed = F.from_json("value", source.schema, {"mode": "PERMISSIVE"})
    return lines.select(
        parsed.alias("r"),
        "_source_file",
        F.when(keys.isNull(), F.col("value")).alias("_corrupt_record"),
        _names_or_null(F.array_except(keys, expected)).alias("_unexpected_fields"),
    ).select(
        *[F.col(f"r.{name}").alias(name) for name in source.schema.fieldNames()],
        "_source_file",
        "_corrupt_record",
        "_unexpected_fields",
    )


def read_csv(spark: SparkSession, source: Source, paths: Sequence[str]) -> DataFrame | None:
    """Reads CSV files by their own header names, so a reordered, missing or extra column is
    mapped correctly and reported instead of shifting values into the wrong fields.

    Files are grouped by header (a handful of distinct headers, read on the driver): one Spark
    read per header shape. Values that do not cast to the contract type make the row corrupt,
    with the row's raw text kept. Returns None when every file is empty.
    """
    by_header: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in paths:
        header = files.read_first_line(spark, path)
        if header:
            by_header[_split_header(header)].append(path)
    frames = [_read_csv_group(spark, source, header, group) for header, group in by_header.items()]
    return reduce(DataFrame.unionByName, frames) if frames else None


def _split_header(line: str) -> tuple[str, ...]:
    return tuple(name.strip().strip('"').strip() for name in line.split(","))


def _read_csv_group(
    spark: SparkSession, source: Source, header: tuple[str, ...], paths: Sequence[str]
) -> DataFrame:
    raw_schema = StructType(
        [StructField(name, StringType(), True) for name in header]
        + [StructField("_malformed", StringType(), True)]
    )
    raw = (
        spark.read.schema(raw_schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_malformed")
        .option("multiLine", False)
        .option("escape", '"')
        .csv(list(paths))
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )
    present = set(header)
    typed: dict[str, Column] = {}
    cast_failed: list[Column] = []
    for field in source.schema.fields:
        if field.name not in present:
            typed[field.name] = F.lit(None).cast(field.dataType)
            continue
        text = F.col(f"`{field.name}`")
        value = text if isinstance(field.dataType, StringType) else text.try_cast(field.dataType)
        typed[field.name] = value
        if not isinstance(field.dataType, StringType):
            cast_failed.append(text.isNotNull() & value.isNull())
    any_cast_failed = reduce(Column.__or__, cast_failed, F.lit(False))
    raw_text = F.to_json(F.struct(*[F.col(f"`{name}`") for name in header]))
    extra = sorted(present - set(source.schema.fieldNames()))
    return raw.select(
        *[value.alias(name) for name, value in typed.items()],
        "_source_file",
        F.when(F.col("_malformed").isNotNull(), F.col("_malformed"))
        .when(any_cast_failed, raw_text)
        .alias("_corrupt_record"),
        F.lit(",".join(extra) if extra else None).cast("string").alias("_unexpected_fields"),
    )


def raw_schema(source: Source) -> StructType:
    """What the readers return: the contract's columns plus the reading lineage."""
    extra = [
        StructField(name, StringType(), True)
        for name in ("_source_file", "_corrupt_record", "_unexpected_fields")
    ]
    return StructType(source.schema.fields + extra)


def bronze_schema(source: Source) -> StructType:
    """A bronze table's schema: the raw columns plus what `with_ingest_metadata` adds."""
    lineage = [
        StructField("_record_id", StringType(), False),
        StructField("_batch_no", LongType(), False),
        StructField("_ingest_run_id", StringType(), False),
        StructField("_ingested_at", TimestampType(), False),
    ]
    return StructType(raw_schema(source).fields + lineage)


def _names_or_null(names: Column) -> Column:
    return F.when(F.size(names) > 0, F.array_join(F.array_sort(names), ","))


def with_ingest_metadata(df: DataFrame, batch_no: int, run_id: str) -> DataFrame:
    """Adds the lineage every bronze row carries: batch, run, time and a stable record id."""
    return df.select(
        *df.columns,
        F.concat_ws("-", F.lit(batch_no), F.monotonically_increasing_id()).alias("_record_id"),
        F.lit(batch_no).cast("long").alias("_batch_no"),
        F.lit(run_id).alias("_ingest_run_id"),
        F.current_timestamp().alias("_ingested_at"),
    )
