"""Gold table schemas: what the model and measurement stages write under <warehouse>/gold/.

gold/user_features has no fixed schema here: its affinity columns follow the categories the
features stage chose (features.categories), so it is described by features.transforms.
The *_READ schemas are the columns a reader needs of a gold table that may not exist yet.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from precision_marketing.schemas.project import project

SEGMENTS = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("segment_id", IntegerType(), True),
        StructField("segment_name", StringType(), True),
        StructField("distance", DoubleType(), True),
        StructField("model_version", StringType(), True),
        StructField("as_of_date", DateType(), True),
    ]
)
RECOMMENDATIONS = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("rank", IntegerType(), True),
        StructField("item_id", StringType(), True),
        StructField("score", DoubleType(), True),
        StructField("source", StringType(), True),
        StructField("model_version", StringType(), True),
        StructField("as_of_date", DateType(), True),
    ]
)

PROPENSITY = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("as_of_date", DateType(), True),
        StructField("probability", DoubleType(), True),
        StructField("decile", IntegerType(), True),
        StructField("predicted_spend", DoubleType(), True),
        StructField("expected_value", DoubleType(), True),
        StructField("churn_risk", DoubleType(), True),
        StructField("model_version", StringType(), True),
    ]
)

SEGMENT_PROFILES = StructType(
    [
        StructField("as_of_date", DateType(), False),
        StructField("model_version", StringType(), False),
        StructField("segment_id", IntegerType(), False),
        StructField("segment_name", StringType(), False),
        StructField("description", StringType(), False),
        StructField("size", LongType(), False),
        StructField("share", DoubleType(), False),
        StructField("feature_means", MapType(StringType(), DoubleType(), True), False),
        StructField("feature_medians", MapType(StringType(), DoubleType(), True), False),
        StructField(
            "distinguishing_features",
            ArrayType(
                StructType(
                    [
                        StructField("feature", StringType(), False),
                        StructField("z", DoubleType(), False),
                    ]
                ),
                False,
            ),
            False,
        ),
    ]
)

SEGMENT_MIGRATIONS = StructType(
    [
        StructField("as_of_date", DateType(), True),
        StructField("model_version", StringType(), True),
        StructField("previous_as_of_date", DateType(), True),
        StructField("previous_model_version", StringType(), True),
        StructField("from_segment_id", IntegerType(), True),
        StructField("to_segment_id", IntegerType(), True),
        StructField("customers", LongType(), True),
    ]
)

SIMILAR_ITEMS = StructType(
    [
        StructField("item_id", StringType(), True),
        StructField("rank", IntegerType(), True),
        StructField("similar_item_id", StringType(), True),
        StructField("score", DoubleType(), True),
        StructField("source", StringType(), True),  # als | content
        StructField("model_version", StringType(), True),
        StructField("as_of_date", DateType(), True),
    ]
)

ASSOCIATION_RULES = StructType(
    [
        StructField("antecedent", ArrayType(StringType(), True), True),
        StructField("consequent", StringType(), True),
        StructField("support", DoubleType(), True),
        StructField("confidence", DoubleType(), True),
        StructField("lift", DoubleType(), True),
        StructField("as_of_date", DateType(), True),
    ]
)

# The model registry's retraining reads the latest `status` per `model`: keep these names.
MODEL_MONITORING = StructType(
    [
        StructField("as_of_date", DateType(), False),  # the monitor run date
        StructField("model", StringType(), False),  # segment | recommend | propensity
        StructField("model_version", StringType(), True),
        StructField("scored_as_of", DateType(), True),  # the scoring (or snapshot) judged
        StructField("metric", StringType(), False),
        StructField("feature", StringType(), True),  # drift rows: the model input
        StructField("value", DoubleType(), True),
        StructField("threshold", DoubleType(), True),
        StructField("status", StringType(), False),  # ok | warn | refit
        StructField("run_id", StringType(), False),
    ]
)

CAMPAIGN_RESULTS = StructType(
    [
        StructField("as_of_date", DateType(), True),
        StructField("campaign_id", StringType(), True),
        StructField("channel", StringType(), True),
        StructField("start_date", DateType(), True),
        StructField("end_date", DateType(), True),
        StructField("publish_runs", LongType(), True),
        StructField("breakdown", StringType(), True),
        StructField("breakdown_value", StringType(), True),
        StructField("treatment_customers", LongType(), True),
        StructField("control_customers", LongType(), True),
        StructField("treatment_conversions", LongType(), True),
        StructField("control_conversions", LongType(), True),
        StructField("treatment_conversion_rate", DoubleType(), True),
        StructField("control_conversion_rate", DoubleType(), True),
        StructField("treatment_revenue", DoubleType(), True),
        StructField("control_revenue", DoubleType(), True),
        StructField("treatment_revenue_per_customer", DoubleType(), True),
        StructField("control_revenue_per_customer", DoubleType(), True),
        StructField("conversion_uplift", DoubleType(), True),
        StructField("conversion_uplift_ci_low", DoubleType(), True),
        StructField("conversion_uplift_ci_high", DoubleType(), True),
        StructField("conversion_z", DoubleType(), True),
        StructField("conversion_p_value", DoubleType(), True),
        StructField("relative_uplift", DoubleType(), True),
        StructField("relative_uplift_ci_low", DoubleType(), True),
        StructField("relative_uplift_ci_high", DoubleType(), True),
        StructField("revenue_uplift_per_customer", DoubleType(), True),
        StructField("revenue_uplift_ci_low", DoubleType(), True),
        StructField("revenue_uplift_ci_high", DoubleType(), True),
        StructField("revenue_t", DoubleType(), True),
        StructField("revenue_df", DoubleType(), True),
        StructField("revenue_p_value", DoubleType(), True),
        StructField("incremental_conversions", DoubleType(), True),
        StructField("incremental_revenue", DoubleType(), True),
        StructField("treatment_contacts", LongType(), True),
        StructField("cost_per_contact", DoubleType(), True),
        StructField("campaign_cost", DoubleType(), True),
        StructField("gross_margin", DoubleType(), True),
        StructField("roi", DoubleType(), True),
        StructField("measure_run_id", StringType(), True),
    ]
)

# What publish (audience.customer_base) reads of the optional gold tables, when one has no
# snapshot yet.
# Spend sums: Spark's type for a sum of sums of exact cents (definitions.MONEY).
DAILY_MONEY = DecimalType(38, 2)
# gold/customer_daily: one row per customer and order day (the day of the order's first line)
# with the additive measures of the placed orders of that day, as known at the table's
# known_at (features.daily); the order features of user_features are sums over it.
CUSTOMER_DAILY = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("order_date", DateType(), True),
        StructField("orders", LongType(), True),
        StructField("spend", DAILY_MONEY, True),
        StructField("lines", LongType(), True),
        StructField("units", LongType(), True),
        StructField("refunded_units", LongType(), True),
        StructField("discounted_orders", LongType(), True),
        StructField("first_order_ts", TimestampType(), True),
        StructField("last_order_ts", TimestampType(), True),
        # Spend per catalog category (lines without one are left out).
        StructField("category_spend", MapType(StringType(), DAILY_MONEY), True),
    ]
)

SEGMENTS_READ = project(SEGMENTS, "customer_id", "segment_id", "segment_name")
RECOMMENDATIONS_READ = project(RECOMMENDATIONS, "customer_id", "item_id", "rank")
PROPENSITY_READ = project(PROPENSITY, "customer_id", "decile", "expected_value")

# Every gold table but user_features (its columns follow the chosen categories) and the
# recommend id maps (recommend.job.id_map_schema).
TABLES = {
    "segments": SEGMENTS,
    "segment_profiles": SEGMENT_PROFILES,
    "segment_migrations": SEGMENT_MIGRATIONS,
    "recommendations": RECOMMENDATIONS,
    "similar_items": SIMILAR_ITEMS,
    "rules": ASSOCIATION_RULES,
    "propensity": PROPENSITY,
    "campaign_results": CAMPAIGN_RESULTS,
    "model_monitoring": MODEL_MONITORING,
    "customer_daily": CUSTOMER_DAILY,
}
