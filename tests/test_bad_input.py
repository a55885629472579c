"""The project's own bad-input corpus: kinds of bad input across the four sources, planted in
distinct rows of one small clean landing and run through ingest -> validate -> silver once.

Each kind asserts its exact outcome (quarantined with its rules and invalid fields, or accepted
as a documented variant, with what silver holds), and every good row arrives in silver exactly
once. docs/data-contract.md ("What bad input gets") is the same list as a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from tests.support import make_config, run_stage
from tests.test_validate_gates import suites_with
from tests.tiny_landing import CATALOG_HEADER, CRM_HEADER, TRANSACTIONS_HEADER

CONF = Path(__file__).parents[1] / "conf"
KEYS = {
    "events": "event_id",
    "crm": "customer_id",
    "transactions": "order_id",
    "catalog": "item_id",
}


@dataclass(frozen=True)
class Kind:
    """One kind of bad input: where it is planted (source and key) and what it must get."""

    name: str
    source: str
    key: str  # the row's key value, or a marker in its raw text when the key cannot be read
    rules: tuple[str, ...] = ()  # quarantined with exactly these rules (empty: accepted)
    invalid: str | None = None  # the row's _invalid_fields
    rows: int = 1  # rows of this kind in quarantine

    @property
    def quarantined(self) -> bool:
        return bool(self.rules)


def event(event_id: str | None, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": event_id,
        "device_id": "d1",
        "customer_id": "c1",
        "session_id": "s1",
        "event_type": "product_view",
        "item_id": "i1",
        "price": 12.5,
        "event_time": "2026-06-01T10:00:00+02:00",
        "platform": "web",
    }
    return row | fields


EVENTS_GOOD = [
    event("g-ev-view"),
    event("g-ev-search", customer_id=None, event_type="search", item_id=None, price=None),
    event("g-ev-purchase", event_type="purchase"),
    event("g-ev-email", customer_id="c2", event_type="email_open", item_id=None, price=None),
]
MEGABYTE = "x" * 1_000_000
EVENTS_BAD = [
    event("b-ev-price-text", price="abc"),
    event("b-ev-price-bool", price=True),
    event("b-ev-customer-object", customer_id={"id": "c1"}),
    event("b-ev-item-array", item_id=["i1"]),
    event("b-ev-no-offset", event_time="2026-06-01T10:15:30.123"),
    event("b-ev-time-text", event_time="yesterday"),
    event("b-ev-future", event_time="2099-01-01T00:00:00Z"),
    event("b-ev-purchase-anonymous", customer_id=None, event_type="purchase"),
    event("b-ev-email-anonymous", customer_id=None, event_type="email_open", item_id=None),
    event("b-ev-megabyte", event_type="search", item_id=None, search_query=MEGABYTE),
    event("b-ev-long-id" + "9" * 200),
    event("b-ev-conflict", platform="web"),
    event("b-ev-conflict", platform="ios"),
    event("b-ev-type", event_type="video_play"),
    event(None, session_id="b-ev-no-id"),
    event("b-ev-no-device", device_id=None),
    event("b-ev-item", item_id="i999"),
    event("b-ev-negative-price", price=-1),
    # accepted variants
    event("v-ev-cart-anonymous", customer_id=None, event_type="add_to_cart"),
    event("v-ev-quoted-number", price="7.5"),
    event("v-ev-numeric-id", customer_id=31),
    event("v-ev-braced-text", event_type="search", item_id=None, search_query='{"q": "[1]"}'),
    event("v-ev-platform", platform="tv"),
    event("v-ev-dup"),
    event("v-ev-dup"),
    event("v-ev-extra") | {"debug_payload": "x"},
]
EVENTS_RAW = [
    '{"event_id":"b-ev-truncated","device_id":"d1","event_ty',
    '["b-ev-array-line"]',
]

CRM_GOOD = [
    "c1,ann@example.com,+4930123,Ann,Lee,1985-04-02,F,Berlin,north,2024-01-05,gold,"
    "true,false,true,2026-05-01T00:00:00Z",
    "c2,bob@example.com,+4930124,Bob,Kim,1990-06-01,M,Hamburg,north,2024-02-05,none,"
    "true,true,false,2026-05-01T00:00:00Z",
    # accepted: an exact copy of c3 (one version in silver)
    "c3,cy@example.com,,Cy,Ode,,X,Bonn,west,2024-03-05,silver,false,false,false,"
    "2026-05-01T00:00:00Z",
    "c3,cy@example.com,,Cy,Ode,,X,Bonn,west,2024-03-05,silver,false,false,false,"
    "2026-05-01T00:00:00Z",
]


def crm(customer_id: str, **fields: str) -> str:
    values = dict(
        zip(
            CRM_HEADER.split(","),
            (
                f"{customer_id},x@example.com,,X,Y,1980-01-01,F,Bonn,west,2024-01-01,none,"
                "true,false,false,2026-05-01T00:00:00Z"
            ).split(","),
            strict=True,
        )
    )
    return ",".join((values | fields).values())


CRM_BAD = [
    crm("b-crm-consent", consent_email="maybe"),
    crm("b-crm-no-offset", updated_at="2026-05-01T00:00:00"),
    crm("b-crm-birth", birth_date="31/02/1985"),
    crm("b-crm-tier", loyalty_tier="diamond"),
    crm("", city="b-crm-no-id"),
    crm("b-crm-long-email", email="a" * 2000 + "@example.com"),
    crm("b-crm-conflict", loyalty_tier="gold"),
    crm("b-crm-conflict", loyalty_tier="silver"),
    crm("b-crm-signup", signup_date="soon"),
    crm("b-crm-many-columns") + ",extra,extra",
    # accepted variants: an unknown gender is warned (gender_known), the row kept; yes/no, y/n,
    # t/f and 1/0 are booleans (Spark's cast)
    crm("v-crm-gender", gender="Q"),
    crm("v-crm-yes", consent_sms="yes"),
]

TRANSACTIONS_GOOD = [
    "o1,1,c1,i1,2,12.5,0,EUR,2026-06-01T10:05:00Z,web,,completed",
    "o1,2,c1,i2,1,30,5,EUR,2026-06-01T10:05:00Z,web,,completed",
]


def line(order_id: str, **fields: str) -> str:
    values = dict(
        zip(
            TRANSACTIONS_HEADER.split(","),
            f"{order_id},1,c1,i1,1,10,0,EUR,2026-06-02T10:00:00Z,web,,completed".split(","),
            strict=True,
        )
    )
    return ",".join((values | fields).values())


TRANSACTIONS_BAD = [
    line("b-tx-quantity-text", quantity="two"),
    line("b-tx-line-fraction", line_no="1.5"),
    line("b-tx-price-text", unit_price="12,50"),
    line("b-tx-refund-unknown", status="refunded"),
    line("b-tx-conflict", quantity="2"),
    line("b-tx-conflict", quantity="6"),
    line("b-tx-no-offset", order_time="2026-06-02 10:00:00"),
    line("b-tx-customer", customer_id="c999"),
    line("b-tx-status", status="pending"),
    line("b-tx-price", unit_price="-10"),
    line("b-tx-quantity", quantity="5000"),
    line("b-tx-future", order_time="2099-01-01T00:00:00Z"),
    # accepted variants
    line("o1", line_no="1", status="refunded", order_time="2026-06-05T10:00:00Z"),
    line("v-tx-cancelled", status="cancelled"),
    line("v-tx-dup"),
    line("v-tx-dup"),
    line("v-tx-usd", currency="USD"),
    line("v-tx-no-currency", currency=""),
    line("v-tx-jpy", currency="JPY", unit_price="1000"),
]

CATALOG_GOOD = [
    "i1,Book one,books,Acme,12.5,true,2026-01-01T00:00:00Z",
    "i2,Shoe two,fashion,Foot,30,true,2026-01-01T00:00:00Z",
    "v-cat-dup,Copy,books,Acme,5,true,2026-01-01T00:00:00Z",
    "v-cat-dup,Copy,books,Acme,5,true,2026-01-01T00:00:00Z",
]
CATALOG_BAD = [
    "b-cat-price-text,Bad,books,Acme,ten,true,2026-01-01T00:00:00Z",
    "b-cat-active-text,Bad,books,Acme,5,maybe,2026-01-01T00:00:00Z",
    "b-cat-conflict,One,books,Acme,5,true,2026-01-01T00:00:00Z",
    "b-cat-conflict,One,books,Acme,9,true,2026-01-01T00:00:00Z",
    "b-cat-no-category,Bad,,Acme,5,true,2026-01-01T00:00:00Z",
    f"b-cat-long-title,{'t' * 5000},books,Acme,5,true,2026-01-01T00:00:00Z",
    "b-cat-time-text,Bad,books,Acme,5,true,soon",
    # accepted: sources.catalog.time_zone (Europe/Berlin) gives a time without offset its zone
    "v-cat-local-time,Local,books,Acme,5,true,2026-01-01T10:00:00",
    "b-cat-price,Bad,books,Acme,-3,true,2026-01-01T00:00:00Z",
]

KINDS = (
    # events
    Kind("number field holds text", "events", "b-ev-price-text", ("field_types_valid",), "price"),
    Kind("number field holds a boolean", "events", "b-ev-price-bool", ("field_types_valid",),
         "price"),
    Kind("text field holds an object", "events", "b-ev-customer-object", ("field_types_valid",),
         "customer_id"),
    Kind("text field holds an array", "events", "b-ev-item-array", ("field_types_valid",),
         "item_id"),
    Kind("time without offset, no time_zone", "events", "b-ev-no-offset", ("event_time_valid",)),
    Kind("time that does not parse", "events", "b-ev-time-text", ("event_time_valid",)),
    Kind("time in the future", "events", "b-ev-future", ("event_time_not_future",)),
    Kind("purchase without customer", "events", "b-ev-purchase-anonymous",
         ("identified_event_has_customer",)),
    Kind("email open without customer", "events", "b-ev-email-anonymous",
         ("identified_event_has_customer",)),
    Kind("1 MB string", "events", "b-ev-megabyte", ("field_types_valid",), "search_query"),
    Kind("key longer than its limit", "events", "b-ev-long-id" + "9" * 200,
         ("field_types_valid",), "event_id"),
    Kind("same event_id, different content", "events", "b-ev-conflict",
         ("conflicting_duplicate",), rows=2),
    Kind("unknown event type", "events", "b-ev-type", ("event_type_known",)),
    Kind("no event_id", "events", "b-ev-no-id", ("event_id_present",)),
    Kind("no device_id", "events", "b-ev-no-device", ("device_id_present",)),
    Kind("item not in catalog", "events", "b-ev-item", ("event_item_known",)),
    Kind("negative event price", "events", "b-ev-negative-price", ("event_price_in_range",)),
    Kind("truncated JSON line", "events", "b-ev-truncated", ("well_formed_record",)),
    Kind("JSON line that is not an object", "events", "b-ev-array-line", ("well_formed_record",)),
    Kind("anonymous add_to_cart", "events", "v-ev-cart-anonymous"),
    Kind("number as a quoted string", "events", "v-ev-quoted-number"),
    Kind("number where text belongs", "events", "v-ev-numeric-id"),
    Kind("text that looks like an object", "events", "v-ev-braced-text"),
    Kind("unknown platform (warn)", "events", "v-ev-platform"),
    Kind("exact duplicate event", "events", "v-ev-dup"),
    Kind("field outside the contract (warn)", "events", "v-ev-extra"),
    # crm
    Kind("boolean field holds text", "crm", "b-crm-consent", ("field_types_valid",),
         "consent_email"),
    Kind("updated_at without offset", "crm", "b-crm-no-offset", ("updated_at_valid",)),
    Kind("impossible birth date", "crm", "b-crm-birth", ("birth_date_valid",)),
    Kind("unknown loyalty tier", "crm", "b-crm-tier", ("loyalty_tier_known",)),
    Kind("no customer_id", "crm", "b-crm-no-id", ("customer_id_present",)),
    Kind("email longer than its limit", "crm", "b-crm-long-email", ("field_types_valid",),
         "email"),
    Kind("same customer version, different content", "crm", "b-crm-conflict",
         ("conflicting_duplicate",), rows=2),
    Kind("signup date that does not parse", "crm", "b-crm-signup", ("signup_date_valid",)),
    Kind("CSV row with extra columns", "crm", "b-crm-many-columns", ("well_formed_record",)),
    Kind("exact duplicate CRM row", "crm", "c3"),
    Kind("unknown gender (warn)", "crm", "v-crm-gender"),
    Kind("boolean as yes", "crm", "v-crm-yes"),
    # transactions
    Kind("quantity holds text", "transactions", "b-tx-quantity-text", ("field_types_valid",),
         "quantity"),
    Kind("line_no with a fraction", "transactions", "b-tx-line-fraction",
         ("field_types_valid",), "line_no"),
    Kind("decimal comma in a price", "transactions", "b-tx-price-text", ("well_formed_record",)),
    Kind("refund of an unknown order", "transactions", "b-tx-refund-unknown",
         ("refund_of_unknown_order",)),
    Kind("same order line, different quantity", "transactions", "b-tx-conflict",
         ("conflicting_duplicate",), rows=2),
    Kind("order time without offset", "transactions", "b-tx-no-offset", ("order_time_valid",)),
    Kind("customer not in CRM", "transactions", "b-tx-customer", ("order_customer_known",)),
    Kind("unknown status", "transactions", "b-tx-status", ("status_known",)),
    Kind("negative unit price", "transactions", "b-tx-price", ("unit_price_in_range",)),
    Kind("absurd quantity", "transactions", "b-tx-quantity", ("quantity_in_range",)),
    Kind("order in the future", "transactions", "b-tx-future", ("order_time_not_future",)),
    Kind("refund of a known sale", "transactions", "o1"),
    Kind("cancelled line", "transactions", "v-tx-cancelled"),
    Kind("exact duplicate order line", "transactions", "v-tx-dup"),
    Kind("currency with a rate", "transactions", "v-tx-usd"),
    Kind("no currency", "transactions", "v-tx-no-currency"),
    Kind("currency without a rate (warn)", "transactions", "v-tx-jpy"),
    # catalog
    Kind("price holds text", "catalog", "b-cat-price-text", ("field_types_valid",), "price"),
    Kind("boolean holds text", "catalog", "b-cat-active-text", ("field_types_valid",), "active"),
    Kind("same item version, different content", "catalog", "b-cat-conflict",
         ("conflicting_duplicate",), rows=2),
    Kind("no category", "catalog", "b-cat-no-category", ("category_present",)),
    Kind("title longer than its limit", "catalog", "b-cat-long-title", ("field_types_valid",),
         "title"),
    Kind("updated_at that does not parse", "catalog", "b-cat-time-text", ("updated_at_valid",)),
    Kind("time without offset, source time_zone set", "catalog", "v-cat-local-time"),
    Kind("negative catalog price", "catalog", "b-cat-price", ("catalog_price_in_range",)),
    Kind("exact duplicate item", "catalog", "v-cat-dup"),
)  # fmt: skip

# Every good row and accepted variant, once: silver's exact keys.
EXPECTED_SILVER = {
    "events": sorted(
        [
            *("g-ev-view", "g-ev-search", "g-ev-purchase", "g-ev-email", "v-ev-cart-anonymous"),
            *("v-ev-quoted-number", "v-ev-numeric-id", "v-ev-platform", "v-ev-dup", "v-ev-extra"),
            "v-ev-braced-text",
        ]
    ),
    "customers": ["c1", "c2", "c3", "v-crm-gender", "v-crm-yes"],
    "order_lines": sorted(
        ["o1", "o1", "v-tx-cancelled", "v-tx-dup", "v-tx-usd", "v-tx-no-currency", "v-tx-jpy"]
    ),
    "items": ["i1", "i2", "v-cat-dup", "v-cat-local-time"],
}
SILVER_KEY = {"events": "event_id", "customers": "customer_id", "order_lines": "order_id",
              "items": "item_id"}  # fmt: skip


# A second batch re-sends four keys of the first: one exact copy (nothing to say) and, per
# source, one key with other contents (counted by changed_since_earlier_batch, a warning).
EVENTS_LATER = [event("g-ev-view"), event("v-ev-platform", platform="ios")]
CRM_LATER = [crm("v-crm-gender", gender="F")]
TRANSACTIONS_LATER = [line("v-tx-dup", quantity="2")]
CATALOG_LATER = ["v-cat-dup,Copy,books,Acme,6,true,2026-01-01T00:00:00Z"]


def write_landing(landing: Path) -> None:
    def write(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")

    events = [json.dumps(e) for e in EVENTS_GOOD + EVENTS_BAD] + EVENTS_RAW
    write(landing / "events" / "events.jsonl", events)
    write(landing / "crm" / "crm.csv", [CRM_HEADER, *CRM_GOOD, *CRM_BAD])
    write(landing / "transactions" / "t.csv", [TRANSACTIONS_HEADER, *TRANSACTIONS_GOOD,
                                               *TRANSACTIONS_BAD])  # fmt: skip
    write(landing / "catalog" / "catalog.csv", [CATALOG_HEADER, *CATALOG_GOOD, *CATALOG_BAD])


def write_later_batch(landing: Path) -> None:
    (landing / "events" / "events-2.jsonl").write_text(
        "\n".join(json.dumps(e) for e in EVENTS_LATER) + "\n"
    )
    (landing / "crm" / "crm-2.csv").write_text("\n".join([CRM_HEADER, *CRM_LATER]) + "\n")
    (landing / "transactions" / "t-2.csv").write_text(
        "\n".join([TRANSACTIONS_HEADER, *TRANSACTIONS_LATER]) + "\n"
    )
    (landing / "catalog" / "catalog-2.csv").write_text(
        "\n".join([CATALOG_HEADER, *CATALOG_LATER]) + "\n"
    )


@pytest.fixture(scope="module")
def corpus(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """One run for the whole corpus, with currency_known at `warn` (its default `fail` stops the
    run: tests/test_sources.py) to show that an unconverted amount is never summed, and a
    time_zone for catalog only (the other sources have none: their times need an offset)."""
    root = tmp_path_factory.mktemp("bad_input")
    write_landing(root / "landing")
    suites = suites_with(root, "transactions", "currency_known", severity="warn")
    sources = yaml.safe_load((CONF / "sources.yaml").read_text())
    sources["sources"]["catalog"]["time_zone"] = "Europe/Berlin"
    (root / "sources.yaml").write_text(yaml.safe_dump(sources))
    config = make_config(
        root,
        f"validate.expectations_dir={suites}",
        f"ingest.sources_file={root / 'sources.yaml'}",
        "currency.rates={USD: 0.9}",
    )
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, config, stage)
    write_later_batch(root / "landing")
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, config, stage)
    return config


def read(spark: SparkSession, config: Config, layer: Layer, name: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, layer, name))


def marked(df: DataFrame, source: str, key: str) -> DataFrame:
    """The rows of a kind: by key, or by a marker anywhere in the row's raw text."""
    raw = F.to_json(F.struct(*[F.col(c) for c in df.columns if not c.startswith("_")]))
    text = F.coalesce(F.col("_corrupt_record"), raw)
    return df.where((F.col(KEYS[source]) == key) | text.contains(f'"{key}"'))


