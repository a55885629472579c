"""Validated bronze rows -> silver rows: typed, deduplicated, current-state, netted, pseudonymized.

Raw PII stops here: emails and phones become salted SHA-256 pseudonyms of their normalized form,
birth dates become a birth year and the age band at the run date, names and city are dropped.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

AGE_BANDS = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))


def pseudonym(value: Column, salt: str) -> Column:
    """Salted SHA-256 hex of a normalized value; null stays null."""
    return F.when(value.isNotNull() & (value != ""), F.sha2(F.concat(F.lit(salt), value), 256))


def normalize_email(email: Column) -> Column:
    return F.lower(F.trim(email))


def normalize_phone(phone: Column) -> Column:
    """Digits only, keeping a leading +, so '+49 (30) 1234' and '+49301234' match."""
    return F.regexp_replace(F.trim(phone), r"(?!^\+)[^0-9]", "")


def age_band(birth_date: Column, as_of: date) -> Column:
    """The band of the age reached on `as_of` by someone born on `birth_date`."""
    years = F.floor(F.months_between(F.lit(as_of), birth_date) / 12)
    band = F.when(birth_date.isNull(), F.lit(None).cast("string"))
    for upper, label in AGE_BANDS:
        band = band.when(years < upper, F.lit(label))
    return band.otherwise(F.lit("65+"))


def birth_year(birth_date: Column) -> Column:
    """The year of a birth date: the most of it silver keeps (raw birth dates stop at bronze),
    and enough to tell the age band at any later date (`age_band_from_year`)."""
    return F.year(birth_date)


def age_band_from_year(year: Column, as_of: date) -> Column:
    """The age band on `as_of` of someone born in `year`, taking the birthday as 1 July: the
    age is then off by at most half a year either way, not always by up to a year one way."""
    return age_band(F.make_date(year, F.lit(7), F.lit(1)), as_of)


def latest_per_key(df: DataFrame, keys: list[str], order: list[Column]) -> DataFrame:
    """The first row per key by `order` (newest first, ties broken by the caller's order)."""
    window = Window.partitionBy(*keys).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def silver_events(typed: DataFrame) -> DataFrame:
    """One row per event_id: an event delivered twice keeps its first-ingested copy."""
    deduped = latest_per_key(typed, ["event_id"], [F.col("_batch_no"), F.col("_record_id")])
    return deduped.select(
        "event_id",
        "device_id",
        "customer_id",
        "session_id",
        "event_type",
        "item_id",
        "category",
        "price",
        "search_query",
        "event_ts",
        "event_date",
        "platform",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        F.col("_batch_no").alias("source_batch_no"),
    )


def silver_customers(typed: DataFrame, salt: str, as_of: date) -> DataFrame:
    """Current state per customer: the newest updated_at wins."""
    latest = latest_per_key(
        typed, ["customer_id"], [F.col("updated_ts").desc(), F.col("_record_id").desc()]
    )
    return customer_attributes(latest, salt, as_of)


def silver_customer_history(typed: DataFrame, salt: str, as_of: date) -> DataFrame:
    """Every CRM version of a customer (one per updated_at), for point-in-time features, with
    the birth year, so a snapshot tells the age band at its own as_of, not at this run date."""
    versions = latest_per_key(
        typed, ["customer_id", "updated_ts"], [F.col("_batch_no").desc(), F.col("_record_id")]
    )
    return customer_attributes(
        versions, salt, as_of, birth_year(F.col("birth_dt")).alias("birth_year")
    )


def customer_attributes(typed: DataFrame, salt: str, as_of: date, *extra: Column) -> DataFrame:
    """The pseudonymized, coarse view of CRM rows that silver keeps (`extra` columns last)."""
    return typed.select(
        "customer_id",
        pseudonym(normalize_email(F.col("email")), salt).alias("email_hash"),
        pseudonym(normalize_phone(F.col("phone")), salt).alias("phone_hash"),
        age_band(F.col("birth_dt"), as_of).alias("age_band"),
        "gender",
        "region",
        F.col("signup_dt").alias("signup_date"),
        "loyalty_tier",
        "consent_email",
        "consent_sms",
        "consent_push",
        F.col("updated_ts").alias("updated_at"),
        *extra,
    )


def in_reporting_currency(typed: DataFrame, reporting: str, rates: dict[str, float]) -> DataFrame:
    """Order-line amounts converted to the reporting currency (config `currency`), the one place
    money is converted; the line's own currency and unit price are kept beside them.

    A line without a currency is taken to be in the reporting one. A currency that is neither
    the reporting one nor has a rate (rule currency_known let it through at severity warn) gets
    null amounts: it is left out of every sum rather than added as if it were the reporting one.
    """
    currency = F.col("currency")
    rate: Column = F.when(currency.isNull() | (currency == reporting), F.lit(1.0))
    for code, value in sorted(rates.items()):
        rate = rate.when(currency == code, F.lit(float(value)))

    def converted(amount: str) -> Column:
        return F.when(rate == 1.0, F.col(amount)).otherwise(F.round(F.col(amount) * rate, 4))

    return typed.withColumns(
        {
            "original_currency": currency,
            "original_unit_price": F.col("unit_price"),
            "unit_price": converted("unit_price"),
            "discount": converted("discount"),
            "currency": F.when(currency.isNotNull() & rate.isNotNull(), F.lit(reporting)),
        }
    )


def silver_order_lines(typed: DataFrame) -> DataFrame:
    """One row per (order_id, line_no), refunds netted against the original line.

    `typed` must hold every validated row of the keys being rebuilt (the sale and all its
    refunds), which makes the result the same however the rows were split across batches, with
    amounts already in the reporting currency (`in_reporting_currency`).
    A refund whose sale has not arrived yet yields no row until it does.
    """
    is_refund = F.col("status") == "refunded"
    refunds = (
        typed.where(is_refund)
        .groupBy("order_id", "line_no")
        .agg(
            F.sum("quantity").alias("refunded_quantity"),
            F.max("order_ts").alias("refunded_at"),
        )
    )
    sales = latest_per_key(
        typed.where(~is_refund), ["order_id", "line_no"], [F.col("order_ts"), F.col("_record_id")]
    )
    lines = sales.join(refunds, ["order_id", "line_no"], "left")
    refunded = F.least(F.coalesce(F.col("refunded_quantity"), F.lit(0)), F.col("quantity"))
    cancelled = F.col("status") == "cancelled"
    net_quantity = F.when(cancelled, F.lit(0)).otherwise(F.col("quantity") - refunded)
    gross = F.col("quantity") * F.col("unit_price") - F.coalesce(F.col("discount"), F.lit(0.0))
    status = (
        F.when(cancelled, F.lit("cancelled"))
        .when(refunded >= F.col("quantity"), F.lit("refunded"))
        .when(refunded > 0, F.lit("partially_refunded"))
        .otherwise(F.lit("completed"))
    )
    return lines.select(
        "order_id",
        "line_no",
        "customer_id",
        "item_id",
        "quantity",
        refunded.alias("refunded_quantity"),
        net_quantity.alias("net_quantity"),
        "unit_price",
        F.coalesce(F.col("discount"), F.lit(0.0)).alias("discount"),
        F.round(gross, 2).alias("gross_amount"),
        F.round(gross * net_quantity / F.col("quantity"), 2).alias("net_amount"),
        "currency",
        "original_currency",
        "original_unit_price",
        "order_ts",
        F.to_date("order_ts").alias("order_date"),
        "refunded_at",
        "channel",
        "store_id",
        status.alias("status"),
    )


def silver_items(typed: DataFrame) -> DataFrame:
    latest = latest_per_key(
        typed, ["item_id"], [F.col("updated_ts").desc(), F.col("_record_id").desc()]
    )
    return latest.select(
        "item_id",
        "title",
        "category",
        "brand",
        "price",
        "active",
        F.col("updated_ts").alias("updated_at"),
    )
