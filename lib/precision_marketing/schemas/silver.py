"""Silver table schemas: the typed, deduplicated, pseudonymized tables silver writes.

Every field is nullable, as silver writes them: silver keeps what validation let through, and
the quarantine rules, not the schema, decide which nulls are rows to stop.
"""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _fields(*fields: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in fields])


EVENTS = _fields(
    ("event_id", StringType()),
    ("device_id", StringType()),
    ("customer_id", StringType()),
    ("session_id", StringType()),
    ("event_type", StringType()),
    ("item_id", StringType()),
    ("category", StringType()),
    ("price", DoubleType()),
    ("search_query", StringType()),
    ("event_ts", TimestampType()),
    ("event_date", DateType()),
    ("platform", StringType()),
    ("utm_source", StringType()),
    ("utm_medium", StringType()),
    ("utm_campaign", StringType()),
    ("source_batch_no", LongType()),
)
_CRM = (
    ("customer_id", StringType()),
    ("email_hash", StringType()),
    ("phone_hash", StringType()),
    ("age_band", StringType()),  # on the day silver ran
    ("gender", StringType()),
    ("region", StringType()),
    ("signup_date", DateType()),
    ("loyalty_tier", StringType()),
    ("consent_email", BooleanType()),
    ("consent_sms", BooleanType()),
    ("consent_push", BooleanType()),
    ("updated_at", TimestampType()),
)
CUSTOMERS = _fields(*_CRM)
# Every CRM version, with the birth year (the most of a birth date silver keeps), so a past
# snapshot can tell the age band on its own date.
CUSTOMER_HISTORY = _fields(*_CRM, ("birth_year", IntegerType()))
ORDER_LINES = _fields(
    ("order_id", StringType()),
    ("line_no", IntegerType()),
    ("customer_id", StringType()),
    ("item_id", StringType()),
    ("quantity", IntegerType()),
    # Sums of refunded quantities: long, as silver computes them.
    ("refunded_quantity", LongType()),
    ("net_quantity", LongType()),
    ("unit_price", DoubleType()),
    ("discount", DoubleType()),
    ("gross_amount", DoubleType()),
    ("net_amount", DoubleType()),
    ("currency", StringType()),
    ("original_currency", StringType()),
    ("original_unit_price", DoubleType()),
    ("order_ts", TimestampType()),
    ("order_date", DateType()),
    ("refunded_at", TimestampType()),
    ("channel", StringType()),
    ("store_id", StringType()),
    ("status", StringType()),
)
ITEMS = _fields(
    ("item_id", StringType()),
    ("title", StringType()),
    ("category", StringType()),
    ("brand", StringType()),
    ("price", DoubleType()),
    ("active", BooleanType()),
    ("updated_at", TimestampType()),
)

TABLES = {
    "events": EVENTS,
    "customers": CUSTOMERS,
    "customer_history": CUSTOMER_HISTORY,
    "order_lines": ORDER_LINES,
    "items": ITEMS,
}
