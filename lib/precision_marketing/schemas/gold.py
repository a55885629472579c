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

CAMPAIGN_RESULTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("as_of_date", "date"),
    ("campaign_id", "string"),
    ("channel", "string"),
    ("start_date", "date"),
    ("end_date", "date"),
    ("publish_runs", "long"),
    ("breakdown", "string"),
    ("breakdown_value", "string"),
    ("treatment_customers", "long"),
    ("control_customers", "long"),
    ("treatment_conversions", "long"),
    ("control_conversions", "long"),
    ("treatment_conversion_rate", "double"),
    ("control_conversion_rate", "double"),
    ("treatment_revenue", "double"),
    ("control_revenue", "double"),
    ("treatment_revenue_per_customer", "double"),
    ("control_revenue_per_customer", "double"),
    ("conversion_uplift", "double"),
    ("conversion_uplift_ci_low", "double"),
    ("conversion_uplift_ci_high", "double"),
    ("conversion_z", "double"),
    ("conversion_p_value", "double"),
    ("relative_uplift", "double"),
    ("relative_uplift_ci_low", "double"),
    ("relative_uplift_ci_high", "double"),
    ("revenue_uplift_per_customer", "double"),
    ("revenue_uplift_ci_low", "double"),
    ("revenue_uplift_ci_high", "double"),
    ("revenue_t", "double"),
    ("revenue_df", "double"),
    ("revenue_p_value", "double"),
    ("incremental_conversions", "double"),
    ("incremental_revenue", "double"),
    ("treatment_contacts", "long"),
    ("cost_per_contact", "double"),
    ("campaign_cost", "double"),
    ("gross_margin", "double"),
    ("roi", "double"),
    ("measure_run_id", "string"),
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
