"""A publish run's manifest, and building audiences from one.

The manifest pins everything an audience depends on: the Delta version of every input table
(and which gold snapshot was read), the resolved campaign definitions, the contact policy and a
fingerprint of the holdout salt. A run builds its audiences from its manifest with
`build_audiences`, and `rebuild_audience` calls the same function with an old manifest, reading
the inputs by Delta time travel, so any past audience can be rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StructType,
)

from precision_marketing.config import Config, ConfigError, from_dict
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.publish import audience, policy
from precision_marketing.publish.campaigns import Campaign
from precision_marketing.schemas.activation import AUDIENCES
from precision_marketing.schemas.activation import CONTACT_HISTORY as CONTACT_HISTORY_SCHEMA
from precision_marketing.schemas.activation import SUPPRESSION as SUPPRESSION_SCHEMA
from precision_marketing.schemas.gold import PROPENSITY_READ, RECOMMENDATIONS_READ, SEGMENTS_READ
from precision_marketing.schemas.project import conform

CONTACT_HISTORY = "contact_history"
SUPPRESSION = "suppression"


@dataclass(frozen=True)
class Source:
    layer: Layer
    name: str
    snapshot: bool  # a gold table with as_of_date: the latest snapshot on or before the run
    required: bool
    empty_schema: StructType | None = None  # how an optional table reads without rows
    # The campaign criterion that reads it (an optional gold table); it matches nobody without.
    criterion: str | None = None


SOURCES: dict[str, Source] = {
    f"{s.layer.value}/{s.name}": s
    for s in (
        Source(Layer.GOLD, "user_features", snapshot=True, required=True),
        # A shop without events has no segments when features are too few, a catalog of views
        # has no propensity: campaigns that do not select on them still publish.
        Source(Layer.GOLD, "segments", True, False, SEGMENTS_READ, "segments"),
        Source(
            Layer.GOLD,
            "recommendations",
            True,
            False,
            RECOMMENDATIONS_READ,
            "requires_recommendations",
        ),
        Source(Layer.GOLD, "propensity", True, False, PROPENSITY_READ, "propensity_deciles"),
        Source(Layer.SILVER, "customers", snapshot=False, required=True),
        Source(Layer.SILVER, "items", snapshot=False, required=True),
        Source(Layer.ACTIVATION, CONTACT_HISTORY, False, False, CONTACT_HISTORY_SCHEMA),
        Source(Layer.ACTIVATION, SUPPRESSION, False, False, SUPPRESSION_SCHEMA),
    )
}


@dataclass(frozen=True)
class InputPin:
    # None: the (optional) table did not exist yet, or had no snapshot: it reads as empty
    version: int | None
    as_of_date: str | None = None  # the gold snapshot read


@dataclass(frozen=True)
class Manifest:
    run_id: str
    run_date: str
    created_at: str
    campaigns_file: str
    inputs: dict[str, InputPin]
    campaigns: list[Campaign]  # resolved: absolute dates
    max_contacts: int
    window_days: int
    channel_consent: dict[str, list[str]]
    salt_fingerprint: str

    def day(self) -> date:
        return date.fromisoformat(self.run_date)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        return from_dict(Manifest, json.loads(text))


def salt_fingerprint(salt: str) -> str:
    """Tells whether a rebuild uses the run's salt, without writing the salt down."""
    return hashlib.sha256(f"pm-holdout-salt:{salt}".encode()).hexdigest()[:16]


def manifest_path(config: Config, run_id: str) -> str:
    return f"{tables.table_path(config, Layer.ACTIVATION, 'manifests')}/{run_id}.json"


def read_manifest(spark: SparkSession, path: str) -> Manifest:
    row = spark.read.text(path, wholetext=True).first()
    assert row is not None, path
    return Manifest.from_json(row[0])


def pin_inputs(spark: SparkSession, config: Config, run_date: date) -> dict[str, InputPin]:
    """The current version of every input, and each gold table's latest snapshot <= run date.

    An optional gold table without such a snapshot is pinned as absent (it reads as empty).
    """
    versions = {}
    for key, source in SOURCES.items():
        path = tables.table_path(config, source.layer, source.name)
        versions[key] = tables.version(spark, path)
        if versions[key] is None and source.required:
            raise RuntimeError(f"no {key} table at {path}: run the stage that writes it first")
    snapshots = [k for k, s in SOURCES.items() if s.snapshot and versions[k] is not None]
    latest_per_table = [
        read_pinned(spark, config, key, InputPin(versions[key]))
        .where(F.col("as_of_date") <= F.lit(run_date))
        .agg(F.max("as_of_date").alias("as_of_date"))
        .select(F.lit(key).alias("table"), "as_of_date")
        for key in snapshots
    ]
    # One Spark job for all tables; bounded: one row per gold table.
    latest = {
        r["table"]: r["as_of_date"]
        for r in reduce(DataFrame.unionByName, latest_per_table).collect()  # per input table
    }
    pins = {key: InputPin(versions[key]) for key in SOURCES}
    for key in snapshots:
        if latest[key] is not None:
            pins[key] = InputPin(versions[key], latest[key].isoformat())
        elif SOURCES[key].required:
            raise RuntimeError(f"{key} has no snapshot on or before {run_date}")
        else:
            pins[key] = InputPin(None)
    return pins