def test_the_corpus_has_thirty_kinds_across_the_four_sources() -> None:
    assert len(KINDS) >= 30
    assert len({k.name + k.source for k in KINDS}) == len(KINDS)
    assert {k.source for k in KINDS} == set(KEYS)


@pytest.mark.parametrize("kind", [k for k in KINDS if k.quarantined], ids=lambda k: k.name)
def test_a_bad_row_is_quarantined_with_the_rule_it_broke(
    spark: SparkSession, corpus: Config, kind: Kind
) -> None:
    rows = marked(read(spark, corpus, Layer.QUARANTINE, kind.source), kind.source, kind.key)
    found = [(sorted(r["_failed_rules"]), r["_invalid_fields"]) for r in rows.collect()]
    assert found == [(sorted(kind.rules), kind.invalid)] * kind.rows


def test_quarantine_holds_the_bad_kinds_and_nothing_else(
    spark: SparkSession, corpus: Config
) -> None:
    for source in KEYS:
        expected = sum(k.rows for k in KINDS if k.source == source and k.quarantined)
        assert read(spark, corpus, Layer.QUARANTINE, source).count() == expected, source


def test_every_good_row_arrives_in_silver_exactly_once(spark: SparkSession, corpus: Config) -> None:
    for table, keys in EXPECTED_SILVER.items():
        got = read(spark, corpus, Layer.SILVER, table).select(SILVER_KEY[table]).collect()
        assert sorted(r[0] for r in got) == keys, table


