"""Pure DataFrame builders of the synthetic raw sources, their defects and the planted truth.

Randomness is hashing: every draw is `xxhash64(seed, tag, keys...)` turned into a uniform in
(0, 1), so a value depends only on the seed and the row's structural key (customer, order, line,
session, event number), never on partitioning or on the order in which rows are produced. Counts
are exploded with `sequence`, and items are picked by arithmetic on item indexes (item i is in
category i % 8), so nothing is ever a cross join of customers and items, and the frame of one
customer subset yields exactly the rows those customers have in the full data.

Internal frames carry times as epoch milliseconds (UTC) and render them only at the end, as
ISO-8601 text with the customer's fixed region offset, independent of the session time zone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.model import DAY_MS, EPOCH, GenParams

# --------------------------------------------------------------------------------------------
# Column helpers: hash-based draws, weighted picks, lookups, time formatting.


def _c(value: Any) -> Column:
    return value if isinstance(value, Column) else F.lit(value)


class Draw:
    """Random numbers for one seed as Column expressions: a pure function of (tag, keys)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def hash(self, tag: str, *keys: Any) -> Column:
        return F.xxhash64(F.lit(self.seed), F.lit(tag), *(_c(k) for k in keys))

    def u(self, tag: str, *keys: Any) -> Column:
        """Uniform in (0, 1): the hash's top 52 bits, centred in their bucket."""
        bits = F.shiftrightunsigned(self.hash(tag, *keys), 12).cast("double")
        return (bits + 0.5) / float(2**52)

    def z(self, tag: str, *keys: Any) -> Column:
        """Standard normal (Box-Muller)."""
        r = F.sqrt(F.log(self.u(f"{tag}/r", *keys)) * -2.0)
        return r * F.cos(self.u(f"{tag}/a", *keys) * (2 * math.pi))

    def index(self, tag: str, n: Any, *keys: Any) -> Column:
        """Uniform integer in [0, n)."""
        return F.floor(self.u(tag, *keys) * _c(n)).cast("int")

    def hex16(self, tag: str, *keys: Any) -> Column:
        return F.lpad(F.lower(F.hex(self.hash(tag, *keys))), 16, "0")

    def uuid(self, tag: str, *keys: Any) -> Column:
        hi, lo = self.hex16(f"{tag}/hi", *keys), self.hex16(f"{tag}/lo", *keys)
        parts = [
            F.substring(hi, 1, 8),
            F.substring(hi, 9, 4),
            F.substring(hi, 13, 4),
            F.substring(lo, 1, 4),
            F.substring(lo, 5, 12),
        ]
        return F.concat_ws("-", *parts)


def sql_literal(value: Any) -> str:
    """A Spark SQL literal: doubles as 1.5D, longs as 7L, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2**31) <= value < 2**31 else f"{value}L"
    if isinstance(value, float):
        return f"{value!r}D"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _array(values: Sequence[Any]) -> Column:
    """A constant array in one expression (one JVM call instead of one per element)."""
    return F.expr(f"array({', '.join(sql_literal(v) for v in values)})")


def lookup(values: Sequence[Any], index: Column) -> Column:
    """values[index] for a 0-based index column; null for a null index.

    The explicit null guard is needed: Spark 4.1's generated code for element_at on a
    literal array returned the last element, not null, for a null index.
    """
    return F.when(index.isNotNull(), F.element_at(_array(values), (index + 1).cast("int")))


def pick(u: Column, weights: Sequence[float]) -> Column:
    """Index of the weighted choice that uniform `u` falls into (constant weights)."""
    total = sum(weights)
    cuts = list(accumulate(w / total for w in weights))[:-1]
    return sum((F.when(u >= cut, 1).otherwise(0) for cut in cuts), F.lit(0))


def pick_per_row(u: Column, cuts: Sequence[Column]) -> Column:
    """Index of the weighted choice with per-row cumulative cut points."""
    return sum((F.when(u >= cut, 1).otherwise(0) for cut in cuts), F.lit(0))


def pick_by_archetype(u: Column, attr: str, arch: Column) -> Column:
    """Weighted choice with the weights of each row's archetype (attribute `attr`)."""
    rows = [getattr(a, attr) for a in m.ARCHETYPES]
    cum = [list(accumulate(w / sum(ws) for w in ws)) for ws in rows]
    cuts = [lookup([c[k] for c in cum], arch) for k in range(len(rows[0]) - 1)]
    return pick_per_row(u, cuts)


def by_archetype(attr: str, arch: Column) -> Column:
    return lookup([getattr(a, attr) for a in m.ARCHETYPES], arch)


def choose_in_groups(groups: Sequence[Sequence[str]], group: Column, u: Column) -> Column:
    """A uniform element of groups[group], from one flat literal array."""
    flat = [v for g in groups for v in g]
    offsets = [0, *accumulate(len(g) for g in groups)][:-1]
    start = lookup(offsets, group)
    size = lookup([len(g) for g in groups], group)
    return F.element_at(_array(flat), (start + F.floor(u * size) + 1).cast("int"))


def geometric(mean: Any, u: Column) -> Column:
    """Failures before the first success, with the given mean (> 0)."""
    mean_c = _c(mean)
    return F.floor(F.log(u) / F.log(mean_c / (mean_c + 1.0))).cast("int")


def poisson(mu: Column, u: Column, z: Column) -> Column:
    """Poisson(mu): exact inverse CDF below mu = 30, the normal approximation above."""
    kmax = F.ceil(mu + F.sqrt(mu) * 6.0 + 6.0).cast("int")
    start = F.struct(F.lit(0).alias("k"), F.exp(-mu).alias("p"), F.exp(-mu).alias("c"))

    def step(acc: Column, k: Column) -> Column:
        p = acc["p"] * mu / k
        return F.when(
            acc["c"] < u, F.struct(k.alias("k"), p.alias("p"), (acc["c"] + p).alias("c"))
        ).otherwise(acc)

    exact = F.aggregate(F.sequence(F.lit(1), kmax), start, step)["k"]
    normal = F.greatest(F.round(mu + F.sqrt(mu) * z), F.lit(0.0)).cast("int")
    return F.when(mu < 30.0, exact).otherwise(normal)


def approx_poisson(mu: Column, z: Column) -> Column:
    """Rounded normal approximation: good enough for browsing volumes, and cheap."""
    return F.greatest(F.floor(mu + F.sqrt(mu) * z + 0.5), F.lit(0)).cast("int")


