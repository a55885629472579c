"""The raw data contract: what each landing source holds (docs/data-contract.md explains it).

Bronze keeps these columns as they arrived (timestamps and dates as text, so an unparseable value
is kept and quarantined rather than silently turned into null at read time); typing happens in
`precision_marketing.conform`, shared by validation and silver.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)


def nullable_schema(*fields: tuple[str, DataType]) -> StructType:
    """Every field nullable: the readers' contracts never reject a row by schema alone."""
    return StructType([StructField(name, dtype, True) for name, dtype in fields])


EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "campaign_click",
    "email_open",
)
PLATFORMS = ("web", "ios", "android")
ORDER_STATUSES = ("completed", "refunded", "cancelled")
LOYALTY_TIERS = ("none", "silver", "gold", "platinum")
GENDERS = ("F", "M", "X")
# Event types only a known customer can cause (checkouts and newsletter opens; carts may be
# anonymous): without customer_id such an event is quarantined (conf/expectations/events.yaml,
# rule identified_event_has_customer, which lists the same types).
IDENTIFIED_EVENT_TYPES = ("purchase", "email_open")
CURRENCIES = ("EUR",)  # the synthetic world's; accepted currencies are config (`currency`)
SALES_CHANNELS = ("web", "app", "store")
CONSENT_CHANNELS = ("email", "sms", "push")

EVENTS = nullable_schema(
    ("event_id", StringType()),
    ("device_id", StringType()),
    ("customer_id", StringType()),
    ("session_id", StringType()),
    ("event_type", StringType()),
    ("item_id", StringType()),
    ("category", StringType()),
    ("price", DoubleType()),
    ("search_query", StringType()),
    ("event_time", StringType()),
    ("platform", StringType()),
    ("utm_source", StringType()),
    ("utm_medium", StringType()),
    ("utm_campaign", StringType()),
)

CRM = nullable_schema(
    ("customer_id", StringType()),
    ("email", StringType()),
    ("phone", StringType()),
    ("first_name", StringType()),
    ("last_name", StringType()),
    ("birth_date", StringType()),
    ("gender", StringType()),
    ("city", StringType()),
    ("region", StringType()),
    ("signup_date", StringType()),
    ("loyalty_tier", StringType()),
    ("consent_email", BooleanType()),
    ("consent_sms", BooleanType()),
    ("consent_push", BooleanType()),
    ("updated_at", StringType()),
)

TRANSACTIONS = nullable_schema(
    ("order_id", StringType()),
    ("line_no", IntegerType()),
    ("customer_id", StringType()),
    ("item_id", StringType()),
    ("quantity", IntegerType()),
    ("unit_price", DoubleType()),
    ("discount", DoubleType()),
    ("currency", StringType()),
    ("order_time", StringType()),
    ("channel", StringType()),
    ("store_id", StringType()),
    ("status", StringType()),
)

CATALOG = nullable_schema(
    ("item_id", StringType()),
    ("title", StringType()),
    ("category", StringType()),
    ("brand", StringType()),
    ("price", DoubleType()),
    ("active", BooleanType()),
    ("updated_at", StringType()),
)


# Longest text a contract field may hold (characters): keys and codes are short; free text
# (search queries, titles, emails) has more room. A longer value is an invalid field, like one
# that does not parse (ingest lists it in `_invalid_fields`; rule field_types_valid).
KEY_MAX_LENGTH = 128
TEXT_MAX_LENGTH = 1000
TEXT_FIELDS = frozenset({"search_query", "title", "email", "utm_campaign", "city"})


def max_length(field_name: str) -> int:
    """The contract's length limit of a text field (one definition, used by ingest)."""
    return TEXT_MAX_LENGTH if field_name in TEXT_FIELDS else KEY_MAX_LENGTH


@dataclass(frozen=True)
class Source:
    """One landing source: its default folder and format (the synthetic world's layout, which
    conf/sources.yaml can remap), raw schema, and which fields hold times and dates."""

    name: str
    folder: str
    fmt: str  # "jsonl", "csv" or "parquet"
    schema: StructType
    time_fields: tuple[str, ...] = ()  # ISO-8601 with offset in bronze
    date_fields: tuple[str, ...] = ()  # yyyy-MM-dd in bronze
    silver_tables: tuple[str, ...] = ()  # what stays empty when this source has no rows


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("events", "events", "jsonl", EVENTS, ("event_time",), (), ("events",)),
        Source(
            "crm",
            "crm",
            "csv",
            CRM,
            ("updated_at",),
            ("birth_date", "signup_date"),
            ("customers", "customer_history"),
        ),
        Source(
            "transactions",
            "transactions",
            "csv",
            TRANSACTIONS,
            ("order_time",),
            (),
            ("order_lines",),
        ),
        Source("catalog", "catalog", "csv", CATALOG, ("updated_at",), (), ("items",)),
    )
}