def test_the_invalid_value_is_kept_as_it_came(spark: SparkSession, corpus: Config) -> None:
    """Quarantine keeps the raw line of a value the cast lost, and a long value itself."""
    events = read(spark, corpus, Layer.QUARANTINE, "events")
    price = marked(events, "events", "b-ev-price-text").select("price", "_corrupt_record").first()
    assert price is not None
    assert price["price"] is None
    assert json.loads(price["_corrupt_record"])["price"] == "abc"
    obj = marked(events, "events", "b-ev-customer-object").first()
    assert obj is not None
    assert json.loads(obj["_corrupt_record"])["customer_id"] == {"id": "c1"}
    long = marked(events, "events", "b-ev-megabyte").first()
    assert long is not None
    assert long["search_query"] == MEGABYTE


def test_accepted_variants_hold_what_the_contract_says(spark: SparkSession, corpus: Config) -> None:
    events = read(spark, corpus, Layer.SILVER, "events")
    variant = {r["event_id"]: r for r in events.where("event_id LIKE 'v-%'").collect()}
    assert variant["v-ev-quoted-number"]["price"] == 7.5
    assert variant["v-ev-numeric-id"]["customer_id"] == "31"
    assert variant["v-ev-braced-text"]["search_query"] == '{"q": "[1]"}'
    assert variant["v-ev-cart-anonymous"]["customer_id"] is None
    local = read(spark, corpus, Layer.SILVER, "items").where("item_id = 'v-cat-local-time'")
    assert [str(r["updated_at"]) for r in local.collect()] == ["2026-01-01 09:00:00"]
    customer = read(spark, corpus, Layer.SILVER, "customers").where("customer_id = 'v-crm-yes'")
    assert [r["consent_sms"] for r in customer.collect()] == [True]
    lines = read(spark, corpus, Layer.SILVER, "order_lines").select(
        "order_id", "line_no", "currency", "original_currency", "unit_price", "net_quantity",
        "net_amount", "status",
    )  # fmt: skip
    got = {(r["order_id"], r["line_no"]): tuple(r)[2:] for r in lines.collect()}
    assert got == {
        ("o1", 1): ("EUR", "EUR", 12.5, 1, 12.5, "partially_refunded"),
        ("o1", 2): ("EUR", "EUR", 30.0, 1, 25.0, "completed"),
        ("v-tx-cancelled", 1): ("EUR", "EUR", 10.0, 0, 0.0, "cancelled"),
        # re-sent in the second batch with quantity 2: the earliest sale stays, the change is
        # counted (test_a_key_resent_later_with_other_contents_is_counted_not_silent)
        ("v-tx-dup", 1): ("EUR", "EUR", 10.0, 1, 10.0, "completed"),
        ("v-tx-usd", 1): ("EUR", "USD", 9.0, 1, 9.0, "completed"),
        ("v-tx-no-currency", 1): (None, None, 10.0, 1, 10.0, "completed"),
        # no rate: not summed as euros (null amounts), counted by currency_known
        ("v-tx-jpy", 1): (None, "JPY", None, 1, None, "completed"),
    }


