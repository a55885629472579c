"""Activation table schemas: what publish writes under <warehouse>/activation/, and the
columns measure and the response simulator read of them before publish has run."""

from __future__ import annotations

from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from precision_marketing.schemas.project import project

REC_SLOTS = 3  # recommended items carried per audience row (rec_item_1..3, rec_title_1..3)

AUDIENCES = StructType(
    [
        StructField("campaign_id", StringType(), True),
        StructField("run_id", StringType(), True),
        StructField("run_date", DateType(), True),
        StructField("customer_id", StringType(), True),
        StructField("channel", StringType(), True),
        StructField("group", StringType(), True),  # treatment | control | excluded
        StructField("excluded_reason", StringType(), True),
        *(StructField(f"rec_item_{n}", StringType(), True) for n in range(1, REC_SLOTS + 1)),
        *(StructField(f"rec_title_{n}", StringType(), True) for n in range(1, REC_SLOTS + 1)),
        StructField("segment_id", IntegerType(), True),
        StructField("segment_name", StringType(), True),
        StructField("rfm_segment", StringType(), True),
        StructField("propensity_decile", IntegerType(), True),
        StructField("expected_value", DoubleType(), True),
        StructField("contact_cost", DoubleType(), True),
    ]
)

CAMPAIGN_RUNS = StructType(
    [
        StructField("campaign_id", StringType(), False),
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("channel", StringType(), False),
        StructField("start_date", DateType(), False),
        StructField("end_date", DateType(), False),
        StructField("cost_per_contact", DoubleType(), False),
        StructField("holdout_share", DoubleType(), False),
        StructField("budget", DoubleType(), True),
        StructField("max_audience_size", IntegerType(), True),
        StructField("treatment_size", LongType(), False),
        StructField("control_size", LongType(), False),
        StructField("excluded_size", LongType(), False),
        StructField("manifest_path", StringType(), False),
    ]
)

CONTACT_HISTORY = StructType(
    [
        StructField("customer_id", StringType(), False),
        StructField("campaign_id", StringType(), False),
        StructField("channel", StringType(), False),
        StructField("contact_date", DateType(), False),
        StructField("run_id", StringType(), False),
    ]
)

SUPPRESSION = StructType(
    [
        StructField("customer_id", StringType(), False),
        StructField("channel", StringType(), True),  # null: every channel
        StructField("reason", StringType(), True),
        StructField("source_file", StringType(), True),
    ]
)

# What measure and the response simulator read of audiences and campaign runs.
AUDIENCES_READ = project(
    AUDIENCES, "campaign_id", "run_id", "customer_id", "group", "segment_name", "propensity_decile"
)
CAMPAIGN_RUNS_READ = project(
    CAMPAIGN_RUNS,
    "campaign_id",
    "run_id",
    "run_date",
    "channel",
    "start_date",
    "end_date",
    "cost_per_contact",
)

TABLES = {
    "audiences": AUDIENCES,
    "campaign_runs": CAMPAIGN_RUNS,
    "contact_history": CONTACT_HISTORY,
    "suppression": SUPPRESSION,
}