def padded(number: Column, width: int) -> Column:
    """A non-negative integer as zero-padded text (format_string costs ~1 µs a call)."""
    return F.lpad(number.cast("long").cast("string"), width, "0")


def offset_text(offset_min: Column) -> Column:
    """'+01:00' for 60 minutes east of UTC."""
    sign = F.when(offset_min < 0, "-").otherwise("+")
    minutes = F.abs(offset_min)
    return F.concat(sign, padded(F.floor(minutes / 60), 2), F.lit(":"), padded(minutes % 60, 2))


def day_text(day: Column) -> Column:
    """Days since 1970-01-01 as YYYY-MM-DD."""
    return F.date_add(F.lit(EPOCH), day.cast("int")).cast("string")


def time_text(ms: Column, offset_min: Column) -> Column:
    """Epoch milliseconds as ISO-8601 local time with a fixed offset, e.g. ...T14:22:31.123+01:00.

    Pure arithmetic, so the text never depends on spark.sql.session.timeZone.
    """
    local = ms + offset_min.cast("long") * 60_000
    day = F.floor(local / DAY_MS)
    in_day = (local - day * DAY_MS).cast("int")
    return F.concat(
        day_text(day),
        F.lit("T"),
        padded(F.floor(in_day / 3_600_000), 2),
        F.lit(":"),
        padded(F.floor(in_day / 60_000) % 60, 2),
        F.lit(":"),
        padded(F.floor(in_day / 1000) % 60, 2),
        F.lit("."),
        padded(in_day % 1000, 3),
        offset_text(offset_min),
    )


def ms_day(ms: Column) -> Column:
    return F.floor(ms / DAY_MS)


def period(ms: Column, p: GenParams, n: int) -> Column:
    """'01'..'n': which of n equal slices of the history window `ms` falls in (clamped)."""
    width = p.days * DAY_MS / n
    index = F.least(
        F.greatest(F.floor((ms - p.start_day * DAY_MS) / width), F.lit(0)), F.lit(n - 1)
    )
    return lookup([f"{i:02d}" for i in range(1, n + 1)], index)


def week_label(ms: Column) -> Column:
    """'2026w23': the ISO week of the day `ms` falls on (UTC)."""
    date = F.date_add(F.lit(EPOCH), ms_day(ms).cast("int"))
    return F.concat(F.year(date).cast("string"), F.lit("w"), padded(F.weekofyear(date), 2))


def _null(dtype: str = "string") -> Column:
    return F.lit(None).cast(dtype)


# --------------------------------------------------------------------------------------------
# Items: everything about item i is a function of i, so no join is ever needed.

N_CATEGORIES = len(m.CATEGORIES)


def item_id(item_idx: Column) -> Column:
    """'I000001'...; null for a null index."""
    return F.concat(F.lit("I"), padded(item_idx + 1, 6))


def item_category(item_idx: Column) -> Column:
    return lookup(m.CATEGORY_NAMES, item_idx % N_CATEGORIES)


def item_price(d: Draw, item_idx: Column) -> Column:
    """Lognormal around the category's median, ending in .99; in [0.99, 99999.99]."""
    cat = item_idx % N_CATEGORIES
    median = lookup([c.median_price for c in m.CATEGORIES], cat)
    sigma = lookup([c.price_sigma for c in m.CATEGORIES], cat)
    raw = median * F.exp(sigma * d.z("price", item_idx))
    euros = F.least(F.greatest(F.round(raw, 0), F.lit(1.0)), F.lit(100_000.0))
    return F.when(item_idx.isNotNull(), F.round(euros - 0.01, 2))


def choose_item(
    p: GenParams, category: Column, offsets: Column, u_popular: Column, u_item: Column
) -> Column:
    """The item index a customer picks in `category` (documented in docs/data-contract.md).

    With POPULAR_SHARE a bestseller (low index within the category, skewed), otherwise an item
    of the customer's own window: `window` consecutive items from the customer's offset.
    """
    n_c = lookup([m.items_in_category(p.items, c) for c in range(N_CATEGORIES)], category)
    width = lookup([m.item_window(p.items, c) for c in range(N_CATEGORIES)], category)
    offset = F.element_at(offsets, (category + 1).cast("int"))
    popular = F.floor(F.pow(u_item, m.POPULAR_SKEW) * n_c)
    own = (offset + F.floor(u_item * width)) % n_c
    j = F.when(u_popular < m.POPULAR_SHARE, popular).otherwise(own)
    return (category + j * N_CATEGORIES).cast("long")


def catalog(spark: SparkSession, p: GenParams) -> DataFrame:
    """Clean catalog rows in contract column order (one per item)."""
    d = Draw(p.seed)
    i = F.col("item_idx")
    cat = i % N_CATEGORIES
    brand = choose_in_groups([c.brands for c in m.CATEGORIES], cat, d.u("brand", i))
    noun = choose_in_groups([c.products for c in m.CATEGORIES], cat, d.u("noun", i))
    adjective = lookup(m.TITLE_ADJECTIVES, d.index("adjective", len(m.TITLE_ADJECTIVES), i))
    updated_ms = p.run_day * DAY_MS - 1 - F.floor(d.u("item_updated", i) * (p.days + 365) * DAY_MS)
    return (
        spark.range(0, p.items, 1, 1)
        .withColumnRenamed("id", "item_idx")
        .select(
            item_id(i).alias("item_id"),
            F.concat_ws(" ", brand, adjective, F.initcap(noun)).alias("title"),
            item_category(i).alias("category"),
            brand.alias("brand"),
            item_price(d, i).alias("price"),
            (d.u("item_active", i) >= m.INACTIVE_ITEM_SHARE).alias("active"),
            time_text(updated_ms, F.lit(0)).alias("updated_at"),
        )
    )


# --------------------------------------------------------------------------------------------
# Customers: one wide row per customer with everything the sources and the truth derive from.


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
            "extra_marker": _null(),
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
    return df.withColumn("email", _email(first_name, last_name, idx + 1, d.index("domain", 4, idx)))


