"""Raw files -> bronze rows: explicit schemas, raw text kept for anything that does not parse.

Pure reading and shaping through the user's mapping (`ingest.mapping`); which files to read and
where rows go is decided in `ingest.job`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from precision_marketing.contracts import Source, max_length
from precision_marketing.ingest.mapping import (
    FALLBACKS,
    Fallback,
    MappedSource,
    as_contract,
    bronze_date,
    bronze_time,
)
from precision_marketing.io import files

log = logging.getLogger(__name__)


def read_source(
    spark: SparkSession, mapped: MappedSource, paths: Sequence[str]
) -> DataFrame | None:
    """The files in the contract's raw bronze shape, whatever their format and column names;
    None when no file holds anything (0-byte files, header-only CSVs are not data)."""
    if mapped.fmt == "jsonl":
        return read_jsonl(spark, mapped, paths)
    if mapped.fmt == "parquet":
        return read_parquet(spark, mapped, paths)
    return read_csv(spark, mapped, paths)


def read_jsonl(spark: SparkSession, mapped: MappedSource, paths: Sequence[str]) -> DataFrame:
    """One pass over the lines: every value read as the text it holds, bad lines kept as raw text.

    A line is well formed when it is a JSON object; keys that map to no contract field are
    listed in `_unexpected_fields` (the row itself is kept) instead of being silently dropped.
    Values are cast to their contract type from their text, the same casts as CSV's: `"7.5"`
    and `7.5` are one price, `"abc"` or `true` where a number belongs is an invalid field, and an
    object or array where text belongs is one too (`_holds_container`), never stringified.
    """
    read_as = mapped.read_columns()
    as_text = StructType([StructField(column, StringType(), True) for column in read_as])
    lines = (
        spark.read.text(list(paths))
        .select("value", F.col("_metadata.file_path").alias("_source_file"))
        .where(F.trim("value") != "")
    )
    keys = F.json_object_keys("value")
    if mapped.named_columns():
        # Only for a user's own names (one extra pass): the contract's layout needs no check.
        found = lines.select(F.explode(keys).alias("key")).where(
            F.col("key").isin(mapped.named_columns())
        )
        _warn_unmapped(mapped, {r[0] for r in found.distinct().collect()})
    texts = sorted(c for c, name in read_as.items() if name in _text_fields(mapped.source))
    # Flags as columns of their own: the final projection names them where a field's value,
    # its cast check and its length check would otherwise each repeat the expression.
    container_flags = {column: f"_container_{i}" for i, column in enumerate(texts)}
    parsed = lines.select(
        F.from_json("value", as_text, {"mode": "PERMISSIVE"}).alias("r"),
        "_source_file",
        "value",
        keys.alias("_keys"),
    ).select(
        *[F.col("r").getField(column).alias(column) for column in read_as],
        *[
            _holds_container(F.col("value"), F.col("r").getField(column), column).alias(flag)
            for column, flag in container_flags.items()
        ],
        "_source_file",
        "value",
        "_keys",
    )
    expected = F.array(*[F.lit(column) for column in read_as])
    return _to_contract(
        parsed,
        mapped,
        set(read_as),
        malformed=F.when(F.col("_keys").isNull(), F.col("value")),
        raw_text=F.col("value"),
        unexpected=_names_or_null(F.array_except(F.col("_keys"), expected)),
        containers={column: F.col(flag) for column, flag in container_flags.items()},
    )


def _holds_container(line: Column, text: Column, key: str) -> Column:
    """True when the line's value under `key`, read as `text`, is a JSON object or array.

    Read as text, the object `{"id": 1}` and a string holding those same characters look alike;
    only values whose text starts like a container are parsed again (as a variant) to tell them
    apart, so a common line pays one parse. (Spark SQL functions only: a `from_json` here would
    take the projection out of whole-stage code generation.)
    """
    value = F.try_variant_get(F.try_parse_json(line), _variant_path(key), "variant")
    kind = F.schema_of_variant(value)
    looks_like = text.startswith("{") | text.startswith("[")
    return F.when(looks_like, kind.startswith("OBJECT") | kind.startswith("ARRAY")).otherwise(
        F.lit(False)
    )


def _variant_path(key: str) -> str:
    """The variant path of a top-level key, quoted so any name a user's export has works."""
    if '"' not in key:
        return f'$["{key}"]'
    if "'" not in key:
        return f"$['{key}']"
    raise ValueError(f"a JSON key with both quote characters is not supported: {key!r}")