def test_warned_kinds_are_counted_in_the_validation_results(
    spark: SparkSession, corpus: Config
) -> None:
    results = read(spark, corpus, Layer.OPS, "validation_results").where("batch_from = 1")
    warned = results.where("severity = 'warn' AND rows_broken > 0").select(
        "table", "rule", "rows_broken"
    )
    assert sorted(tuple(r) for r in warned.collect()) == [
        ("crm", "gender_known", 1),
        ("events", "no_unexpected_fields", 1),
        ("events", "platform_known", 1),
        ("transactions", "currency_known", 1),
    ]


def test_a_key_resent_later_with_other_contents_is_counted_not_silent(
    spark: SparkSession, corpus: Config
) -> None:
    later = read(spark, corpus, Layer.OPS, "validation_results").where("batch_from = 2")
    broken = later.where("rows_broken > 0").select("table", "rule", "severity", "rows_broken")
    assert sorted(tuple(r) for r in broken.collect()) == [
        ("catalog", "changed_since_earlier_batch", "warn", 1),
        ("crm", "changed_since_earlier_batch", "warn", 1),
        ("events", "changed_since_earlier_batch", "warn", 1),
        ("transactions", "changed_since_earlier_batch", "warn", 1),
    ]
    # What silver then holds: the first version of an event and of an order line (its earliest
    # sale, the first delivered on equal times), the later batch's for the same updated_at.
    events = read(spark, corpus, Layer.SILVER, "events").where("event_id = 'v-ev-platform'")
    assert [r["platform"] for r in events.collect()] == ["tv"]
    items = read(spark, corpus, Layer.SILVER, "items").where("item_id = 'v-cat-dup'")
    assert [r["price"] for r in items.collect()] == [6.0]
    customers = read(spark, corpus, Layer.SILVER, "customers")
    assert [r["gender"] for r in customers.where("customer_id = 'v-crm-gender'").collect()] == ["F"]