def _email(first: Column, last: Column, number: Column, domain_i: Column) -> Column:
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
        _null().alias("customer_id"),
        F.lit(p.start_day * DAY_MS).alias("ws_ms"),
        F.lit(p.run_day * DAY_MS).alias("we_ms"),
        (1 + d.index("v_sessions", m.VISITOR_MAX_SESSIONS, key)).alias("n_browse"),
        d.index("v_platform", 3, key).alias("pref_platform"),
        F.array(*(F.concat(F.lit("d-"), d.hex16("v_device", key, k)) for k in range(3))).alias(
            "devices"
        ),
        _array(uniform_cuts).alias("cum"),
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


# --------------------------------------------------------------------------------------------
# Orders and transactions.


def order_lines(customers: DataFrame, p: GenParams) -> DataFrame:
    """One row per order line: the Poisson orders of each customer, exploded into lines."""
    d = Draw(p.seed)
    idx, on, ln = F.col("idx"), F.col("order_no"), F.col("line_no")
    orders = customers.where(F.col("n_orders") > 0).select(
        "idx",
        "customer_id",
        "arch",
        "ws_ms",
        "we_ms",
        "pref_channel",
        "app_platform",
        "devices",
        "offset_min",
        "home_store",
        "cum",
        "offsets",
        "extra_lines",
        "extra_units",
        "discount_prob",
        F.explode(F.sequence(F.lit(1), F.col("n_orders"))).alias("order_no"),
    )
    orders = orders.withColumns(
        {
            "order_id": F.concat(F.lit("O"), padded(idx + 1, 8), padded(on, 4)),
            "order_ms": F.col("ws_ms")
            + F.floor(d.u("o_time", idx, on) * (F.col("we_ms") - F.col("ws_ms"))),
            "channel_i": F.when(
                d.u("o_channel", idx, on) < m.PREFERRED_CHANNEL_SHARE, F.col("pref_channel")
            ).otherwise(
                pick_by_archetype(d.u("o_channel2", idx, on), "channel_weights", F.col("arch"))
            ),
            "n_lines": 1
            + F.least(
                geometric(F.col("extra_lines"), d.u("o_lines", idx, on)),
                F.lit(m.MAX_EXTRA_LINES),
            ),
            "cancelled": d.u("o_cancel", idx, on) < m.CANCEL_RATE,
            "discount_pct": F.when(
                d.u("o_discount", idx, on) < F.col("discount_prob"),
                lookup(m.DISCOUNT_PCTS, d.index("o_pct", len(m.DISCOUNT_PCTS), idx, on)),
            ).otherwise(0.0),
        }
    )
    lines = orders.withColumn("line_no", F.explode(F.sequence(F.lit(1), F.col("n_lines"))))
    category = pick_per_row(
        d.u("l_category", idx, on, ln),
        [F.element_at("cum", k + 1) for k in range(N_CATEGORIES - 1)],
    )
    lines = lines.withColumn("_category", category).withColumn(
        "item_idx",
        choose_item(
            p,
            F.col("_category"),
            F.col("offsets"),
            d.u("l_popular", idx, on, ln),
            d.u("l_item", idx, on, ln),
        ),
    )
    lines = lines.withColumns(
        {
            "quantity": 1
            + F.least(
                geometric(F.col("extra_units"), d.u("l_units", idx, on, ln)),
                F.lit(m.MAX_EXTRA_UNITS),
            ),
            "unit_price": item_price(d, F.col("item_idx")),
        }
    )
    return lines.withColumn(
        "discount",
        F.round(F.col("unit_price") * F.col("quantity") * F.col("discount_pct"), 2),
    )


def transactions(lines: DataFrame, p: GenParams) -> DataFrame:
    """Raw transaction rows (sales and later refunds) in contract order, plus `part`, `_sale`."""
    d = Draw(p.seed)
    idx, on, ln = F.col("idx"), F.col("order_no"), F.col("line_no")
    refund_ms = (
        F.col("order_ms")
        + DAY_MS
        + F.floor(d.u("r_time", idx, on, ln) * ((m.REFUND_MAX_DAYS - 1) * DAY_MS))
    )
    refunded = (
        ~F.col("cancelled")
        & (d.u("refund", idx, on, ln) < m.REFUND_RATE)
        & (refund_ms < p.run_day * DAY_MS)
    )
    refund_qty = 1 + F.floor(d.u("r_qty", idx, on, ln) * F.col("quantity")).cast("int")
    sale = F.struct(
        F.col("quantity").alias("quantity"),
        F.col("discount").alias("discount"),
        F.col("order_ms").alias("ms"),
        F.when(F.col("cancelled"), "cancelled").otherwise("completed").alias("status"),
    )
    refund = F.when(
        refunded,
        F.struct(
            refund_qty.alias("quantity"),
            F.round(F.col("discount") * refund_qty / F.col("quantity"), 2).alias("discount"),
            refund_ms.alias("ms"),
            F.lit("refunded").alias("status"),
        ),
    )
    rows = lines.withColumn("_row", F.explode(F.array(sale, refund))).where(
        F.col("_row").isNotNull()
    )
    return rows.select(
        F.col("order_id"),
        F.col("line_no").cast("int").alias("line_no"),
        F.col("customer_id"),
        item_id(F.col("item_idx")).alias("item_id"),
        F.col("_row.quantity").cast("int").alias("quantity"),
        F.col("unit_price").cast("double").alias("unit_price"),
        F.col("_row.discount").cast("double").alias("discount"),
        F.lit(contracts.CURRENCIES[0]).alias("currency"),
        time_text(F.col("_row.ms"), F.col("offset_min")).alias("order_time"),
        lookup(contracts.SALES_CHANNELS, F.col("channel_i")).alias("channel"),
        F.when(F.col("channel_i") == 2, F.col("home_store")).alias("store_id"),
        F.col("_row.status").alias("status"),
        period(F.col("_row.ms"), p, p.transaction_files).alias("part"),
        (F.col("_row.status") != "refunded").alias("_sale"),
    )


# --------------------------------------------------------------------------------------------
# Events.

EVENT_COLUMNS = [f.name for f in contracts.EVENTS.fields]
PRODUCT_EVENTS = ("product_view", "add_to_cart", "remove_from_cart", "purchase")


def _item_fields(d: Draw, item_idx: Column) -> dict[str, Column]:
    return {
        "item_id": item_id(item_idx),
        "category": item_category(item_idx),
        "price": item_price(d, item_idx),
    }