def read_parquet(spark: SparkSession, mapped: MappedSource, paths: Sequence[str]) -> DataFrame:
    """Parquet carries its own types: a value that does not cast to the contract's makes the
    row corrupt (its values kept as JSON text); times that are instants need no zone."""
    raw = (
        spark.read.option("mergeSchema", True)
        .parquet(*paths)
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )
    columns = [c for c in raw.columns if c != "_source_file"]
    _warn_unmapped(mapped, set(columns))
    extra = sorted(set(columns) - set(mapped.read_columns()))
    return _to_contract(
        raw,
        mapped,
        set(columns),
        malformed=F.lit(None).cast("string"),
        raw_text=F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])),
        unexpected=F.lit(",".join(extra) if extra else None).cast("string"),
    )


def read_csv(
    spark: SparkSession, source: MappedSource | Source, paths: Sequence[str]
) -> DataFrame | None:
    """Reads CSV files by their own header names, so a reordered, missing or extra column is
    mapped correctly and reported instead of shifting values into the wrong fields.

    Files are grouped by header (a handful of distinct headers, read on the driver): one Spark
    read per header shape. Values that do not cast to the contract type make the row corrupt,
    with the row's raw text kept. Returns None when no file has a header.
    """
    mapped = source if isinstance(source, MappedSource) else as_contract(source)
    by_header: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in paths:
        header = files.read_first_line(spark, path)
        if header:
            by_header[_split_header(header, mapped.mapping.delimiter)].append(path)
    if by_header:
        _warn_unmapped(mapped, {name for header in by_header for name in header})
    frames = [_read_csv_group(spark, mapped, header, group) for header, group in by_header.items()]
    return reduce(DataFrame.unionByName, frames) if frames else None


def _split_header(line: str, delimiter: str = ",") -> tuple[str, ...]:
    return tuple(name.strip().strip('"').strip() for name in line.split(delimiter))


def _read_csv_group(
    spark: SparkSession, mapped: MappedSource, header: tuple[str, ...], paths: Sequence[str]
) -> DataFrame:
    raw_schema = StructType(
        [StructField(name, StringType(), True) for name in header]
        + [StructField("_malformed", StringType(), True)]
    )
    raw = (
        spark.read.schema(raw_schema)
        .option("header", True)
        .option("sep", mapped.mapping.delimiter)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_malformed")
        .option("multiLine", False)
        .option("escape", '"')
        .csv(list(paths))
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )
    extra = sorted(set(header) - set(mapped.read_columns()))
    return _to_contract(
        raw,
        mapped,
        set(header),
        malformed=F.col("_malformed"),
        raw_text=F.to_json(F.struct(*[F.col(f"`{name}`") for name in header])),
        unexpected=F.lit(",".join(extra) if extra else None).cast("string"),
    )


