"""publish: campaigns that send on the run date -> activation/audiences, exports and a manifest.

Per run: the suppression list is loaded, every input is pinned (Delta version, gold snapshot)
in a manifest, audiences are built from that manifest, then written together with
activation/campaign_runs and activation/contact_history; the export files are swapped into
place last. A failure restores every table and removes the manifest. A rerun for the same run
date replaces that date's rows of each campaign (the holdout split is a hash, so it stays).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StringType,
    StructField,
    StructType,
)

from precision_marketing.config import Config
from precision_marketing.features import categories as feature_categories
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.publish import exports, policy
from precision_marketing.publish.campaigns import (
    CHANNELS,
    Campaign,
    load_campaigns,
    unknown_categories,
)
from precision_marketing.publish.manifest import (
    CONTACT_HISTORY,
    SUPPRESSION,
    SUPPRESSION_SCHEMA,
    Manifest,
    build_audiences,
    manifest_path,
    new_manifest,
    pin_inputs,
    summary,
    unusable_criteria,
)
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas.activation import CAMPAIGN_RUNS as CAMPAIGN_RUNS_SCHEMA

log = logging.getLogger(__name__)

AUDIENCES = "audiences"
CAMPAIGN_RUNS = "campaign_runs"

# What a suppression CSV holds, by header name (checked: enforceSchema off).
SUPPRESSION_CSV = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("channel", StringType(), True),
        StructField("reason", StringType(), True),
    ]
)


def path(config: Config, name: str) -> str:
    return tables.table_path(config, Layer.ACTIVATION, name)


def run(ctx: JobContext) -> None:
    require(ctx, "publish")
    publish(ctx)


def publish(ctx: JobContext) -> None:
    """The stage after its input check (a failure test calls it with a gold snapshot missing)."""
    spark, config, run_date = ctx.spark, ctx.config, ctx.run_date
    with step(log, "publish campaigns") as s:
        defined = load_campaigns(config.campaigns_path(), config.features.top_categories)
        due = described(
            [c.resolved(run_date) for c in defined if c.sends_on(run_date)],
            feature_categories.configured_or_stored(spark, config),
        )
        s.rows(defined=len(defined), sending=len(due))
    if not due:
        log.info("publish: no campaign of %s sends on %s", config.campaigns_path(), run_date)
        return
    log.info("publish: %s", ", ".join(f"{c.id} ({c.channel})" for c in due))
    outputs = [path(config, t) for t in (AUDIENCES, CAMPAIGN_RUNS, CONTACT_HISTORY, SUPPRESSION)]
    manifest_file = manifest_path(config, ctx.run_id)
    staging = f"{exports.exports_root(config)}/_staging/{ctx.run_id}"
    try:
        with tables.restored_on_failure(spark, outputs):
            _publish(ctx, due, manifest_file, staging)
    except BaseException:
        files.delete(spark, manifest_file)
        raise
    finally:
        files.delete(spark, staging)


def described(campaigns: list[Campaign], categories: Sequence[str]) -> list[Campaign]:
    """The campaigns whose category criteria the features describe; the others are left out
    with a warning (categories chosen from the data need not be the ones campaigns.yaml
    was written for; a list set in features.top_categories was checked on load)."""
    kept = []
    for campaign in campaigns:
        unknown = unknown_categories(campaign, categories)
        if unknown:
            log.warning(
                "publish: campaign '%s' left out: its audience names %s, not among the "
                "categories the features describe (%s)",
                campaign.id,
                ", ".join(repr(c) for c in unknown),
                ", ".join(categories),
            )
        else:
            kept.append(campaign)
    return kept


def _publish(ctx: JobContext, due: list[Campaign], manifest_file: str, staging: str) -> None:
    spark, config, run_date = ctx.spark, ctx.config, ctx.run_date
    with step(log, "publish suppression list") as s:
        s.rows(rows=load_suppression(spark, config))
    with step(log, "publish manifest") as s:
        manifest = new_manifest(
            config,
            ctx.run_id,
            run_date,
            ctx.started_at.isoformat(),
            due,
            pin_inputs(spark, config, run_date),
        )
        files.write_text(spark, manifest_file, manifest.to_json())
        log.info("publish inputs (version, as_of_date): %s", summary(manifest))
        for unusable in unusable_criteria(manifest):
            log.warning("publish: %s matches nobody", unusable)
    with step(log, "publish audiences") as s:
        audiences = build_audiences(spark, config, manifest)
        sizes = group_sizes(audiences)
        s.rows(**{f"{c}_{g}": n for (c, g), n in sorted(sizes.items())})
    ids = [c.id for c in due]
    where = f"run_date = '{run_date.isoformat()}' AND campaign_id IN ({quoted(ids)})"
    with step(log, f"publish write {AUDIENCES}") as s:
        target = path(config, AUDIENCES)
        tables.replace_where(audiences, target, where, partition_by=["run_date"])
        s.rows(rows=tables.last_commit(spark, target).rows("numOutputRows"))
    with step(log, f"publish write {CAMPAIGN_RUNS}") as s:
        runs = campaign_runs(spark, manifest, sizes, manifest_file)
        tables.replace_where(runs, path(config, CAMPAIGN_RUNS), where)
        s.rows(rows=len(due))
    with step(log, f"publish merge {CONTACT_HISTORY}") as s:
        commit = record_contacts(spark, path(config, CONTACT_HISTORY), audiences, run_date, ids)
        merged = commit.operation == "MERGE"
        s.rows(
            inserted=commit.rows("numTargetRowsInserted" if merged else "numOutputRows"),
            deleted=commit.rows("numTargetRowsDeleted"),
        )
    with step(log, "publish exports") as s:
        staged = exports.stage(spark, config, audiences, ids, run_date, staging)
        exports.swap_into_place(spark, staged, staging)
        s.rows(files=len(staged) * len(exports.FORMATS))
    log.info("publish manifest: %s", manifest_file)


def quoted(values: Sequence[str]) -> str:
    """Campaign ids for a SQL IN list (ids are validated to [a-z0-9_-])."""
    return ", ".join(f"'{v}'" for v in values)


def group_sizes(audiences: DataFrame) -> dict[tuple[str, str], int]:
    """(campaign_id, treatment|control|excluded) -> customers. Bounded: campaigns x 3 rows."""
    rows = (
        audiences.groupBy("campaign_id", F.coalesce(F.col("group"), F.lit("excluded")).alias("g"))
        .count()
        .collect()  # bounded: campaigns x groups
    )
    return {(r["campaign_id"], r["g"]): int(r["count"]) for r in rows}


def campaign_runs(
    spark: SparkSession, manifest: Manifest, sizes: dict[tuple[str, str], int], manifest_file: str
) -> DataFrame:
    """One row per campaign of the run: its window, costs and group sizes (what measure reads)."""
    rows = [
        (
            c.id,
            manifest.run_id,
            manifest.day(),
            c.channel,
            date.fromisoformat(c.start_date),
            date.fromisoformat(c.end_date),
            c.cost_per_contact,
            c.holdout_share,
            c.budget,
            c.max_audience_size,
            sizes.get((c.id, policy.TREATMENT), 0),
            sizes.get((c.id, policy.CONTROL), 0),
            sizes.get((c.id, "excluded"), 0),
            manifest_file,
        )
        for c in manifest.campaigns
    ]
    return spark.createDataFrame(rows, CAMPAIGN_RUNS_SCHEMA)


def record_contacts(
    spark: SparkSession, target: str, audiences: DataFrame, run_date: date, ids: list[str]
) -> tables.Commit:
    """MERGEs the run's treatment rows into contact_history.

    Keyed by (customer, campaign, contact date): a rerun of the day updates its rows instead of
    adding them again, and deletes the day's rows of these campaigns that the rerun no longer
    contacts (tables.upsert has no by-source delete, hence the MERGE here).
    """
    contacts = audiences.where(F.col("group") == policy.TREATMENT).select(
        "customer_id",
        "campaign_id",
        "channel",
        F.col("run_date").alias("contact_date"),
        "run_id",
    )
    if not tables.is_delta(spark, target):
        tables.append(contacts, target)
        return tables.last_commit(spark, target)
    keys = ("customer_id", "campaign_id", "contact_date")
    (
        DeltaTable.forPath(spark, target)
        .alias("t")
        .merge(contacts.alias("s"), " AND ".join(f"t.{k} = s.{k}" for k in keys))
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .whenNotMatchedBySourceDelete(
            f"t.contact_date = '{run_date.isoformat()}' AND t.campaign_id IN ({quoted(ids)})"
        )
        .execute()
    )
    return tables.last_commit(spark, target)


def suppression_folder(config: Config) -> str:
    return tables.landing(config, config.publish.suppression_folder)


def load_suppression(spark: SparkSession, config: Config) -> int:
    """Replaces activation/suppression with the CSV files now in the suppression folder.

    The folder is the list: deleting a line lifts that suppression. The Delta copy gives each
    run's manifest a version to rebuild from. An unknown channel fails the run: a typo must
    not silently stop suppressing anyone.
    """
    folder = suppression_folder(config)
    found = [f.path for f in files.list_files(spark, folder) if f.path.endswith(".csv")]
    if found:
        raw = (
            spark.read.schema(SUPPRESSION_CSV)
            .option("header", True)
            .option("enforceSchema", False)
            .option("mode", "FAILFAST")
            .csv(found)
        )
        blank = F.lit("")
        channel = F.lower(F.trim(F.col("channel")))
        file_name = F.col("_metadata.file_name")
        checked = (
            F.when(F.coalesce(channel, blank) == blank, F.lit(None))
            .when(channel.isin(*CHANNELS), channel)
            .otherwise(
                # Fails the write job, so nothing is committed: no extra pass to check.
                F.raise_error(
                    F.concat(
                        F.lit("suppression file "),
                        file_name,
                        F.lit(": channel '"),
                        channel,
                        F.lit(f"' is not one of {', '.join(CHANNELS)} (empty: every channel)"),
                    )
                )
            )
        )
        rows = raw.select(
            F.trim(F.col("customer_id")).alias("customer_id"),
            checked.cast("string").alias("channel"),
            F.col("reason"),
            file_name.alias("source_file"),
        ).where(F.col("customer_id").isNotNull() & (F.col("customer_id") != blank))
    else:
        rows = spark.createDataFrame([], SUPPRESSION_SCHEMA)
    target = path(config, SUPPRESSION)
    rows.write.format("delta").mode("overwrite").save(target)
    return tables.last_commit(spark, target).rows("numOutputRows")
