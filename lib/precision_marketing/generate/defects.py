"""Defects: extra rows on top of the clean data, each marked "dfx-<source>-<n>", so the
validate stage's catches can be checked against the plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.crm import render_crm
from precision_marketing.generate.customers import email_address
from precision_marketing.generate.draws import (
    Draw,
    choose_in_groups,
    lookup,
    period,
    pick_per_row,
    time_text,
    typed_null,
)
from precision_marketing.generate.events import EVENT_COLUMNS, email_events, render_events
from precision_marketing.generate.items import (
    N_CATEGORIES,
    choose_item,
    item_category,
    item_id,
    item_price,
)
from precision_marketing.generate.model import DAY_MS, EPOCH, GenParams


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
        "search_query": typed_null(),
        "event_time": F.when(kind == "unparseable_timestamp", _unparseable(p)).otherwise(
            time_text(F.col("_ms"), F.col("offset_min"))
        ),
        "platform": lookup(contracts.PLATFORMS, F.col("pref_platform")),
        "utm_source": typed_null(),
        "utm_medium": typed_null(),
        "utm_campaign": typed_null(),
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
    fresh_email = email_address(
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
