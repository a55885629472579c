"""Audience files for email, SMS and ad tools: <warehouse>/exports/<campaign>/<run_date>/.

One CSV and one Parquet file of the treatment group per campaign and run date. Files are
written to a staging folder first and swapped into place together at the end of a run, so a
failed run leaves the previous files (or none) rather than half a set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import files, tables
from precision_marketing.publish import audience, policy

EXPORT_COLUMNS = [
    "customer_id",
    "campaign_id",
    "run_date",
    "channel",
    *audience.rec_columns(),
    "segment_name",
    "propensity_decile",
]
FORMATS = ("csv", "parquet")


def exports_root(config: Config) -> str:
    return f"{tables.warehouse(config)}/exports"


def export_dir(config: Config, campaign_id: str, run_date: date) -> str:
    return f"{exports_root(config)}/{campaign_id}/{run_date.isoformat()}"


def file_name(campaign_id: str, run_date: date, fmt: str) -> str:
    return f"{campaign_id}_{run_date.isoformat()}.{fmt}"


def treatment_rows(audiences: DataFrame) -> DataFrame:
    """Who to contact and what to show them, per campaign, in customer order."""
    return audiences.where(F.col("group") == policy.TREATMENT).select(*EXPORT_COLUMNS)


def _move_file(spark: SparkSession, source: str, target: str) -> None:
    """Moves a data file without the local file system's hidden .crc companion."""
    files.rename(spark, source, target)
    folder, name = target.rsplit("/", 1)
    files.delete(spark, f"{folder}/.{name}.crc")


def _write(df: DataFrame, fmt: str, path: str, partition_by: str | None = None) -> None:
    writer = df.write.mode("overwrite").format(fmt)
    if fmt == "csv":
        writer = writer.option("header", True)
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(path)


def _data_files(spark: SparkSession, folder: str, fmt: str) -> list[str]:
    return [f.path for f in files.list_files(spark, folder) if f.path.endswith(f".{fmt}")]


@dataclass(frozen=True)
class Staged:
    staged: str
    target: str


def stage(
    spark: SparkSession,
    config: Config,
    audiences: DataFrame,
    campaign_ids: list[str],
    run_date: date,
    staging: str,
) -> list[Staged]:
    """Writes one CSV and one Parquet file per campaign under `staging`; nothing visible
    changes yet.

    One Spark job per format writes every campaign (partitioned by campaign). coalesce(1):
    the tools import one file per list, and the treatment groups, capped by budget or size,
    are small enough for one task to write (and sort: each file is in customer order).
    """
    rows = (
        treatment_rows(audiences)
        .withColumn("_campaign", F.col("campaign_id"))
        .coalesce(1)
        .sortWithinPartitions("_campaign", "customer_id")
    )
    for fmt in FORMATS:
        _write(rows, fmt, f"{staging}/{fmt}", partition_by="_campaign")
    staged = []
    for campaign_id in campaign_ids:
        folder = f"{staging}/new/{campaign_id}"
        for fmt in FORMATS:
            target = f"{folder}/{file_name(campaign_id, run_date, fmt)}"
            parts = _data_files(spark, f"{staging}/{fmt}/_campaign={campaign_id}", fmt)
            if not parts:  # nobody to contact: a file with the header (schema) only
                scratch = f"{staging}/empty/{campaign_id}/{fmt}"
                empty = treatment_rows(audiences).where(F.lit(False)).coalesce(1)
                _write(empty, fmt, scratch)
                parts = _data_files(spark, scratch, fmt)
            (part,) = parts
            _move_file(spark, part, target)
        staged.append(Staged(folder, export_dir(config, campaign_id, run_date)))
    return staged


def swap_into_place(spark: SparkSession, staged: list[Staged], staging: str) -> None:
    """Moves each staged folder to its target, keeping replaced folders until all moved; on
    failure every target is put back as it was."""
    done: list[tuple[str, str | None]] = []
    try:
        for n, s in enumerate(staged):
            previous = None
            if files.exists(spark, s.target):
                previous = f"{staging}/previous/{n}"
                files.rename(spark, s.target, previous)
            done.append((s.target, previous))
            files.rename(spark, s.staged, s.target)
    except BaseException:
        for target, previous in reversed(done):
            files.delete(spark, target)
            if previous is not None:
                files.rename(spark, previous, target)
        raise