# What browse_events needs of a customer or visitor.
BROWSER_COLUMNS = (
    "key",
    "customer_id",
    "n_browse",
    "ws_ms",
    "we_ms",
    "pref_platform",
    "devices",
    "cum",
    "offsets",
    "campaign_rate",
    "consent_email0",
    "always_anon",
    "offset_min",
)


def browse_events(people: DataFrame, p: GenParams) -> DataFrame:
    """Browse sessions of customers or visitors (internal event frame, see render_events)."""
    d = Draw(p.seed)
    key, sn, en = F.col("key"), F.col("session_no"), F.col("event_no")
    sessions = people.where(F.col("n_browse") > 0).select(
        *(c for c in BROWSER_COLUMNS if c != "n_browse"),
        F.explode(F.sequence(F.lit(1), F.col("n_browse"))).alias("session_no"),
    )
    cuts = [F.element_at("cum", k + 1) for k in range(N_CATEGORIES - 1)]
    utm_all = [1.0] * len(m.UTM_SOURCES)
    utm_no_email = [0.0 if needs_consent else 1.0 for _, _, needs_consent in m.UTM_SOURCES]
    sessions = sessions.withColumns(
        {
            "start_ms": F.col("ws_ms")
            + F.floor(d.u("s_start", key, sn) * (F.col("we_ms") - F.col("ws_ms") - 3_600_000)),
            "n_events": 1
            + F.least(
                geometric(m.SESSION_EXTRA_EVENTS, d.u("s_length", key, sn)),
                F.lit(m.MAX_SESSION_EVENTS - 1),
            ),
            "platform_i": F.when(
                d.u("s_platform", key, sn) < m.PREFERRED_PLATFORM_SHARE, F.col("pref_platform")
            ).otherwise(d.index("s_platform2", 3, key, sn)),
            "campaign": d.u("s_campaign", key, sn) < F.col("campaign_rate"),
            "utm_i": F.when(
                F.col("consent_email0"), pick(d.u("s_utm", key, sn), utm_all)
            ).otherwise(pick(d.u("s_utm", key, sn), utm_no_email)),
            "focus": pick_per_row(d.u("s_focus", key, sn), cuts),
            "login": d.u("s_login", key, sn),
            "session_id": F.concat(F.lit("s-"), d.hex16("session", key, sn)),
        }
    )
    sessions = sessions.withColumn(
        "anon_len",
        F.when(
            F.col("always_anon") | (F.col("login") < m.ANONYMOUS_SESSION_SHARE),
            F.col("n_events"),
        )
        .when(
            F.col("login") < m.ANONYMOUS_SESSION_SHARE + m.LATE_LOGIN_SHARE,
            F.floor(d.u("s_late_login", key, sn) * F.col("n_events")).cast("int"),
        )
        .otherwise(0),
    )
    theme = lookup(m.CAMPAIGN_THEMES, d.index("s_theme", len(m.CAMPAIGN_THEMES), key, sn))
    newsletter = F.col("utm_i") == 0
    campaign_name = F.when(
        newsletter, F.concat(F.lit("newsletter-"), week_label(F.col("start_ms")))
    ).otherwise(
        F.concat_ws(
            "-", lookup(m.CATEGORY_NAMES, F.col("focus")), theme, week_label(F.col("start_ms"))
        )
    )
    sessions = sessions.withColumns(
        {
            "utm_source": F.when(
                F.col("campaign"), lookup([s for s, _, _ in m.UTM_SOURCES], F.col("utm_i"))
            ),
            "utm_medium": F.when(
                F.col("campaign"), lookup([md for _, md, _ in m.UTM_SOURCES], F.col("utm_i"))
            ),
            "utm_campaign": F.when(F.col("campaign"), campaign_name),
            "first_type": F.when(F.col("campaign"), "campaign_click")
            .when(d.u("e_first", key, sn) < m.FIRST_EVENT_SEARCH_SHARE, "search")
            .otherwise("page_view"),
            "device_id": F.element_at("devices", (F.col("platform_i") + 1).cast("int")),
            "platform": lookup(contracts.PLATFORMS, F.col("platform_i")),
        }
    )
    # Everything per session is settled above; only what events need crosses the explode.
    events = sessions.select(
        "key",
        "session_no",
        "session_id",
        "customer_id",
        "anon_len",
        "device_id",
        "platform",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "start_ms",
        "offset_min",
        "focus",
        "first_type",
        "cum",
        "offsets",
        F.explode(F.sequence(F.lit(1), F.col("n_events"))).alias("event_no"),
    )
    next_types = [t for t, _ in m.NEXT_EVENT_WEIGHTS]
    next_type = lookup(
        next_types, pick(d.u("e_type", key, sn, en), [w for _, w in m.NEXT_EVENT_WEIGHTS])
    )
    events = events.withColumn(
        "event_type", F.when(en == 1, F.col("first_type")).otherwise(next_type)
    )
    # A cart event acts on the item the previous event would have shown.
    ik = F.when(F.col("event_type").isin("add_to_cart", "remove_from_cart"), en - 1).otherwise(en)
    category = F.when(d.u("e_focus", key, sn, ik) < m.FOCUS_SHARE, F.col("focus")).otherwise(
        pick_per_row(d.u("e_category", key, sn, ik), cuts)
    )
    # The category is a column of its own: choose_item reads it four times.
    events = events.withColumn(
        "_category", F.when(F.col("event_type").isin(*PRODUCT_EVENTS), category)
    ).withColumn(
        "item_idx",
        F.when(
            F.col("_category").isNotNull(),
            choose_item(
                p,
                F.col("_category"),
                F.col("offsets"),
                d.u("e_popular", key, sn, ik),
                d.u("e_item", key, sn, ik),
            ),
        ),
    )
    search_query = choose_in_groups(
        [c.products for c in m.CATEGORIES], F.col("focus"), d.u("e_query", key, sn, en)
    )
    gap = m.EVENT_GAP_MS
    return events.select(
        d.uuid("event/browse", key, sn, en).alias("event_id"),
        "device_id",
        F.when(en > F.col("anon_len"), F.col("customer_id")).alias("customer_id"),
        "session_id",
        "event_type",
        *(c.alias(name) for name, c in _item_fields(d, F.col("item_idx")).items()),
        F.when(F.col("event_type") == "search", search_query).alias("search_query"),
        (
            F.col("start_ms")
            + (en - 1) * gap
            + F.floor(d.u("e_jitter", key, sn, en) * (gap - 5000))
        ).alias("event_ms"),
        "offset_min",
        "platform",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        _null().alias("debug_payload"),
        "key",
        "session_no",
        "event_no",
    )