def _to_contract(
    raw: DataFrame,
    mapped: MappedSource,
    present: set[str],
    *,
    malformed: Column,
    raw_text: Column,
    unexpected: Column,
    containers: dict[str, Column] | None = None,
) -> DataFrame:
    """The user's columns -> the contract's fields: renamed, constants filled, cast, and times
    rewritten as ISO text.

    A value that does not fit its contract type (does not cast, or an object where text belongs)
    or is longer than the contract allows (`contracts.max_length`) is an invalid field: its name
    goes to `_invalid_fields`, and when the value itself was lost to the cast, the row's raw
    text is kept in `_corrupt_record`.
    """
    source, mapping = mapped.source, mapped.mapping
    dtypes = {f.name: f.dataType for f in raw.schema.fields}
    typed: dict[str, Column] = {}
    fallbacks: dict[str, Fallback | None] = {}
    cast_failed: dict[str, Column] = {}
    for field in source.schema.fields:
        column = mapped.column_of(field.name)
        if column is None:
            typed[field.name] = F.lit(mapping.constants[field.name]).try_cast(field.dataType)
            continue
        if column not in present:
            typed[field.name] = F.lit(None).cast(field.dataType)
            fallbacks[field.name] = FALLBACKS.get((source.name, field.name))
            continue
        value, dtype = F.col(f"`{column}`"), dtypes[column]
        if containers and column in containers:  # JSON: an object is no text
            cast_failed[field.name] = containers[column]
            value = F.when(~containers[column], value)
        if field.name in source.time_fields:
            typed[field.name] = bronze_time(value, dtype, mapping)
        elif field.name in source.date_fields:
            typed[field.name] = bronze_date(value, dtype, mapping)
        elif dtype == field.dataType:
            typed[field.name] = value
        elif isinstance(field.dataType, StringType):
            typed[field.name] = value.cast("string")
            if isinstance(dtype, StructType | ArrayType | MapType):  # Parquet: never stringified
                typed[field.name] = F.lit(None).cast("string")
                cast_failed[field.name] = value.isNotNull()
        else:
            cast = value.try_cast(field.dataType)
            typed[field.name] = cast
            cast_failed[field.name] = value.isNotNull() & cast.isNull()
    for name, fallback in fallbacks.items():
        if fallback is not None:
            log.warning("%s: no %s column: %s", mapped.name, name, fallback.consequence)
            typed[name] = fallback.value(typed).cast(source.schema[name].dataType)
    any_cast_failed = reduce(Column.__or__, cast_failed.values(), F.lit(False))
    texts = _text_fields(source)
    invalid = [
        F.when(
            cast_failed.get(name, F.lit(False))
            | (_too_long(name, typed[name]) if name in texts else F.lit(False)),
            F.lit(name),
        )
        for name in sorted(typed)
    ]
    return raw.select(
        *[value.alias(name) for name, value in typed.items()],
        "_source_file",
        F.when(malformed.isNotNull(), malformed)
        .when(any_cast_failed, raw_text)
        .alias("_corrupt_record"),
        unexpected.alias("_unexpected_fields"),
        F.when(malformed.isNull(), F.nullif(F.concat_ws(",", *invalid), F.lit(""))).alias(
            "_invalid_fields"
        ),
    )


def _text_fields(source: Source) -> set[str]:
    """Contract fields that hold text: the ones with a length limit and no room for an object."""
    return {f.name for f in source.schema.fields if isinstance(f.dataType, StringType)}


def _too_long(name: str, value: Column) -> Column:
    """Text longer than the contract allows; its byte count (known without a scan) rules out
    most values before their characters are counted."""
    limit = max_length(name)
    return F.coalesce(F.when(F.octet_length(value) > limit, F.length(value) > limit), F.lit(False))


def _warn_unmapped(mapped: MappedSource, found: set[str]) -> None:
    """One line per column the mapping names that no file of the batch has."""
    for field_name, column in mapped.mapping.columns.items():
        if column in mapped.named_columns() and column not in found:
            log.warning(
                "%s: sources.%s.columns.%s names column '%s', which no file of this batch has: "
                "%s is null",
                mapped.name,
                mapped.name,
                field_name,
                column,
                field_name,
            )


def raw_schema(source: Source) -> StructType:
    """What the readers return: the contract's columns plus the reading lineage."""
    extra = [
        StructField(name, StringType(), True)
        for name in ("_source_file", "_corrupt_record", "_unexpected_fields", "_invalid_fields")
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
    # sort_array, not array_sort: a lambda-sorted array takes the projection out of codegen.
    return F.when(F.size(names) > 0, F.array_join(F.sort_array(names), ","))


def with_ingest_metadata(df: DataFrame, batch_no: int, run_id: str) -> DataFrame:
    """Adds the lineage every bronze row carries: batch, run, time and a stable record id."""
    return df.select(
        *df.columns,
        F.concat_ws("-", F.lit(batch_no), F.monotonically_increasing_id()).alias("_record_id"),
        F.lit(batch_no).cast("long").alias("_batch_no"),
        F.lit(run_id).alias("_ingest_run_id"),
        F.current_timestamp().alias("_ingested_at"),
    )
