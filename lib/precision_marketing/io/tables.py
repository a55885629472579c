"""Where every table lives: <warehouse>/<layer>/<table>, and the small Delta helpers jobs share."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from precision_marketing.config import Config
from precision_marketing.io import files


class Layer(StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    ACTIVATION = "activation"
    QUARANTINE = "quarantine"
    OPS = "ops"


def absolute_uri(path: str) -> str:
    """Relative local paths are taken from the working directory; URIs pass through."""
    if urlparse(path).scheme:
        return path.rstrip("/")
    return os.path.abspath(path)


def warehouse(config: Config) -> str:
    return absolute_uri(config.storage.warehouse)


def landing(config: Config, folder: str = "") -> str:
    base = absolute_uri(config.storage.landing)
    return f"{base}/{folder}" if folder else base


def ground_truth(config: Config, table: str = "") -> str:
    base = absolute_uri(config.storage.ground_truth)
    return f"{base}/{table}" if table else base


def table_path(config: Config, layer: Layer, name: str) -> str:
    return f"{warehouse(config)}/{layer.value}/{name}"


def reports_path(config: Config, *parts: str) -> str:
    return "/".join([warehouse(config), "reports", *parts])


def is_delta(spark: SparkSession, path: str) -> bool:
    return files.exists(spark, path) and DeltaTable.isDeltaTable(spark, path)


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def read_or_empty(spark: SparkSession, path: str, schema: Any) -> DataFrame:
    """The table, or an empty frame of `schema` before its first write."""
    return read(spark, path) if is_delta(spark, path) else spark.createDataFrame([], schema)


def version(spark: SparkSession, path: str) -> int | None:
    if not is_delta(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])  # type: ignore[index]


@dataclass(frozen=True)
class Commit:
    version: int
    operation: str
    metrics: dict[str, str]
    user_metadata: str | None = None

    def rows(self, *keys: str) -> int:
        return sum(int(self.metrics.get(k, 0)) for k in keys)


def last_commit(spark: SparkSession, path: str) -> Commit:
    """Row counts of the latest write from the Delta log: no extra Spark job to count them."""
    row = DeltaTable.forPath(spark, path).history(1).first()
    assert row is not None
    return Commit(
        int(row["version"]),
        str(row["operation"]),
        dict(row["operationMetrics"] or {}),
        row["userMetadata"],
    )


def append(
    df: DataFrame,
    path: str,
    partition_by: Sequence[str] = (),
    txn: tuple[str, int] | None = None,
    merge_schema: bool = False,
    user_metadata: str | None = None,
) -> None:
    """Appends; with txn=(app id, version) Delta skips a version it already committed;
    merge_schema adds columns the table lacks (an older table gaining a lineage column)."""
    writer = df.write.format("delta").mode("append")
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    writer.save(path)


def upsert(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    keys: Sequence[str],
    partition_by: Sequence[str] = (),
    update_when: str | None = None,
    insert_only: bool = False,
    replace_within: str | None = None,
    user_metadata: str | None = None,
) -> Commit:
    """MERGE by `keys` (creating the table on first write), so a rerun changes nothing.

    replace_within, a predicate on the target `t`: `df` is the whole new content of the rows it
    selects, so target rows there that `df` lacks are deleted (and the MERGE reads only the
    files that can hold such rows). user_metadata is stored in the commit (`last_commit`).
    """
    if not is_delta(spark, path):
        append(df, path, partition_by, user_metadata=user_metadata)
        return last_commit(spark, path)
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    if replace_within is not None:
        condition = f"{condition} AND ({replace_within})"
    merge = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), condition)
    if not insert_only:
        merge = merge.whenMatchedUpdateAll(condition=update_when)
    merge = merge.whenNotMatchedInsertAll()
    if replace_within is not None:
        merge = merge.whenNotMatchedBySourceDelete(condition=replace_within)
    with _commit_metadata(spark, user_metadata):
        merge.execute()
    return last_commit(spark, path)


@contextmanager
def _commit_metadata(spark: SparkSession, user_metadata: str | None) -> Iterator[None]:
    """Delta's DeltaTable API takes commit metadata only from the session conf."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    if user_metadata is None:
        yield
        return
    spark.conf.set(key, user_metadata)
    try:
        yield
    finally:
        spark.conf.unset(key)


def overwrite(df: DataFrame, path: str, user_metadata: str | None = None) -> None:
    """Replaces the whole table (its schema too) in one commit."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(path)


CHANGE_FEED = "delta.enableChangeDataFeed"


def enable_change_feed(spark: SparkSession, path: str) -> None:
    """Turns on Delta's change data feed (the rows each later version changed), once: readers
    that keep an aggregate up to date read what changed instead of the whole table."""
    detail = DeltaTable.forPath(spark, path).detail().select("properties").first()
    assert detail is not None
    if (detail[0] or {}).get(CHANGE_FEED) != "true":
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")


def changes(spark: SparkSession, path: str, after: int, up_to: int) -> DataFrame:
    """The change data feed of versions (after, up_to]: inserted, deleted and updated rows,
    an update as its pre- and post-image (`_change_type`). Raises AnalysisException when the
    feed was off for one of those versions."""
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after + 1)
        .option("endingVersion", up_to)
        .load(path)
    )


def replace_where(
    df: DataFrame, path: str, predicate: str, partition_by: Sequence[str] = ()
) -> None:
    """Overwrites only the rows matching `predicate` (one snapshot), atomically."""
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


@contextmanager
def restored_on_failure(spark: SparkSession, paths: Sequence[str]) -> Iterator[None]:
    """Puts every table in `paths` back to its version before the block if the block raises.

    Delta commits are atomic per table; a job that writes several tables uses this so a failed
    run leaves all of them as they were. Tables the block created are removed again.
    """
    before = {path: version(spark, path) for path in paths}
    try:
        yield
    except BaseException:
        for path, start in before.items():
            now = version(spark, path)
            if start is None and now is not None:
                files.delete(spark, path)
            elif start is not None and now is not None and now != start:
                DeltaTable.forPath(spark, path).restoreToVersion(start)
        raise
