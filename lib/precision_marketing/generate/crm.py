"""CRM exports: each customer's rows across the exports, with loyalty points."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import Draw, day_text, lookup, padded, time_text
from precision_marketing.generate.model import GenParams


def crm_rows(customers: DataFrame, p: GenParams) -> DataFrame:
    """Clean CRM rows: each customer's first appearance and, for some, one later change.

    Columns: the contract's, then `export` ('01'..) and `_first` (the customer's first row).
    """
    first = F.struct(
        F.col("first_export").alias("export"),
        F.col("tier0").alias("tier"),
        F.col("consent_email0").alias("consent_email"),
        F.col("consent_sms0").alias("consent_sms"),
        F.col("consent_push0").alias("consent_push"),
        F.col("region0").alias("region"),
        F.col("city0").alias("city"),
        F.col("updated0_ms").alias("updated_ms"),
        F.col("offset0_min").alias("offset_min"),
        F.lit(True).alias("first"),
    )
    change = F.when(
        F.col("change_export") > 0,
        F.struct(
            F.col("change_export").alias("export"),
            F.col("tier1").alias("tier"),
            F.col("consent_email1").alias("consent_email"),
            F.col("consent_sms1").alias("consent_sms"),
            F.col("consent_push1").alias("consent_push"),
            F.col("region").alias("region"),
            F.col("city1").alias("city"),
            F.col("updated1_ms").alias("updated_ms"),
            F.col("offset_min").alias("offset_min"),
            F.lit(False).alias("first"),
        ),
    )
    rows = customers.withColumn("_s", F.explode(F.array(first, change))).where(
        F.col("_s").isNotNull()
    )
    return render_crm(rows)


def render_crm(rows: DataFrame, keep: Sequence[str] = ()) -> DataFrame:
    """Contract columns from a customer frame with a state struct `_s`; plus export, _first."""
    s = F.col("_s")
    return rows.select(
        F.col("customer_id"),
        F.col("email"),
        F.col("phone"),
        F.col("first_name"),
        F.col("last_name"),
        day_text(F.col("birth_day")).alias("birth_date"),
        lookup(contracts.GENDERS, F.col("gender_i")).alias("gender"),
        s["city"].alias("city"),
        lookup([r.name for r in m.REGIONS], s["region"]).alias("region"),
        day_text(F.col("signup_day")).alias("signup_date"),
        lookup(contracts.LOYALTY_TIERS, s["tier"]).alias("loyalty_tier"),
        s["consent_email"].alias("consent_email"),
        s["consent_sms"].alias("consent_sms"),
        s["consent_push"].alias("consent_push"),
        time_text(s["updated_ms"], s["offset_min"]).alias("updated_at"),
        padded(s["export"], 2).alias("export"),
        s["first"].alias("_first"),
        *keep,
    )


def with_loyalty_points(crm: DataFrame, p: GenParams) -> DataFrame:
    """The extra trailing column of one export file (a file-level defect; its rows are clean)."""
    d = Draw(p.seed)
    points = d.index(
        "loyalty_points", m.LOYALTY_POINTS_MAX, F.col("customer_id"), F.col("updated_at")
    )
    return crm.withColumn(m.EXTRA_CRM_COLUMN, points)