def purchase_events(lines: DataFrame, p: GenParams) -> DataFrame:
    """The checkout session of each web/app order: view, add_to_cart and purchase per line."""
    d = Draw(p.seed)
    idx, on, ln = F.col("idx"), F.col("order_no"), F.col("line_no")
    steps = ("product_view", "add_to_cart", "purchase")
    online = lines.where(F.col("channel_i") != 2).withColumn(
        "step", F.explode(F.array(*(F.lit(i) for i in range(len(steps)))))
    )
    back = (F.col("n_lines") - ln) * 2 + 2 - F.col("step")
    platform_i = F.when(F.col("channel_i") == 0, 0).otherwise(F.col("app_platform"))
    return online.select(
        d.uuid("event/purchase", idx, on, ln, F.col("step")).alias("event_id"),
        F.element_at("devices", (platform_i + 1).cast("int")).alias("device_id"),
        "customer_id",
        F.concat(F.lit("s-"), d.hex16("checkout", idx, on)).alias("session_id"),
        lookup(steps, F.col("step")).alias("event_type"),
        item_id(F.col("item_idx")).alias("item_id"),
        item_category(F.col("item_idx")).alias("category"),
        F.col("unit_price").alias("price"),
        _null().alias("search_query"),
        F.when(F.col("step") == 2, F.col("order_ms"))
        .otherwise(F.col("order_ms") - back * m.PURCHASE_STEP_MS)
        .alias("event_ms"),
        "offset_min",
        lookup(contracts.PLATFORMS, platform_i).alias("platform"),
        _null().alias("utm_source"),
        _null().alias("utm_medium"),
        _null().alias("utm_campaign"),
        _null().alias("debug_payload"),
        F.col("idx").alias("key"),
        F.lit(0).alias("session_no"),
        F.lit(0).alias("event_no"),
    )


def email_events(customers: DataFrame, p: GenParams) -> DataFrame:
    """Newsletter opens of customers who consented to email.

    The first open of a customer designated for the extra_field defect carries the extra key.
    """
    d = Draw(p.seed)
    idx, mn = F.col("idx"), F.col("mail_no")
    mails = customers.where(F.col("n_emails") > 0).select(
        "idx",
        "customer_id",
        "ws_ms",
        "we_ms",
        "pref_platform",
        "devices",
        "offset_min",
        "extra_marker",
        F.explode(F.sequence(F.lit(1), F.col("n_emails"))).alias("mail_no"),
    )
    ms = F.col("ws_ms") + F.floor(d.u("m_time", idx, mn) * (F.col("we_ms") - F.col("ws_ms")))
    return mails.select(
        d.uuid("event/email", idx, mn).alias("event_id"),
        F.element_at("devices", (F.col("pref_platform") + 1).cast("int")).alias("device_id"),
        "customer_id",
        F.concat(F.lit("m-"), d.hex16("mail", idx, mn)).alias("session_id"),
        F.lit("email_open").alias("event_type"),
        _null().alias("item_id"),
        _null().alias("category"),
        _null("double").alias("price"),
        _null().alias("search_query"),
        ms.alias("event_ms"),
        "offset_min",
        lookup(contracts.PLATFORMS, F.col("pref_platform")).alias("platform"),
        F.lit("newsletter").alias("utm_source"),
        F.lit("email").alias("utm_medium"),
        F.concat(F.lit("newsletter-"), week_label(ms)).alias("utm_campaign"),
        F.when(mn == 1, F.col("extra_marker")).alias("debug_payload"),
        F.col("idx").alias("key"),
        F.lit(0).alias("session_no"),
        mn.alias("event_no"),
    )


def events(customers: DataFrame, lines: DataFrame, visitors: DataFrame, p: GenParams) -> DataFrame:
    """All clean events (internal frame): browse sessions, checkouts, newsletter opens."""
    browsers = customers.select(*BROWSER_COLUMNS).unionByName(visitors.select(*BROWSER_COLUMNS))
    return (
        browse_events(browsers, p)
        .unionByName(purchase_events(lines, p))
        .unionByName(email_events(customers, p))
    )


def render_events(events: DataFrame, p: GenParams, keep: Sequence[str] = ()) -> DataFrame:
    """JSON lines (`value`) in contract field order, null fields left out, plus `part`."""
    fields = [
        time_text(F.col("event_ms"), F.col("offset_min")).alias(c)
        if c == "event_time"
        else F.col(c)
        for c in EVENT_COLUMNS
    ]
    extra = F.col("debug_payload").alias(m.EXTRA_EVENT_FIELD)
    value = F.to_json(F.struct(*fields, extra), {"ignoreNullFields": "true"})
    return events.select(
        value.alias("value"), period(F.col("event_ms"), p, p.event_files).alias("part"), *keep
    )


# --------------------------------------------------------------------------------------------
# CRM.


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


# --------------------------------------------------------------------------------------------
# Defects: extra rows on top of the clean data, each marked "dfx-<source>-<n>".


@dataclass(frozen=True)
class DefectPlan:
    """How many defects of each kind, and the first marker number of each kind."""

    counts: dict[tuple[str, str], int]

    def count(self, source: str, kind: str) -> int:
        return self.counts.get((source, kind), 0)

    def first_marker(self, source: str, kind: str) -> int:
        """Markers are numbered 1.. per source, kind after kind in DEFECT_KINDS order."""
        before = 0
        for k in m.DEFECT_KINDS:
            if k.source == source:
                if k.kind == kind:
                    return before + 1
                before += self.count(source, k.kind)
        raise KeyError((source, kind))

    def total(self, source: str) -> int:
        return sum(n for (src, _), n in self.counts.items() if src == source)

    def marker(self, source: str, kind: str, i: int = 0) -> str:
        return f"dfx-{source}-{self.first_marker(source, kind) + i}"


