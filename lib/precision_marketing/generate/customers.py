"""Customers and anonymous visitors: one wide row per person that every source and the
planted truth derive from."""

from __future__ import annotations

import math
from itertools import accumulate

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.generate import model as m
from precision_marketing.generate.draws import (
    Draw,
    approx_poisson,
    array_of,
    by_archetype,
    lookup,
    padded,
    pick,
    pick_by_archetype,
    poisson,
    typed_null,
)
from precision_marketing.generate.items import N_CATEGORIES
from precision_marketing.generate.model import DAY_MS, GenParams


def customers(spark: SparkSession, p: GenParams, partitions: int | None = None) -> DataFrame:
    parts = partitions or max(spark.sparkContext.defaultParallelism, -(-p.customers // 25_000))
    ids = spark.range(0, p.customers, 1, parts).withColumnRenamed("id", "idx")
    return customer_attributes(ids, p)


def _region_cities() -> tuple[list[str], list[str]]:
    per_region = {len(r.cities) for r in m.REGIONS}
    assert per_region == {3}, "every region has 3 cities"
    return (
        [city for r in m.REGIONS for city, _ in r.cities],
        [code for r in m.REGIONS for _, code in r.cities],
    )


def customer_attributes(ids: DataFrame, p: GenParams) -> DataFrame:
    """Adds the customer's planted attributes to a frame with a long column `idx` (0-based).

    A pure function of (seed, run date, params, idx): any subset of customers gets exactly the
    attributes it has in the full population.
    """
    d = Draw(p.seed)
    idx = F.col("idx")
    arch = F.col("arch")
    n_regions = len(m.REGIONS)
    exports = p.export_days()
    n_exports = len(exports)
    export_end_ms = [(day + 1) * DAY_MS for day in exports]
    cities, phone_codes = _region_cities()

    df = ids.withColumns(
        {
            "key": idx,
            "customer_id": F.concat(F.lit("C"), padded(idx + 1, 8)),
            "arch": pick(d.u("archetype", idx), [a.share for a in m.ARCHETYPES]),
            "region0": pick(d.u("region", idx), [r.weight for r in m.REGIONS]),
            "gender_i": pick(d.u("gender", idx), m.GENDER_WEIGHTS),
        }
    )
    sig_l, sig_s, rho = m.PURCHASE_RATE_SIGMA, m.SESSION_RATE_SIGMA, m.SESSION_PURCHASE_CORRELATION
    z_l, z_s = d.z("lambda", idx), d.z("sessions", idx)
    recent_days = min(m.RECENT_SIGNUP_DAYS, p.days)
    df = df.withColumns(
        {
            "lam": by_archetype("purchase_rate", arch) * F.exp(z_l * sig_l - sig_l**2 / 2),
            "srate": by_archetype("session_rate", arch)
            * F.exp((z_l * rho + z_s * math.sqrt(1 - rho**2)) * sig_s - sig_s**2 / 2),
            "engagement": F.least(
                F.greatest(
                    by_archetype("email_engagement", arch)
                    + d.z("engagement", idx) * m.EMAIL_ENGAGEMENT_SD,
                    F.lit(0.02),
                ),
                F.lit(0.95),
            ),
            "recent": d.u("recent", idx) < by_archetype("recent_share", arch),
            "extra_lines": by_archetype("extra_lines", arch),
            "extra_units": by_archetype("extra_units", arch),
            "discount_prob": by_archetype("discount_prob", arch),
        }
    )
    df = df.withColumns(
        {
            "signup_day": F.when(
                F.col("recent"), p.run_day - 1 - F.floor(d.u("signup", idx) * recent_days)
            ).otherwise(
                p.start_day - 1 - F.floor(d.u("signup", idx) * (365 * m.ESTABLISHED_SIGNUP_YEARS))
            ),
            "churned": ~F.col("recent") & (d.u("churn", idx) < by_archetype("churn_share", arch)),
        }
    )
    df = df.withColumns(
        {
            "active_from_day": F.col("signup_day"),
            "active_until_day": F.when(
                F.col("churned"),
                p.start_day + F.floor(d.u("churn_day", idx) * (m.CHURN_WINDOW_SHARE * p.days)),
            ).otherwise(F.lit(p.run_day + m.STILL_ACTIVE_DAYS)),
        }
    )
    ws_day = F.greatest(F.col("active_from_day"), F.lit(p.start_day))
    we_day = F.least(F.col("active_until_day") + 1, F.lit(p.run_day))
    df = df.withColumns(
        {
            "ws_ms": ws_day * DAY_MS,
            "we_ms": we_day * DAY_MS,
            "wdays": F.greatest(we_day - ws_day, F.lit(0)).cast("double"),
        }
    )
    # Category mix: the archetype's weights times individual lognormal noise, normalised.
    weights = [
        lookup([a.category_weights[k] for a in m.ARCHETYPES], arch)
        * F.exp(d.z(f"category{k}", idx) * m.CATEGORY_WEIGHT_SIGMA)
        for k in range(N_CATEGORIES)
    ]
    df = df.withColumns({f"_w{k}": w for k, w in enumerate(weights)})
    total = sum((F.col(f"_w{k}") for k in range(N_CATEGORIES)), F.lit(0.0))
    df = df.withColumn("_wt", total)
    cum = list(accumulate(F.col(f"_w{k}") for k in range(N_CATEGORIES)))
    df = df.withColumns(
        {
            "weights": F.array(*(F.col(f"_w{k}") / F.col("_wt") for k in range(N_CATEGORIES))),
            "cum": F.array(*(c / F.col("_wt") for c in cum[:-1])),
            "offsets": F.array(
                *(
                    d.index("offset", m.items_in_category(p.items, k), idx, k)
                    for k in range(N_CATEGORIES)
                )
            ),
            "pref_platform": pick_by_archetype(d.u("platform", idx), "platform_weights", arch),
            "pref_channel": pick_by_archetype(d.u("channel", idx), "channel_weights", arch),
            "tier0": pick_by_archetype(d.u("tier", idx), "tier_weights", arch),
            "consent_email0": d.u("consent_email", idx)
            < F.col("engagement") * 0.6 + m.CONSENT_EMAIL_BASE,
            "consent_sms0": d.u("consent_sms", idx) < m.CONSENT_SMS_SHARE,
            "consent_push0": d.u("consent_push", idx) < m.CONSENT_PUSH_SHARE,
            "first_export": sum(
                (F.when(F.col("signup_day") > day, 1).otherwise(0) for day in exports[:-1]),
                F.lit(1),
            ),
            "devices": F.array(
                *(F.concat(F.lit("d-"), d.hex16("device", idx, k)) for k in range(3))
            ),
        }
    ).drop(*(f"_w{k}" for k in range(N_CATEGORIES)), "_wt")
    df = df.withColumns(
        {
            "top_cat": (F.array_position(F.col("weights"), F.array_max("weights")) - 1).cast("int"),
            "app_platform": F.when(
                F.col("pref_platform") == 0, 1 + d.index("app_platform", 2, idx)
            ).otherwise(F.col("pref_platform")),
            "change_export": F.when(
                (F.col("first_export") < n_exports) & (d.u("change", idx) < m.CHANGE_SHARE),
                F.col("first_export")
                + 1
                + F.floor(d.u("change_export", idx) * (n_exports - F.col("first_export"))),
            )
            .otherwise(0)
            .cast("int"),
            "n_orders": F.least(
                poisson(F.col("lam") * F.col("wdays"), d.u("orders", idx), d.z("orders", idx)),
                F.lit(m.MAX_ORDERS),
            ),
            "n_browse": approx_poisson(F.col("srate") * F.col("wdays"), d.z("browse", idx)),
            "n_emails": F.when(
                F.col("consent_email0"),
                approx_poisson(
                    F.col("engagement") * m.NEWSLETTERS_PER_DAY * F.col("wdays"),
                    d.z("emails", idx),
                ),
            ).otherwise(0),
            "campaign_rate": F.col("engagement") * m.CAMPAIGN_ENGAGEMENT_SHARE
            + m.CAMPAIGN_BASE_SHARE,
            "always_anon": F.lit(False),
            "extra_marker": typed_null(),
        }
    )
    changed = F.col("change_export") > 0
    moved = changed & (d.u("move", idx) < m.MOVE_SHARE)
    flip = d.index("flip", 3, idx)
    tier0 = F.col("tier0")
    df = df.withColumns(
        {
            "tier1": F.when(
                changed,
                F.when(tier0 == 0, 1)
                .when(tier0 == 3, 2)
                .when(d.u("tier_up", idx) < m.TIER_UP_SHARE, tier0 + 1)
                .otherwise(tier0 - 1),
            ).otherwise(tier0),
            "consent_email1": F.col("consent_email0") != (changed & (flip == 0)),
            "consent_sms1": F.col("consent_sms0") != (changed & (flip == 1)),
            "consent_push1": F.col("consent_push0") != (changed & (flip == 2)),
            "region": F.when(
                moved,
                (F.col("region0") + 1 + d.index("move_to", n_regions - 1, idx)) % n_regions,
            ).otherwise(F.col("region0")),
            "city0_i": F.col("region0") * 3 + d.index("city", 3, idx),
        }
    )
    df = df.withColumns(
        {
            "city1_i": F.when(moved, F.col("region") * 3 + d.index("city1", 3, idx)).otherwise(
                F.col("city0_i")
            ),
            "offset_min": lookup([r.utc_offset_minutes for r in m.REGIONS], F.col("region")),
            "offset0_min": lookup([r.utc_offset_minutes for r in m.REGIONS], F.col("region0")),
            "home_store": F.format_string(
                "ST%03d",
                F.col("region") * m.STORES_PER_REGION
                + d.index("store", m.STORES_PER_REGION, idx)
                + 1,
            ),
            "signup_ms": F.col("signup_day") * DAY_MS + F.floor(d.u("signup_time", idx) * DAY_MS),
        }
    )
    first_end = lookup(export_end_ms, F.col("first_export") - 1)
    prev_end = lookup(export_end_ms, F.greatest(F.col("change_export") - 2, F.lit(0)))
    change_end = lookup(export_end_ms, F.greatest(F.col("change_export") - 1, F.lit(0)))
    age = F.least(
        F.greatest(
            F.round(
                by_archetype("age_mean", arch) + by_archetype("age_sd", arch) * d.z("age", idx)
            ),
            F.lit(float(m.MIN_AGE)),
        ),
        F.lit(float(m.MAX_AGE)),
    )
    n_first = len(m.FIRST_NAMES_F)
    assert n_first == len(m.FIRST_NAMES_M)
    pool = (
        F.when(F.col("gender_i") == 0, 0)
        .when(F.col("gender_i") == 1, 1)
        .otherwise(d.index("name_pool", 2, idx))
    )
    first_name = lookup(
        [*m.FIRST_NAMES_F, *m.FIRST_NAMES_M], pool * n_first + d.index("first", n_first, idx)
    )
    last_name = lookup(m.LAST_NAMES, d.index("last", len(m.LAST_NAMES), idx))
    df = df.withColumns(
        {
            "updated0_ms": F.col("signup_ms")
            + F.floor(d.u("updated0", idx) * (first_end - F.col("signup_ms"))),
            "updated1_ms": F.when(
                changed, prev_end + F.floor(d.u("updated1", idx) * (change_end - prev_end))
            ),
            "birth_day": F.lit(p.run_day)
            - F.floor((age + d.u("birthday", idx)) * 365.25).cast("int"),
            "first_name": first_name,
            "last_name": last_name,
            "city0": lookup(cities, F.col("city0_i")),
            "city1": lookup(cities, F.col("city1_i")),
            "phone": _phone(d, idx, lookup(phone_codes, F.col("city0_i"))),
        }
    )
    return df.withColumn(
        "email", email_address(first_name, last_name, idx + 1, d.index("domain", 4, idx))
    )


def email_address(first: Column, last: Column, number: Column, domain_i: Column) -> Column:
    """first.last<number>@domain: unique because the number is (names have no digits)."""
    return F.lower(
        F.concat(
            first,
            F.lit("."),
            last,
            number.cast("long").cast("string"),
            F.lit("@"),
            lookup(m.EMAIL_DOMAINS, domain_i),
        )
    )


def _phone(d: Draw, idx: Column, code: Column) -> Column:
    number = F.floor(d.u("phone", idx) * 100_000_000).cast("long")
    return F.format_string(
        "+%s 6%02d %03d %03d",
        code,
        F.floor(number / 1_000_000) % 100,
        F.floor(number / 1000) % 1000,
        number % 1000,
    )


def visitors(spark: SparkSession, p: GenParams, partitions: int | None = None) -> DataFrame:
    """Never-logged-in devices: the columns browse_events needs, with no customer."""
    d = Draw(p.seed)
    parts = partitions or max(spark.sparkContext.defaultParallelism, -(-p.visitors // 25_000))
    key = -(F.col("id") + 1)  # negative keys never meet customers' (0-based) keys
    uniform_cuts = [(k + 1) / N_CATEGORIES for k in range(N_CATEGORIES - 1)]
    return spark.range(0, p.visitors, 1, parts).select(
        key.alias("key"),
        typed_null().alias("customer_id"),
        F.lit(p.start_day * DAY_MS).alias("ws_ms"),
        F.lit(p.run_day * DAY_MS).alias("we_ms"),
        (1 + d.index("v_sessions", m.VISITOR_MAX_SESSIONS, key)).alias("n_browse"),
        d.index("v_platform", 3, key).alias("pref_platform"),
        F.array(*(F.concat(F.lit("d-"), d.hex16("v_device", key, k)) for k in range(3))).alias(
            "devices"
        ),
        array_of(uniform_cuts).alias("cum"),
        F.array(
            *(
                d.index("v_offset", m.items_in_category(p.items, k), key, k)
                for k in range(N_CATEGORIES)
            )
        ).alias("offsets"),
        F.lit(m.VISITOR_CAMPAIGN_SHARE).alias("campaign_rate"),
        F.lit(False).alias("consent_email0"),
        F.lit(True).alias("always_anon"),
        lookup(
            [r.utc_offset_minutes for r in m.REGIONS],
            pick(d.u("v_region", key), [r.weight for r in m.REGIONS]),
        ).alias("offset_min"),
    )
