"""Ops table schemas: the run records every stage appends under <warehouse>/ops/."""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

PROPENSITY_METRICS = (
    "as_of_date date, model_version string, validation_as_of_date date, model string, "
    "metric string, decile int, value double"
)

RECOMMEND_METRICS = (
    "as_of_date date, model_version string, model string, rank int, reg_param double, "
    "alpha double, chosen boolean, k int, metric string, value double"
)

INGEST_LEDGER = StructType(
    [
        StructField("source", StringType(), False),
        StructField("batch_no", LongType(), False),
        StructField("file_path", StringType(), False),
        StructField("file_size", LongType(), False),
        StructField("file_modified_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
        StructField("planned_at", TimestampType(), False),
    ]
)

VALIDATION_RESULTS = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("validated_at", TimestampType(), False),
        StructField("table", StringType(), False),
        StructField("batch_from", LongType(), False),
        StructField("batch_to", LongType(), False),
        StructField("rule", StringType(), False),
        StructField("expectation", StringType(), False),
        StructField("severity", StringType(), False),
        StructField("success", BooleanType(), False),
        StructField("element_count", LongType(), True),
        StructField("unexpected_count", LongType(), True),
        StructField("unexpected_percent", DoubleType(), True),
        StructField("observed_value", StringType(), True),
        StructField("sample", StringType(), True),
        StructField("rows_broken", LongType(), True),
        StructField("error", StringType(), True),
        StructField("table_status", StringType(), False),
    ]
)

WATERMARKS = StructType(
    [
        StructField("stage", StringType(), False),
        StructField("table", StringType(), False),
        StructField("batch_no", LongType(), False),
        StructField("run_id", StringType(), False),
        StructField("updated_at", TimestampType(), False),
    ]
)

PIPELINE_RUNS = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("pipeline_run_id", StringType(), False),
        StructField("step_no", IntegerType(), False),
        StructField("step", StringType(), False),
        StructField("status", StringType(), False),
        StructField("started_at", TimestampType(), False),
        StructField("finished_at", TimestampType(), False),
        StructField("seconds", DoubleType(), False),
        StructField("error", StringType(), True),
    ]
)