def defect_plan(customers: DataFrame, p: GenParams) -> DefectPlan:
    """≈ defect_rate x estimated clean rows per source, spread over its row kinds (>= 1 each).

    The estimate comes from one aggregate over the customer frame, before anything is written:
    extra_field defects ride on clean rows, so they are chosen before those rows are written.
    File-level kinds (extra_column, empty_file) happen once.
    """
    store_share = F.when(F.col("pref_channel") == 2, m.PREFERRED_CHANNEL_SHARE).otherwise(
        0.0
    ) + lookup(
        [(1 - m.PREFERRED_CHANNEL_SHARE) * a.channel_weights[2] for a in m.ARCHETYPES],
        F.col("arch"),
    )
    lines = F.col("n_orders") * (F.col("extra_lines") + 1)
    row = customers.agg(
        F.sum(F.col("n_browse") * (1 + m.SESSION_EXTRA_EVENTS)).alias("browse"),
        F.sum(lines * (1 - store_share) * 3).alias("checkout"),
        F.sum("n_emails").alias("emails"),
        F.sum(lines * (1 + m.REFUND_RATE)).alias("lines"),
        F.sum(F.when(F.col("change_export") > 0, 2).otherwise(1)).alias("crm"),
        F.sum(F.when(F.col("n_emails") > 0, 1).otherwise(0)).alias("emailed"),
    ).first()
    assert row is not None
    visitor_events = p.visitors * (1 + m.VISITOR_MAX_SESSIONS) / 2 * (1 + m.SESSION_EXTRA_EVENTS)
    estimate = {
        "events": float(row["browse"] or 0)
        + float(row["checkout"] or 0)
        + float(row["emails"] or 0)
        + visitor_events,
        "crm": float(row["crm"] or 0),
        "transactions": float(row["lines"] or 0),
        "catalog": float(p.items),
    }
    counts: dict[tuple[str, str], int] = {}
    if p.defect_rate > 0:
        for source in m.DEFECT_SOURCES:
            kinds = [k for k in m.DEFECT_KINDS if k.source == source]
            row_kinds = sum(1 for k in kinds if k.per_row)
            per_kind = max(1, round(p.defect_rate * estimate[source] / row_kinds))
            for k in kinds:
                counts[(source, k.kind)] = per_kind if k.per_row else 1
        # Duplicates and extra fields sit on distinct customers' first newsletter opens.
        cap = max(1, int(row["emailed"] or 0) // 2)
        for kind in ("duplicate_event", "extra_field"):
            counts[("events", kind)] = min(counts[("events", kind)], cap)
    return DefectPlan(counts)


def _defect_base(
    spark: SparkSession, plan: DefectPlan, source: str, kinds: Sequence[str]
) -> DataFrame:
    """One row per planned defect of `kinds`: _kind, _n (marker number), _marker."""
    out = spark.createDataFrame([], "_kind string, _n long")
    for kind in kinds:
        count = plan.count(source, kind)
        if count:
            first = plan.first_marker(source, kind)
            out = out.unionByName(
                spark.range(0, count, 1, 1).select(
                    F.lit(kind).alias("_kind"), (F.col("id") + first).alias("_n")
                )
            )
    return out.withColumn("_marker", F.concat(F.lit(f"dfx-{source}-"), F.col("_n").cast("string")))


def _row_kinds(source: str, marker_field: str) -> list[str]:
    return [k.kind for k in m.DEFECT_KINDS if k.source == source and k.marker_field == marker_field]


def _with_host(base: DataFrame, customers: DataFrame, p: GenParams) -> DataFrame:
    """Adds the attributes of a host customer (hash-picked) to each defect row.

    A broadcast join of the few defect rows with the (cached) customer frame.
    """
    d = Draw(p.seed)
    host = d.index("defect_host", p.customers, F.col("_kind"), F.col("_n")).cast("long")
    return customers.join(F.broadcast(base.withColumn("idx", host)), "idx", "inner")


def _history_ms(d: Draw, p: GenParams, *keys: Any) -> Column:
    """A valid time: uniform in the history window, at least an hour before its end."""
    span = p.days * DAY_MS - 3_600_000
    return p.start_day * DAY_MS + F.floor(d.u("defect_time", *keys) * span)


def _future_ms(d: Draw, p: GenParams, *keys: Any) -> Column:
    start = (p.run_day + m.FUTURE_MIN_DAYS) * DAY_MS
    return start + F.floor(d.u("defect_future", *keys) * (m.FUTURE_SPAN_DAYS * DAY_MS))


def _unparseable(p: GenParams) -> Column:
    return F.lit(f"{p.run_date.year}-13-45T99:00:00")


def _host_item(d: Draw, p: GenParams, kind: Column, n: Column) -> Column:
    cuts = [F.element_at("cum", k + 1) for k in range(N_CATEGORIES - 1)]
    return choose_item(
        p,
        pick_per_row(d.u("defect_category", kind, n), cuts),
        F.col("offsets"),
        d.u("defect_popular", kind, n),
        d.u("defect_item", kind, n),
    )


def designated_events(customers: DataFrame, p: GenParams, plan: DefectPlan) -> DataFrame:
    """Customers whose first newsletter open is duplicated or carries the extra field.

    Picked in hash order among customers with an open (the cheapest event to re-derive exactly);
    as small as the plan's counts.
    Columns: idx, _kind, _n, _marker.
    """
    d = Draw(p.seed)
    n_dup = plan.count("events", "duplicate_event")
    n_extra = plan.count("events", "extra_field")
    empty = "idx long, _kind string, _n long, _marker string"
    if n_dup + n_extra == 0:
        return customers.sparkSession.createDataFrame([], empty)
    ranked = (
        customers.where(F.col("n_emails") > 0)
        .select("idx", d.u("designate", F.col("idx")).alias("_r"))
        .orderBy("_r", "idx")
        .limit(n_dup + n_extra)
    )
    # At most n_dup + n_extra rows, so one window partition is fine. (It is `idx * 0` rather
    # than a literal, which Spark would drop and then warn about a window without partitions.)
    rank = F.row_number().over(Window.partitionBy(F.col("idx") * 0).orderBy("_r", "idx"))
    ranked = ranked.withColumn("_rank", rank)
    is_dup = F.col("_rank") <= n_dup
    n = F.when(
        is_dup, F.col("_rank") - 1 + plan.first_marker("events", "duplicate_event")
    ).otherwise(F.col("_rank") - 1 - n_dup + plan.first_marker("events", "extra_field"))
    return ranked.select(
        "idx",
        F.when(is_dup, "duplicate_event").otherwise("extra_field").alias("_kind"),
        n.cast("long").alias("_n"),
        F.concat(F.lit("dfx-events-"), n.cast("string")).alias("_marker"),
    )


def with_extra_markers(customers: DataFrame, designated: DataFrame) -> DataFrame:
    """The customer frame where the extra_field customers carry their marker."""
    extra = designated.where(F.col("_kind") == "extra_field").select(
        "idx", F.col("_marker").alias("_extra")
    )
    return (
        customers.join(F.broadcast(extra), "idx", "left")
        .withColumn("extra_marker", F.col("_extra"))
        .drop("_extra")
    )


def designated_lines(customers: DataFrame, designated: DataFrame, p: GenParams) -> DataFrame:
    """The designated first newsletter opens, rendered exactly as in the clean write.

    Columns: value, part, _kind, _marker, _key (the event_id).
    """
    hosts = customers.join(F.broadcast(designated.select("idx")), "idx", "inner")
    first = email_events(with_extra_markers(hosts, designated), p).where(F.col("event_no") == 1)
    meta = designated.select(F.col("idx").alias("key"), "_kind", "_marker")
    rendered = render_events(
        first.join(F.broadcast(meta), "key"), p, ["_kind", "_marker", "event_id"]
    )
    return rendered.withColumnRenamed("event_id", "_key")


def event_defects(
    spark: SparkSession, customers: DataFrame, p: GenParams, plan: DefectPlan
) -> DataFrame:
    """Synthetic bad event lines (each breaks one rule): value, part, _kind, _marker, _key."""
    d = Draw(p.seed)
    base = _defect_base(spark, plan, "events", _row_kinds("events", "session_id"))
    rows = _with_host(base, customers, p)
    kind, n = F.col("_kind"), F.col("_n")
    rows = rows.withColumns(
        {
            "_item": _host_item(d, p, kind, n),
            "_ms": F.when(kind == "future_timestamp", _future_ms(d, p, kind, n)).otherwise(
                _history_ms(d, p, kind, n)
            ),
        }
    )
    price = item_price(d, F.col("_item"))
    fields = {
        "event_id": F.when(kind != "null_event_id", d.uuid("event/defect", kind, n)),
        "device_id": F.element_at("devices", (F.col("pref_platform") + 1).cast("int")),
        "customer_id": F.col("customer_id"),
        "session_id": F.col("_marker"),
        "event_type": F.when(kind == "unknown_event_type", m.UNKNOWN_EVENT_TYPE).otherwise(
            "product_view"
        ),
        "item_id": F.when(
            kind == "unknown_item", F.format_string("I9%06d", n.cast("long"))
        ).otherwise(item_id(F.col("_item"))),
        "category": item_category(F.col("_item")),
        "price": F.when(kind == "negative_price", -price).otherwise(price),
        "search_query": _null(),
        "event_time": F.when(kind == "unparseable_timestamp", _unparseable(p)).otherwise(
            time_text(F.col("_ms"), F.col("offset_min"))
        ),
        "platform": lookup(contracts.PLATFORMS, F.col("pref_platform")),
        "utm_source": _null(),
        "utm_medium": _null(),
        "utm_campaign": _null(),
    }
    explicit_nulls = {"ignoreNullFields": "false"}
    full = F.to_json(F.struct(*(fields[c].alias(c) for c in EVENT_COLUMNS)), explicit_nulls)
    head_columns = EVENT_COLUMNS[: EVENT_COLUMNS.index("session_id") + 1]
    head = F.to_json(F.struct(*(fields[c].alias(c) for c in head_columns)), explicit_nulls)
    # Truncated right after the session_id field: still carries the marker, never parses.
    truncated = F.regexp_replace(head, r"\}$", "")
    return rows.select(
        F.when(kind == "malformed_json", truncated).otherwise(full).alias("value"),
        period(F.col("_ms"), p, p.event_files).alias("part"),
        "_kind",
        "_marker",
        fields["event_id"].alias("_key"),
    )


def transaction_defects(
    spark: SparkSession, customers: DataFrame, p: GenParams, plan: DefectPlan
) -> DataFrame:
    """Bad order lines with fresh order ids "dfx-o-<n>" (store orders; marker in store_id)."""
    d = Draw(p.seed)
    base = _defect_base(spark, plan, "transactions", _row_kinds("transactions", "store_id"))
    rows = _with_host(base, customers, p)
    kind, n = F.col("_kind"), F.col("_n")
    rows = rows.withColumns(
        {
            "_item": _host_item(d, p, kind, n),
            "_ms": F.when(kind == "future_timestamp", _future_ms(d, p, kind, n)).otherwise(
                _history_ms(d, p, kind, n)
            ),
            "_qty": 1 + d.index("defect_quantity", 3, kind, n),
        }
    )
    order_id = F.when(kind != "null_order_id", F.concat(F.lit("dfx-o-"), n.cast("string")))
    price = item_price(d, F.col("_item"))
    # A discount can lie in [0, unit_price * quantity] only when that product is >= 0.
    negative_product = kind.isin("negative_quantity", "negative_amount")
    return rows.select(
        order_id.alias("order_id"),
        F.lit(1).alias("line_no"),
        F.when(kind == "unknown_customer", F.format_string("C9%08d", n.cast("long")))
        .otherwise(F.col("customer_id"))
        .alias("customer_id"),
        F.when(kind == "unknown_item", F.format_string("I9%06d", n.cast("long")))
        .otherwise(item_id(F.col("_item")))
        .alias("item_id"),
        F.when(kind == "negative_quantity", -F.col("_qty"))
        .when(kind == "absurd_quantity", m.ABSURD_QUANTITY)
        .otherwise(F.col("_qty"))
        .cast("int")
        .alias("quantity"),
        F.when(kind == "negative_amount", -price).otherwise(price).alias("unit_price"),
        F.when(~negative_product, F.lit(0.0)).alias("discount"),
        F.lit(contracts.CURRENCIES[0]).alias("currency"),
        F.when(kind == "unparseable_timestamp", _unparseable(p))
        .otherwise(time_text(F.col("_ms"), F.col("offset_min")))
        .alias("order_time"),
        F.lit("store").alias("channel"),
        F.col("_marker").alias("store_id"),
        F.when(kind == "unknown_status", m.UNKNOWN_STATUS).otherwise("completed").alias("status"),
        period(F.col("_ms"), p, p.transaction_files).alias("part"),
        "_kind",
        "_marker",
        order_id.alias("_key"),
    )


def crm_defects(
    spark: SparkSession, customers: DataFrame, p: GenParams, plan: DefectPlan
) -> DataFrame:
    """Bad CRM rows: a host customer's first state, updated_at an hour before its first row."""
    d = Draw(p.seed)
    rows = _with_host(_defect_base(spark, plan, "crm", _row_kinds("crm", "city")), customers, p)
    kind, n = F.col("_kind"), F.col("_n")
    export = F.when(F.col("first_export") == p.extra_column_export, 1).otherwise(
        F.col("first_export")
    )
    state = F.struct(
        export.alias("export"),
        F.col("tier0").alias("tier"),
        F.col("consent_email0").alias("consent_email"),
        F.col("consent_sms0").alias("consent_sms"),
        F.col("consent_push0").alias("consent_push"),
        F.col("region0").alias("region"),
        F.col("_marker").alias("city"),
        (F.col("updated0_ms") - 3_600_000).alias("updated_ms"),
        F.col("offset0_min").alias("offset_min"),
        F.lit(False).alias("first"),
    )
    rendered = render_crm(rows.withColumn("_s", state), ["_kind", "_marker", "_n", "birth_day"])
    no_id = kind == "null_customer_id"
    fresh_email = _email(
        F.col("first_name"),
        F.col("last_name"),
        F.lit(p.customers) + n,
        d.index("defect_domain", 4, n),
    )
    birth_year = F.year(F.date_add(F.lit(EPOCH), F.col("birth_day").cast("int")))
    return rendered.withColumns(
        {
            "customer_id": F.when(~no_id, F.col("customer_id")),
            "email": F.when(no_id, fresh_email).otherwise(F.col("email")),
            "birth_date": F.when(
                kind == "unparseable_birth_date", F.format_string("31/02/%d", birth_year)
            ).otherwise(F.col("birth_date")),
            "loyalty_tier": F.when(
                kind == "unknown_loyalty_tier", m.UNKNOWN_LOYALTY_TIER
            ).otherwise(F.col("loyalty_tier")),
            "_key": F.when(~no_id, F.col("customer_id")),
        }
    ).drop("_n", "birth_day")


def catalog_defects(spark: SparkSession, p: GenParams, plan: DefectPlan) -> DataFrame:
    """Bad catalog rows with fresh item ids "I8<n>" (marker in title)."""
    d = Draw(p.seed)
    rows = _defect_base(spark, plan, "catalog", _row_kinds("catalog", "title"))
    kind, n = F.col("_kind"), F.col("_n")
    item = d.index("defect_catalog_item", p.items, kind, n).cast("long")
    price = item_price(d, item)
    key = F.when(kind != "null_item_id", F.format_string("I8%06d", n.cast("long")))
    cat = item % N_CATEGORIES
    return rows.select(
        key.alias("item_id"),
        F.col("_marker").alias("title"),
        item_category(item).alias("category"),
        choose_in_groups([c.brands for c in m.CATEGORIES], cat, d.u("brand", item)).alias("brand"),
        F.when(kind == "negative_price", -price).otherwise(price).alias("price"),
        F.lit(True).alias("active"),
        time_text(_history_ms(d, p, kind, n), F.lit(0)).alias("updated_at"),
        "_kind",
        "_marker",
        key.alias("_key"),
    )


# --------------------------------------------------------------------------------------------
# Planted ground truth.


def truth_customers(customers: DataFrame) -> DataFrame:
    """One row per customer: archetype, planted purchase rate and activity window, and more."""
    return customers.select(
        "customer_id",
        F.col("arch").alias("archetype_id"),
        lookup([a.name for a in m.ARCHETYPES], F.col("arch")).alias("archetype"),
        lookup([r.name for r in m.REGIONS], F.col("region")).alias("region"),
        F.col("lam").alias("purchase_rate_per_day"),
        F.date_add(F.lit(EPOCH), F.col("active_from_day").cast("int")).alias("active_from"),
        F.date_add(F.lit(EPOCH), F.col("active_until_day").cast("int")).alias("active_until"),
        F.col("engagement").alias("email_engagement"),
        lookup(contracts.PLATFORMS, F.col("pref_platform")).alias("preferred_platform"),
        lookup(contracts.SALES_CHANNELS, F.col("pref_channel")).alias("preferred_channel"),
        lookup(m.CATEGORY_NAMES, F.col("top_cat")).alias("top_category"),
        F.date_add(F.lit(EPOCH), F.col("signup_day").cast("int")).alias("signup_date"),
        F.col("srate").alias("sessions_per_day"),
        F.col("n_orders").alias("orders_in_history"),
        lookup(contracts.LOYALTY_TIERS, F.col("tier1")).alias("loyalty_tier"),
    )


def truth_item_preferences(customers: DataFrame, p: GenParams) -> DataFrame:
    """Per customer and category: the planted mix weight and the item window it favours."""
    pos = F.col("pos")
    return customers.select("customer_id", "offsets", F.posexplode("weights")).select(
        "customer_id",
        lookup(m.CATEGORY_NAMES, pos).alias("category"),
        F.col("col").alias("weight"),
        F.element_at("offsets", (pos + 1).cast("int")).alias("item_offset"),
        lookup([m.item_window(p.items, c) for c in range(N_CATEGORIES)], pos).alias("item_window"),
        lookup([m.items_in_category(p.items, c) for c in range(N_CATEGORIES)], pos).alias(
            "category_items"
        ),
    )


DEFECTS_SCHEMA = (
    "source string, kind string, expected_rule string, marker string, marker_field string, "
    "record_key string, location string, rows long"
)


def defects_table(frame: DataFrame, source: str, location: Column) -> DataFrame:
    """Defects-table rows for the marked rows of `frame` (_kind, _marker, _key columns)."""
    kinds = [k for k in m.DEFECT_KINDS if k.source == source]
    rules = F.create_map(*(F.lit(x) for k in kinds for x in (k.kind, k.expected_rule)))
    fields = F.create_map(*(F.lit(x) for k in kinds for x in (k.kind, k.marker_field)))
    return frame.select(
        F.lit(source).alias("source"),
        F.col("_kind").alias("kind"),
        rules[F.col("_kind")].alias("expected_rule"),
        F.col("_marker").alias("marker"),
        fields[F.col("_kind")].alias("marker_field"),
        F.col("_key").alias("record_key"),
        location.alias("location"),
        F.lit(1).cast("long").alias("rows"),
    )
