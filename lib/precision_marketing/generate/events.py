"""The click stream: browsing sessions, purchase events and email events, rendered as JSON."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import (
    Draw,
    choose_in_groups,
    geometric,
    lookup,
    period,
    pick,
    pick_per_row,
    time_text,
    typed_null,
    week_label,
)
from precision_marketing.generate.items import (
    N_CATEGORIES,
    choose_item,
    item_category,
    item_id,
    item_price,
)
from precision_marketing.generate.model import GenParams

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


def browse_events(people: DataFrame, p: GenParams, first_session_no: int = 1) -> DataFrame:
    """Browse sessions of customers or visitors (internal event frame, see render_events),
    numbered from `first_session_no` (a later day's sessions get numbers, and so ids, of their
    own)."""
    d = Draw(p.seed)
    key, sn, en = F.col("key"), F.col("session_no"), F.col("event_no")
    first = F.lit(first_session_no)
    sessions = people.where(F.col("n_browse") > 0).select(
        *(c for c in BROWSER_COLUMNS if c != "n_browse"),
        F.explode(F.sequence(first, first + F.col("n_browse") - 1)).alias("session_no"),
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
        typed_null().alias("debug_payload"),
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
        typed_null().alias("search_query"),
        F.when(F.col("step") == 2, F.col("order_ms"))
        .otherwise(F.col("order_ms") - back * m.PURCHASE_STEP_MS)
        .alias("event_ms"),
        "offset_min",
        lookup(contracts.PLATFORMS, platform_i).alias("platform"),
        typed_null().alias("utm_source"),
        typed_null().alias("utm_medium"),
        typed_null().alias("utm_campaign"),
        typed_null().alias("debug_payload"),
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
        typed_null().alias("item_id"),
        typed_null().alias("category"),
        typed_null("double").alias("price"),
        typed_null().alias("search_query"),
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