def unusable_criteria(manifest: Manifest) -> list[str]:
    """'<campaign>: <criterion> (no <table> snapshot)' for each criterion that matches nobody."""
    absent = {
        s.criterion: key
        for key, s in SOURCES.items()
        if s.criterion is not None and manifest.inputs[key].version is None
    }
    found = []
    for campaign in manifest.campaigns:
        rule = campaign.audience
        used = {
            "segments": rule.segments is not None,
            "propensity_deciles": rule.propensity_deciles is not None,
            "requires_recommendations": rule.requires_recommendations,
        }
        found += [
            f"{campaign.id}: {criterion} (no {key} snapshot on or before {manifest.run_date})"
            for criterion, key in absent.items()
            if used[criterion]
        ]
    return found


def read_pinned(spark: SparkSession, config: Config, key: str, pin: InputPin) -> DataFrame:
    source = SOURCES[key]
    if pin.version is None:
        assert source.empty_schema is not None, key
        return spark.createDataFrame([], source.empty_schema)
    df = tables.read(spark, tables.table_path(config, source.layer, source.name), pin.version)
    if pin.as_of_date is not None:
        df = df.where(F.col("as_of_date") == F.lit(date.fromisoformat(pin.as_of_date)))
    return df


def build_audiences(spark: SparkSession, config: Config, manifest: Manifest) -> DataFrame:
    """Every matched customer of every campaign of the run, with group or excluded reason.

    Campaigns are decided in file order: a customer contacted by an earlier campaign of the
    same run counts toward the frequency cap of the later ones. Contacts the run date already
    has from these campaigns (an earlier run of the same day, being replaced) do not count.
    Each campaign's result is checkpointed: later campaigns read it, and a plan that nested
    every earlier campaign would grow exponentially with their number.
    """
    run_date = manifest.day()

    def pinned(key: str) -> DataFrame:
        return read_pinned(spark, config, key, manifest.inputs[key])

    contact_policy = policy.ContactPolicy(
        manifest.channel_consent,
        manifest.max_contacts,
        manifest.window_days,
        config.publish.salt(),
    )
    ids = [c.id for c in manifest.campaigns]
    history = pinned(f"activation/{CONTACT_HISTORY}").where(
        ~((F.col("contact_date") == F.lit(run_date)) & F.col("campaign_id").isin(ids))
    )
    base = audience.customer_base(
        pinned("gold/user_features"),
        pinned("gold/segments"),
        pinned("gold/propensity"),
        pinned("gold/recommendations"),
        pinned("silver/items"),
        pinned("silver/customers"),
        pinned(f"activation/{SUPPRESSION}"),
        policy.recent_contacts(history, run_date, manifest.window_days),
        audience.affinity_columns(manifest.campaigns),
    ).persist()
    try:
        decided: list[DataFrame] = []
        contacted: DataFrame | None = None  # customer_id of this run's treatment rows so far
        for campaign in manifest.campaigns:
            earlier = (
                None
                if contacted is None
                else contacted.groupBy("customer_id").agg(F.count(F.lit(1)).alias("contacts"))
            )
            selected = policy.apply_policy(
                base.where(audience.rule_condition(campaign.audience)),
                campaign,
                contact_policy,
                earlier,
            ).localCheckpoint()
            decided.append(_audience_rows(selected, campaign, manifest))
            treated = selected.where(F.col("group") == policy.TREATMENT).select("customer_id")
            contacted = treated if contacted is None else contacted.unionByName(treated)
    finally:
        base.unpersist()
    if not decided:
        raise ConfigError(f"manifest {manifest.run_id} has no campaigns")
    result = decided[0]
    for df in decided[1:]:
        result = result.unionByName(df)
    return result


def _audience_rows(selected: DataFrame, campaign: Campaign, manifest: Manifest) -> DataFrame:
    rows = selected.withColumns(
        {
            "run_id": F.lit(manifest.run_id),
            "run_date": F.lit(manifest.day()),
            "channel": F.lit(campaign.channel),
        }
    )
    return conform(rows, AUDIENCES)


def rebuild_audience(spark: SparkSession, config: Config, manifest: Manifest | str) -> DataFrame:
    """The audiences of a past run (a Manifest or its JSON path), from its inputs as they were.

    The holdout salt must be the one the run used (checked by fingerprint): a different salt
    would draw different control groups.
    """
    if isinstance(manifest, str):
        manifest = read_manifest(spark, manifest)
    if salt_fingerprint(config.publish.salt()) != manifest.salt_fingerprint:
        raise ConfigError(
            f"manifest {manifest.run_id} was built with another holdout salt "
            f"(${config.publish.holdout_salt_env} or publish.holdout_salt)"
        )
    return build_audiences(spark, config, manifest)


def new_manifest(
    config: Config,
    run_id: str,
    run_date: date,
    created_at: str,
    campaigns: list[Campaign],
    inputs: dict[str, InputPin],
) -> Manifest:
    publish = config.publish
    return Manifest(
        run_id=run_id,
        run_date=run_date.isoformat(),
        created_at=created_at,
        campaigns_file=str(config.campaigns_path()),
        inputs=inputs,
        campaigns=campaigns,
        max_contacts=publish.frequency_cap.max_contacts,
        window_days=publish.frequency_cap.window_days,
        channel_consent=publish.channel_consent,
        salt_fingerprint=salt_fingerprint(publish.salt()),
    )


def summary(manifest: Manifest) -> dict[str, Any]:
    """The pins as one log line's worth of data."""
    return {k: (p.version, p.as_of_date) for k, p in manifest.inputs.items()}
