"""Sources on the user's terms (conf/sources.yaml): their columns, formats, times and money, and
sources that are absent or empty, through ingest -> validate -> silver with exact outcomes."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import DataFrame, SparkSession

from precision_marketing.config import Config, ConfigError
from precision_marketing.contracts import SOURCES
from precision_marketing.ingest.mapping import parse_sources
from precision_marketing.io import tables, watermarks
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import DataQualityError
from tests.support import make_config, run_stage

SILVER_TABLES = ("events", "customers", "customer_history", "order_lines", "items")

# A store's invoice export: its own names, ";" separated, local New York times, in dollars.
INVOICES = """InvoiceNo;Line;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID
536365;1;SKU1;Mug;6;12/1/2010 8:26;2.5;17850
536365;2;SKU2;Lamp;2;12/1/2010 8:26;10;17850
536370;1;SKU1;Mug;3;6/15/2011 13:05;2.5;12583
536371;1;SKU2;Lamp;1;13/45/2011 99:00;10;12583
"""
# Its CRM: ids and sign-up dates (day.month.year) only, one date that does not exist.
CUSTOMERS = """Customer,Joined
17850,01.12.2010
12583,15.01.2011
99999,31.02.2011
"""
# Click stream with short keys and Tokyo wall-clock times.
EVENTS = (
    '{"id":"v1","device":"d1","user":"17850","type":"product_view","sku":"SKU1",'
    '"when":"2011-06-15 09:00:00","platform":"web"}\n'
    '{"id":"v2","device":"d2","user":null,"type":"page_view","when":"2011-06-16 08:30:00",'
    '"platform":"ios","extra":1}\n'
)
MAPPED_SOURCES = {
    "sources": {
        "transactions": {
            "folder": "invoices",
            "format": "csv",
            "delimiter": ";",
            "columns": {
                "order_id": "InvoiceNo",
                "line_no": "Line",
                "item_id": "StockCode",
                "quantity": "Quantity",
                "order_time": "InvoiceDate",
                "unit_price": "UnitPrice",
                "customer_id": "CustomerID",
            },
            "constants": {"channel": "store", "currency": "USD", "status": "completed"},
            "timestamp_format": "M/d/yyyy H:mm",
            "time_zone": "America/New_York",
        },
        "crm": {
            "folder": "customers",
            "format": "csv",
            "columns": {"customer_id": "Customer", "signup_date": "Joined"},
            "constants": {"updated_at": "2011-12-31T00:00:00Z"},
            "date_format": "dd.MM.yyyy",
        },
        "events": {
            "folder": "clicks",
            "format": "jsonl",
            "columns": {
                "event_id": "id",
                "device_id": "device",
                "customer_id": "user",
                "event_type": "type",
                "item_id": "sku",
                "event_time": "when",
                "utm_campaign": "campaign",
            },
            "timestamp_format": "yyyy-MM-dd HH:mm:ss",
            "time_zone": "Asia/Tokyo",
        },
        "catalog": {
            "folder": "products",
            "format": "parquet",
            "columns": {
                "item_id": "sku",
                "title": "name",
                "category": "genre",
                "price": "cost",
                "updated_at": "modified",
            },
        },
    }
}


def run_foundation(spark: SparkSession, config: Config) -> None:
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, config, stage)


def silver(spark: SparkSession, config: Config, table: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, Layer.SILVER, table))


def write_products(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    products = pa.table(
        {
            "sku": ["SKU1", "SKU2"],
            "name": ["Mug", "Lamp"],
            "genre": ["home", "home"],
            "cost": pa.array([3, 12], pa.int64()),
            "modified": pa.array(
                [datetime(2010, 11, 1, 12, 0), datetime(2010, 11, 2, 12, 0)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    pq.write_table(products, path)


@pytest.fixture(scope="module")
def mapped(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("mapped")
    landing = root / "landing"
    for folder, name, text in (
        ("invoices", "2011.csv", INVOICES),
        ("customers", "crm.csv", CUSTOMERS),
        ("clicks", "2011-06.jsonl", EVENTS),
    ):
        (landing / folder).mkdir(parents=True)
        (landing / folder / name).write_text(text)
    write_products(landing / "products" / "products.parquet")
    sources = root / "my-sources.yaml"
    sources.write_text(yaml.safe_dump(MAPPED_SOURCES))
    config = make_config(root, f"ingest.sources_file={sources}", "currency.rates={USD: 0.5}")
    run_foundation(spark, config)
    return config


def test_a_csv_in_its_own_names_zone_and_currency_lands_in_order_lines(
    spark: SparkSession, mapped: Config
) -> None:
    lines = silver(spark, mapped, "order_lines").orderBy("order_id", "line_no")
    columns = [
        "order_id", "line_no", "customer_id", "item_id", "quantity", "unit_price",
        "original_unit_price", "currency", "original_currency", "gross_amount", "net_amount",
        "order_ts", "channel", "status",
    ]  # fmt: skip
    assert [tuple(r) for r in lines.select(*columns).collect()] == [
        ("536365", 1, "17850", "SKU1", 6, 1.25, 2.5, "EUR", "USD", 7.5, 7.5,
         datetime(2010, 12, 1, 13, 26), "store", "completed"),
        ("536365", 2, "17850", "SKU2", 2, 5.0, 10.0, "EUR", "USD", 10.0, 10.0,
         datetime(2010, 12, 1, 13, 26), "store", "completed"),
        ("536370", 1, "12583", "SKU1", 3, 1.25, 2.5, "EUR", "USD", 3.75, 3.75,
         datetime(2011, 6, 15, 17, 5), "store", "completed"),
    ]  # fmt: skip
    bronze = tables.read(spark, tables.table_path(mapped, Layer.BRONZE, "transactions"))
    times = bronze.select("order_id", "order_time", "_unexpected_fields").distinct()
    assert sorted(tuple(r) for r in times.collect()) == [
        ("536365", "2010-12-01T08:26:00-05:00", "Description"),
        ("536370", "2011-06-15T13:05:00-04:00", "Description"),
        # did not parse: kept as it came, and quarantined
        ("536371", "13/45/2011 99:00", "Description"),
    ]
    quarantine = tables.read(spark, tables.table_path(mapped, Layer.QUARANTINE, "transactions"))
    assert [tuple(r) for r in quarantine.select("order_id", "_failed_rules").collect()] == [
        ("536371", ["order_time_valid"])
    ]


def test_a_bare_crm_with_its_own_date_format(spark: SparkSession, mapped: Config) -> None:
    customers = silver(spark, mapped, "customers").orderBy("customer_id")
    rows = customers.select("customer_id", "signup_date", "updated_at").collect()
    assert [(r[0], r[1].isoformat(), r[2]) for r in rows] == [
        ("12583", "2011-01-15", datetime(2011, 12, 31)),
        ("17850", "2010-12-01", datetime(2011, 12, 31)),
    ]


def test_json_lines_under_other_keys_and_a_zone(spark: SparkSession, mapped: Config) -> None:
    events = silver(spark, mapped, "events").orderBy("event_id")
    columns = ["event_id", "device_id", "customer_id", "event_type", "item_id", "event_ts"]
    assert [tuple(r) for r in events.select(*columns, "event_date").collect()] == [
        ("v1", "d1", "17850", "product_view", "SKU1", datetime(2011, 6, 15, 0, 0),
         datetime(2011, 6, 15).date()),
        ("v2", "d2", None, "page_view", None, datetime(2011, 6, 15, 23, 30),
         datetime(2011, 6, 15).date()),
    ]  # fmt: skip
    bronze = tables.read(spark, tables.table_path(mapped, Layer.BRONZE, "events"))
    assert sorted(tuple(r) for r in bronze.select("event_id", "_unexpected_fields").collect()) == [
        ("v1", None),
        ("v2", "extra"),
    ]


def test_parquet_with_its_own_types(spark: SparkSession, mapped: Config) -> None:
    items = silver(spark, mapped, "items").orderBy("item_id")
    columns = ["item_id", "title", "category", "price", "updated_at"]
    assert [tuple(r) for r in items.select(*columns).collect()] == [
        ("SKU1", "Mug", "home", 3.0, datetime(2010, 11, 1, 12, 0)),
        ("SKU2", "Lamp", "home", 12.0, datetime(2010, 11, 2, 12, 0)),
    ]


def test_a_mapped_column_no_file_has_is_named_once(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "landing" / "clicks").mkdir(parents=True)
    (tmp_path / "landing" / "clicks" / "a.jsonl").write_text(EVENTS)
    events_only = {"sources": {"events": MAPPED_SOURCES["sources"]["events"]}}
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(events_only))
    config = make_config(tmp_path, f"ingest.sources_file={sources}")
    with caplog.at_level(logging.WARNING, logger="precision_marketing"):
        run_stage(spark, config, "ingest")
    unmapped = [r.getMessage() for r in caplog.records if "no file of this batch" in r.message]
    assert unmapped == [
        "events: sources.events.columns.utm_campaign names column 'campaign', which no file "
        "of this batch has: utm_campaign is null"
    ]
    absent = sorted(r.getMessage() for r in caplog.records if "will be empty" in r.message)
    assert [m.split(":")[0] for m in absent] == ["catalog", "crm", "transactions"]


@pytest.fixture(scope="module")
def sparse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """No crm folder, a 0-byte events file, a header-only transactions CSV, two items."""
    root = tmp_path_factory.mktemp("sparse")
    landing = root / "landing"
    for folder in ("events", "transactions", "catalog"):
        (landing / folder).mkdir(parents=True)
    (landing / "events" / "2026-06-01.jsonl").write_text("")
    (landing / "transactions" / "2026-06-01.csv").write_text(
        "order_id,line_no,customer_id,item_id,quantity,unit_price,discount,currency,order_time,"
        "channel,store_id,status\n"
    )
    (landing / "catalog" / "catalog.csv").write_text(
        "item_id,title,category,brand,price,active,updated_at\n"
        "i1,Book one,books,Acme,12.5,true,2026-01-01T00:00:00Z\n"
        "i2,Shoe two,fashion,Foot,30,true,2026-01-01T00:00:00Z\n"
    )
    config = make_config(root)
    run_foundation(spark, config)
    return config


def test_absent_and_empty_sources_leave_every_silver_table_typed_and_empty(
    spark: SparkSession, sparse: Config, mapped: Config
) -> None:
    counts = {t: silver(spark, sparse, t).count() for t in SILVER_TABLES}
    assert counts == {
        "events": 0,
        "customers": 0,
        "customer_history": 0,
        "order_lines": 0,
        "items": 2,
    }
    for table in SILVER_TABLES:  # the very schema the table has when data flows
        assert (table, silver(spark, sparse, table).schema) == (
            table,
            silver(spark, mapped, table).schema,
        )
    marks = {t: watermarks.get(spark, sparse, "validate", t) for t in ("events", "transactions")}
    assert marks == {"events": 1, "transactions": 1}


def test_rows_after_an_empty_start_flow_into_the_existing_tables(
    spark: SparkSession, sparse: Config
) -> None:
    landing = Path(sparse.storage.landing)
    (landing / "events" / "2026-06-02.jsonl").write_text(
        '{"event_id":"e1","device_id":"d1","event_type":"page_view",'
        '"event_time":"2026-06-02T08:00:00Z","platform":"web"}\n'
    )
    # No CRM at all: the customer reference cannot be checked, so the line is kept.
    (landing / "transactions" / "2026-06-02.csv").write_text(
        "order_id,line_no,customer_id,item_id,quantity,unit_price,currency,order_time,status\n"
        "o1,1,c1,i1,2,12.5,EUR,2026-06-02T09:00:00Z,completed\n"
    )
    run_foundation(spark, sparse)
    assert silver(spark, sparse, "events").count() == 1
    assert watermarks.get(spark, sparse, "validate", "events") == 2
    lines = silver(spark, sparse, "order_lines").select("order_id", "customer_id", "net_amount")
    assert [tuple(r) for r in lines.collect()] == [("o1", "c1", 25.0)]


def test_a_currency_without_a_rate_stops_validate(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for folder in ("crm", "transactions", "catalog"):
        (landing / folder).mkdir(parents=True)
    (landing / "crm" / "crm.csv").write_text(
        "customer_id,signup_date,updated_at\nc1,2026-01-01,2026-01-01T00:00:00Z\n"
    )
    (landing / "catalog" / "catalog.csv").write_text(
        "item_id,category,price,updated_at\ni1,books,10,2026-01-01T00:00:00Z\n"
    )
    (landing / "transactions" / "t.csv").write_text(
        "order_id,line_no,customer_id,item_id,quantity,unit_price,currency,order_time,status\n"
        "o1,1,c1,i1,1,1000,JPY,2026-06-01T10:00:00Z,completed\n"
        "o2,1,c1,i1,1,1000,JPY,2026-06-01T10:00:00Z,completed\n"
        "o3,1,c1,i1,1,10,USD,2026-06-01T10:00:00Z,completed\n"
        "o4,1,c1,i1,1,10,EUR,2026-06-01T10:00:00Z,completed\n"
    )
    config = make_config(tmp_path, "currency.rates={USD: 0.9}")
    run_stage(spark, config, "ingest")
    with pytest.raises(DataQualityError) as stop:
        run_stage(spark, config, "validate")
    assert str(stop.value) == (
        "table 'transactions' expectation 'currency_known' (expect_column_values_to_be_in_set) "
        "failed: 2 of 4 rows unexpected; values: JPY (2 rows)"
    )
    assert watermarks.get(spark, config, "validate", "transactions") == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"columns": {"order_number": "InvoiceNo"}},
            "'sources.transactions.columns.order_number' is not a field of the transactions",
        ),
        (
            {"constants": {"shop": "x"}},
            "'sources.transactions.constants.shop' is not a field of the transactions",
        ),
        ({"format": "xlsx"}, "'sources.transactions.format': 'xlsx' is not one of"),
        ({"time_zone": "Mars/Base"}, "'sources.transactions.time_zone': unknown time zone"),
        ({"folderr": "x"}, "unknown key 'sources.transactions.folderr'"),
    ],
)
def test_a_wrong_mapping_names_its_dotted_key(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": {"transactions": {"folder": "t", **change}}}))
    with pytest.raises(ConfigError) as error:
        parse_sources(path)
    assert message in str(error.value)


def test_the_default_sources_file_maps_the_contract_one_to_one() -> None:
    config = make_config(Path("/tmp/unused"))
    mapped = parse_sources(config.sources_path())
    assert {n: (m.folder, m.fmt, m.read_columns()) for n, m in mapped.items()} == {
        n: (s.folder, s.fmt, {f: f for f in s.schema.fieldNames()}) for n, s in SOURCES.items()
    }


def test_an_export_without_line_numbers_or_change_times_gets_them_derived(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines are numbered by item, so a refund in a later file nets off its sale; a CRM
    without updated_at holds since the epoch, and a later export replaces the current state."""
    landing = tmp_path / "landing"
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        yaml.safe_dump(
            {
                "sources": {
                    "transactions": {"format": "csv", "constants": {"currency": "EUR"}},
                    "crm": {"format": "csv"},
                }
            }
        )
    )
    config = make_config(tmp_path, f"ingest.sources_file={sources}")
    header = "order_id,item_id,customer_id,quantity,unit_price,order_time,status\n"
    batches = [
        (
            "A1,SKU1,C1,2,5.0,2011-06-01T10:00:00Z,completed\n"
            "A1,SKU2,C1,1,8.0,2011-06-01T10:00:00Z,completed\n"
            "A2,SKU2,C2,3,8.0,2011-06-02T11:00:00Z,completed\n",
            "customer_id,signup_date,consent_email\nC1,2011-01-01,false\nC2,2011-02-01,true\n",
        ),
        (
            "A1,SKU2,C1,1,8.0,2011-06-05T09:00:00Z,refunded\n",
            "customer_id,signup_date,consent_email\nC1,2011-01-01,true\n",
        ),
    ]
    for n, (orders, crm) in enumerate(batches, start=1):
        for folder, text in (("transactions", header + orders), ("crm", crm)):
            (landing / folder).mkdir(parents=True, exist_ok=True)
            (landing / folder / f"export-{n}.csv").write_text(text)
        with caplog.at_level(logging.WARNING, logger="precision_marketing"):
            run_foundation(spark, config)
    lines = silver(spark, config, "order_lines")
    found = lines.select("order_id", "item_id", "line_no", "net_quantity", "status").collect()
    assert sorted(tuple(r)[:2] + tuple(r)[3:] for r in found) == [
        ("A1", "SKU1", 2, "completed"),
        ("A1", "SKU2", 0, "refunded"),
        ("A2", "SKU2", 3, "completed"),
    ]
    line_of = {(r["order_id"], r["item_id"]): r["line_no"] for r in found}
    assert line_of[("A1", "SKU2")] == line_of[("A2", "SKU2")] > 0  # the item's number
    assert line_of[("A1", "SKU1")] != line_of[("A1", "SKU2")]
    customers = silver(spark, config, "customers").orderBy("customer_id")
    assert [
        tuple(r) for r in customers.select("customer_id", "consent_email", "updated_at").collect()
    ] == [
        ("C1", True, datetime(1970, 1, 1)),
        ("C2", True, datetime(1970, 1, 1)),
    ]
    warnings = {r.getMessage() for r in caplog.records if "column:" in r.getMessage()}
    assert warnings == {
        "transactions: no line_no column: lines are numbered by item_id, so two lines of one "
        "item in an order count as one (the later one); map line_no if the export has a line "
        "number",
        "crm: no updated_at column: every row counts as the customer's state since "
        "1970-01-01T00:00:00Z (signup_date still decides who existed when); map updated_at to "
        "keep CRM history point in time",
    }
