"""The synthetic generator on 100 customers: layout, rules, defects, counts, truth, determinism.

The landing files are read back with plain Python (csv, json, datetime), and every rule is
re-implemented here, so nothing is checked with the code under test.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from precision_marketing import contracts
from precision_marketing.config import Config, ConfigError
from precision_marketing.generate import generate as gen
from precision_marketing.generate import job, model
from precision_marketing.io import tables
from precision_marketing.runtime import JobContext
from tests.support import RUN_DATE, make_config, run_stage

RUN_MIDNIGHT = datetime(RUN_DATE.year, RUN_DATE.month, RUN_DATE.day, tzinfo=UTC)
EVENT_FIELDS = set(contracts.EVENTS.fieldNames())
CRM_FIELDS = contracts.CRM.fieldNames()
TRANSACTION_FIELDS = contracts.TRANSACTIONS.fieldNames()
CATALOG_FIELDS = contracts.CATALOG.fieldNames()
MARKER = re.compile(r"dfx-(events|crm|transactions|catalog)-\d+")


# ------------------------------------------------------------------------------------------
# Reading the landing folder back.


@dataclass
class CsvFile:
    path: Path
    header: list[str]
    rows: list[dict[str, str]]


@dataclass
class Landing:
    root: Path
    events: list[tuple[Path, str]] = field(default_factory=list)
    csv: dict[str, list[CsvFile]] = field(default_factory=dict)

    def rows(self, source: str) -> list[tuple[CsvFile, dict[str, str]]]:
        return [(f, row) for f in self.csv[source] for row in f.rows]


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))


def read_landing(root: Path) -> Landing:
    landing = Landing(root)
    for path in data_files(root / "events"):
        landing.events += [(path, line) for line in path.read_text().splitlines()]
    for source in ("crm", "transactions", "catalog"):
        landing.csv[source] = []
        for path in data_files(root / source):
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
                landing.csv[source].append(CsvFile(path, list(reader.fieldnames or []), rows))
    return landing


def folder_lines(root: Path) -> dict[str, list[str]]:
    """Every folder's lines (all its files together, sorted): file names are Spark's own."""
    lines: dict[str, list[str]] = defaultdict(list)
    for path in data_files(root):
        lines[str(path.parent.relative_to(root))] += path.read_text().splitlines()
        if path.name.startswith("dfx-"):
            lines[str(path.relative_to(root))].append(f"<{path.stat().st_size} bytes>")
    return {folder: sorted(found) for folder, found in lines.items()}


# ------------------------------------------------------------------------------------------
# The rules, re-implemented: each returns the names of the rules a row breaks.


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def parse_date(text: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def number(text: str, kind: type = float) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError):
        return None


def event_failures(line: str, items: set[str]) -> set[str]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return {"well_formed_record"}
    if not isinstance(rec, dict):
        return {"well_formed_record"}
    ts = parse_time(rec.get("event_time"))
    price = rec.get("price")
    checks = {
        "event_id_present": rec.get("event_id") is not None,
        "device_id_present": rec.get("device_id") is not None,
        "event_type_known": rec.get("event_type") in contracts.EVENT_TYPES,
        "platform_known": rec.get("platform") in contracts.PLATFORMS,
        "event_time_valid": ts is not None,
        "event_time_not_future": ts is None or ts < RUN_MIDNIGHT,
        "event_item_known": rec.get("item_id") is None or rec["item_id"] in items,
        "event_price_in_range": price is None or 0 <= price <= 100_000,
        "no_unexpected_fields": not set(rec) - EVENT_FIELDS,
    }
    return {rule for rule, ok in checks.items() if not ok}


def crm_failures(row: dict[str, str], header: list[str]) -> set[str]:
    birth = parse_date(row["birth_date"])
    checks = {
        "customer_id_present": bool(row["customer_id"]),
        "birth_date_valid": birth is not None,
        "birth_date_plausible": birth is None or date(1900, 1, 1) <= birth <= RUN_DATE,
        "signup_date_valid": parse_date(row["signup_date"]) is not None,
        "updated_at_valid": parse_time(row["updated_at"]) is not None,
        "loyalty_tier_known": row["loyalty_tier"] in contracts.LOYALTY_TIERS,
        "gender_known": row["gender"] in contracts.GENDERS,
        "email_format": bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", row["email"])),
        "consents_boolean": all(
            row[f"consent_{c}"] in ("true", "false") for c in contracts.CONSENT_CHANNELS
        ),
        "no_unexpected_fields": set(header) <= set(CRM_FIELDS),
    }
    return {rule for rule, ok in checks.items() if not ok}


def transaction_failures(row: dict[str, str], customers: set[str], items: set[str]) -> set[str]:
    quantity, price = number(row["quantity"], int), number(row["unit_price"])
    discount = number(row["discount"]) if row["discount"] else None
    ts = parse_time(row["order_time"])
    checks = {
        "order_id_present": bool(row["order_id"]),
        "line_no_present": number(row["line_no"], int) is not None,
        "quantity_in_range": quantity is not None and 1 <= quantity <= 1000,
        "unit_price_in_range": price is not None and 0 <= price <= 100_000,
        "discount_in_range": discount is None
        or quantity is None
        or price is None
        or 0 <= discount <= price * quantity + 1e-9,
        "order_time_valid": ts is not None,
        "order_time_not_future": ts is None or ts < RUN_MIDNIGHT,
        "order_customer_known": row["customer_id"] in customers,
        "order_item_known": row["item_id"] in items,
        "status_known": row["status"] in contracts.ORDER_STATUSES,
        "currency_known": row["currency"] in contracts.CURRENCIES,
        "channel_known": row["channel"] in contracts.SALES_CHANNELS,
    }
    return {rule for rule, ok in checks.items() if not ok}


def catalog_failures(row: dict[str, str]) -> set[str]:
    price = number(row["price"])
    checks = {
        "item_id_present": bool(row["item_id"]),
        "catalog_price_in_range": price is not None and 0 <= price <= 100_000,
        "category_known": row["category"] in model.CATEGORY_NAMES,
        "active_boolean": row["active"] in ("true", "false"),
        "updated_at_valid": parse_time(row["updated_at"]) is not None,
    }
    return {rule for rule, ok in checks.items() if not ok}


# ------------------------------------------------------------------------------------------
# One generation shared by the module (plus two more for the determinism test).


@dataclass
class Generated:
    config: Config
    landing: Landing
    truth: dict[str, list[dict[str, Any]]]

    def marked(self, row_text: str) -> str | None:
        found = MARKER.search(row_text)
        return found.group(0) if found else None


def generate(spark: SparkSession, tmp: Path, **options: Any) -> Config:
    config = make_config(tmp)
    run_stage(spark, config, "generate", **options)
    return config


@pytest.fixture(scope="module")
def generated(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    config = generate(spark, tmp_path_factory.mktemp("generate"))
    truth = {
        name: [
            row.asDict()
            for row in spark.read.format("delta").load(tables.ground_truth(config, name)).collect()
        ]
        for name in ("customers", "item_preferences", "defects", "counts", "generation")
    }
    return Generated(config, read_landing(Path(tables.landing(config))), truth)


@pytest.fixture(scope="module")
def clean_ids(generated: Generated) -> dict[str, set[str]]:
    """Keys of the clean CRM customers and catalog items (what the references point to)."""
    land = generated.landing
    return {
        "customers": {
            row["customer_id"]
            for _, row in land.rows("crm")
            if not generated.marked(row["city"]) and row["customer_id"]
        },
        "items": {
            row["item_id"] for _, row in land.rows("catalog") if not generated.marked(row["title"])
        },
    }


# ------------------------------------------------------------------------------------------
# Tests.


def test_layout_follows_the_contract(generated: Generated) -> None:
    root = generated.landing.root
    parts = {f"part={i:02d}" for i in range(1, 5)}
    assert {p.name for p in (root / "events").iterdir() if p.is_dir()} == parts
    assert {p.name for p in (root / "transactions").iterdir() if p.is_dir()} == parts
    exports = {p.name for p in (root / "crm").iterdir() if p.is_dir()}
    assert exports == {"export=01", "export=02", "export=03"}
    (catalog_file,) = generated.landing.csv["catalog"]
    assert catalog_file.header == CATALOG_FIELDS
    for f in generated.landing.csv["transactions"]:
        if f.path.stat().st_size:
            assert f.header == TRANSACTION_FIELDS
    for f in generated.landing.csv["crm"]:
        extra = ["loyalty_points"] if f.path.parent.name == "export=02" else []
        assert f.header == [*CRM_FIELDS, *extra]


def test_clean_rows_satisfy_every_rule(
    generated: Generated, clean_ids: dict[str, set[str]]
) -> None:
    land, marked = generated.landing, generated.marked
    customers, items = clean_ids["customers"], clean_ids["items"]
    extra_field = {
        d["record_key"] for d in generated.truth["defects"] if d["kind"] == "extra_field"
    }
    for _, line in land.events:
        if '"session_id":"dfx-' in line:
            continue
        expected = (
            {"no_unexpected_fields"} if json.loads(line)["event_id"] in extra_field else set()
        )
        assert event_failures(line, items) == expected, line
    for f, row in land.rows("crm"):
        if not marked(row["city"]):
            extra = {"no_unexpected_fields"} if "loyalty_points" in f.header else set()
            assert crm_failures(row, f.header) == extra, row
            birth = date.fromisoformat(row["birth_date"])
            assert 16 <= (RUN_DATE - birth).days / 365.25 <= 95
    for _, row in land.rows("transactions"):
        if not marked(row["store_id"]):
            assert transaction_failures(row, customers, items) == set(), row
            assert row["discount"] != ""
            assert (row["store_id"] != "") == (row["channel"] == "store")
    for _, row in land.rows("catalog"):
        if not marked(row["title"]):
            assert catalog_failures(row) == set(), row


def test_every_defect_breaks_exactly_its_rule(
    generated: Generated, clean_ids: dict[str, set[str]]
) -> None:
    land, defects = generated.landing, generated.truth["defects"]
    customers, items = clean_ids["customers"], clean_ids["items"]
    broken: dict[str, set[str]] = {}
    for _, line in land.events:
        if (marker := generated.marked(line)) and '"session_id":"dfx-' in line:
            broken[marker] = event_failures(line, items)
    for f, row in land.rows("crm"):
        if marker := generated.marked(row["city"]):
            broken[marker] = crm_failures(row, f.header)
    for _, row in land.rows("transactions"):
        if marker := generated.marked(row["store_id"]):
            broken[marker] = transaction_failures(row, customers, items)
    for _, row in land.rows("catalog"):
        if marker := generated.marked(row["title"]):
            broken[marker] = catalog_failures(row)
    row_defects = {
        d["marker"]: d["expected_rule"]
        for d in defects
        if d["marker_field"] in ("session_id", "city", "store_id", "title")
    }
    assert set(broken) == set(row_defects)
    for marker, rule in row_defects.items():
        assert broken[marker] == {rule}, (marker, broken[marker])


def test_every_defect_kind_is_present_and_marked_once(generated: Generated) -> None:
    defects = generated.truth["defects"]
    kinds = Counter((d["source"], d["kind"]) for d in defects)
    assert set(kinds) == {(k.source, k.kind) for k in model.DEFECT_KINDS}
    assert len({d["marker"] for d in defects}) == len(defects)
    for d in defects:
        kind = next(k for k in model.DEFECT_KINDS if (k.source, k.kind) == (d["source"], d["kind"]))
        assert (d["expected_rule"], d["marker_field"]) == (kind.expected_rule, kind.marker_field)
        assert d["marker"].startswith(f"dfx-{d['source']}-")
    # Every marker written into a row appears in exactly one row of its source.
    land = generated.landing
    found: Counter[str] = Counter()
    found.update(m for _, line in land.events if (m := generated.marked(line)))
    for source, column in (("crm", "city"), ("transactions", "store_id"), ("catalog", "title")):
        found.update(m for _, row in land.rows(source) if (m := generated.marked(row[column])))
    in_rows = [d["marker"] for d in defects if d["marker_field"] not in (None, "file_name")]
    assert sorted(found.elements()) == sorted(in_rows)


def test_file_level_defects(generated: Generated) -> None:
    by_kind = {d["kind"]: d for d in generated.truth["defects"] if d["rows"] != 1}
    empty = generated.landing.root / by_kind["empty_file"]["location"]
    assert empty.stat().st_size == 0
    assert by_kind["empty_file"]["marker"] in empty.name
    extra = by_kind["extra_column"]
    (extra_file,) = [
        f for f in generated.landing.csv["crm"] if str(f.path.parent).endswith(extra["location"])
    ]
    assert extra_file.header[-1] == "loyalty_points"
    assert extra["rows"] == len(extra_file.rows) > 0


def test_duplicates_are_exact_copies_in_another_file(generated: Generated) -> None:
    duplicates = [d for d in generated.truth["defects"] if d["kind"] == "duplicate_event"]
    lines_by_id: dict[str, list[tuple[Path, str]]] = defaultdict(list)
    for path, line in generated.landing.events:
        if '"event_id":"' in line and '"session_id":"dfx-' not in line:
            lines_by_id[json.loads(line)["event_id"]].append((path, line))
    repeated = {key for key, found in lines_by_id.items() if len(found) > 1}
    assert repeated == {d["record_key"] for d in duplicates}
    for key in repeated:
        (first_path, first), (second_path, second) = lines_by_id[key]
        assert first == second
        assert first_path != second_path


def test_counts_table_matches_the_files(generated: Generated) -> None:
    land, marked = generated.landing, generated.marked
    counts = {c["source"]: (c["rows"], c["distinct_keys"]) for c in generated.truth["counts"]}
    event_ids = [
        json.loads(line)["event_id"] for _, line in land.events if '"session_id":"dfx-' not in line
    ]
    n_duplicates = sum(1 for d in generated.truth["defects"] if d["kind"] == "duplicate_event")
    assert counts["events"] == (len(event_ids) - n_duplicates, len(set(event_ids)))
    crm = [row for _, row in land.rows("crm") if not marked(row["city"])]
    assert counts["crm"] == (len(crm), len({r["customer_id"] for r in crm}))
    assert counts["crm"][1] == 100
    tx = [row for _, row in land.rows("transactions") if not marked(row["store_id"])]
    assert counts["transactions"] == (len(tx), len({(r["order_id"], r["line_no"]) for r in tx}))
    catalog = [row for _, row in land.rows("catalog") if not marked(row["title"])]
    assert counts["catalog"] == (len(catalog), len({r["item_id"] for r in catalog}))
    assert counts["catalog"][0] == model.GenParams(42, RUN_DATE, 100, 60, 0.02).items == 200


def test_history_window_and_time_formats(generated: Generated) -> None:
    start = RUN_MIDNIGHT - timedelta(days=60)
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
    for _, line in generated.landing.events:
        if '"session_id":"dfx-' not in line:
            text = json.loads(line)["event_time"]
            ts = parse_time(text)
            assert iso.fullmatch(text)
            # A checkout's views come minutes before its order, which may open the window.
            assert ts is not None
            assert start - timedelta(minutes=15) <= ts < RUN_MIDNIGHT
    for _, row in generated.landing.rows("transactions"):
        if not generated.marked(row["store_id"]):
            ts = parse_time(row["order_time"])
            assert iso.fullmatch(row["order_time"])
            assert ts is not None
            assert start <= ts < RUN_MIDNIGHT
    for _, row in generated.landing.rows("crm"):
        if not generated.marked(row["city"]):
            ts = parse_time(row["updated_at"])
            assert ts is not None
            assert ts < RUN_MIDNIGHT


def test_orders_events_and_truth_agree(generated: Generated) -> None:
    land, truth = generated.landing, generated.truth
    sales = [
        row
        for _, row in land.rows("transactions")
        if not generated.marked(row["store_id"]) and row["status"] != "refunded"
    ]
    orders_per_customer = Counter(
        cid for cid, _ in {(r["customer_id"], r["order_id"]) for r in sales}
    )
    for customer in truth["customers"]:
        assert orders_per_customer[customer["customer_id"]] == customer["orders_in_history"]
        assert customer["active_from"] <= customer["active_until"]
        assert customer["purchase_rate_per_day"] > 0
        assert 0 <= customer["archetype_id"] < len(model.ARCHETYPES)
    # Every web/app order line has its purchase event, at the order's instant.
    purchases: Counter[tuple[str, str, datetime | None]] = Counter()
    for _, line in land.events:
        rec = json.loads(line) if '"session_id":"dfx-' not in line else {}
        if rec.get("event_type") == "purchase":
            purchases[(rec["customer_id"], rec["item_id"], parse_time(rec["event_time"]))] += 1
    online = Counter(
        (r["customer_id"], r["item_id"], parse_time(r["order_time"]))
        for r in sales
        if r["channel"] != "store"
    )
    assert purchases == online
    # A refund repeats its completed line's key, later, with at most its quantity.
    by_key = {(r["order_id"], r["line_no"]): r for r in sales}
    for _, row in land.rows("transactions"):
        if row["status"] == "refunded":
            sale = by_key[(row["order_id"], row["line_no"])]
            assert sale["status"] == "completed"
            assert int(row["quantity"]) <= int(sale["quantity"])
            assert parse_time(row["order_time"]) > parse_time(sale["order_time"])  # type: ignore[operator]


def test_item_preferences_and_stitching(generated: Generated) -> None:
    prefs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in generated.truth["item_preferences"]:
        prefs[row["customer_id"]].append(row)
    assert len(prefs) == 100
    for rows in prefs.values():
        assert sorted(r["category"] for r in rows) == sorted(model.CATEGORY_NAMES)
        assert sum(r["weight"] for r in rows) == pytest.approx(1.0)
        assert all(0 <= r["item_offset"] < r["category_items"] for r in rows)
    logged_in: set[str] = set()
    anonymous: set[str] = set()
    for _, line in generated.landing.events:
        if '"session_id":"dfx-' not in line:
            rec = json.loads(line)
            (logged_in if rec.get("customer_id") else anonymous).add(rec["device_id"])
    # Some devices browse anonymously and log in on another event: stitching is possible.
    assert anonymous & logged_in
    assert anonymous - logged_in  # and some never log in (visitors)


def test_params_come_from_config_then_options(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, "generate.seed=9")
    now = datetime.now(UTC)
    options = {"customers": 5, "seed": None, "days": None, "defect_rate": 0.0}
    p = job.params(JobContext(spark, config, RUN_DATE, "run", now, options))
    assert (p.customers, p.seed, p.days, p.defect_rate) == (5, 9, 60, 0.0)
    assert (p.crm_exports, p.transaction_files, p.event_files, p.items) == (3, 4, 4, 200)
    with pytest.raises(ConfigError, match=r"generate\.days"):
        model.GenParams(1, RUN_DATE, 10, 0, 0.01)


def test_no_defects_without_a_defect_rate(spark: SparkSession) -> None:
    p = model.GenParams(7, RUN_DATE, 50, 30, 0.0)
    assert gen.defect_plan(gen.customers(spark, p), p).counts == {}


def test_customers_do_not_depend_on_partitioning(spark: SparkSession) -> None:
    p = model.GenParams(7, RUN_DATE, 50, 30, 0.0)
    one = gen.customers(spark, p, partitions=1).drop("extra_marker").collect()
    three = gen.customers(spark, p, partitions=3).drop("extra_marker").collect()
    assert sorted(map(str, one)) == sorted(map(str, three))


def test_same_seed_same_files(spark: SparkSession, generated: Generated, tmp_path: Path) -> None:
    again = generate(spark, tmp_path)
    assert folder_lines(Path(tables.landing(again))) == folder_lines(generated.landing.root)


def test_other_seed_other_data(spark: SparkSession, generated: Generated) -> None:
    """The pure builders reproduce the files for seed 42 and give other rows for seed 43."""

    def catalog_rows(seed: int) -> set[tuple[str, ...]]:
        p = model.GenParams(seed, RUN_DATE, 100, 60, 0.02)
        columns = ["item_id", "title", "brand", "updated_at"]
        return {tuple(r) for r in gen.catalog(spark, p).select(*columns).collect()}

    def crm_rows(seed: int) -> set[tuple[str, ...]]:
        p = model.GenParams(seed, RUN_DATE, 100, 60, 0.02)
        rows = gen.crm_rows(gen.customers(spark, p), p).select("customer_id", "email", "updated_at")
        return {tuple(r) for r in rows.collect()}

    in_files = {
        (r["item_id"], r["title"], r["brand"], r["updated_at"])
        for _, r in generated.landing.rows("catalog")
        if not generated.marked(r["title"])
    }
    assert catalog_rows(42) == in_files
    assert not catalog_rows(43) & in_files
    crm_in_files = {
        (r["customer_id"], r["email"], r["updated_at"])
        for _, r in generated.landing.rows("crm")
        if not generated.marked(r["city"])
    }
    assert crm_rows(42) == crm_in_files
    assert len(crm_rows(43) & crm_in_files) == 0


def test_next_day_lands_one_more_day_of_the_same_world(spark: SparkSession, tmp_path: Path) -> None:
    """`--next-day` adds the files of the day after the history in folders of their own and
    leaves the history's files as they were; sales are on that day, or the day before for a
    late store upload; refunds are of orders the history holds; a second call lands the day
    after; ground_truth/next_days counts what landed."""
    config = make_config(tmp_path, "generate.defect_rate=0.0")
    run_stage(spark, config, "generate", RUN_DATE)
    root = Path(tables.landing(config))

    def sizes() -> dict[Path, int]:
        return {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}

    history = sizes()
    run_stage(spark, config, "generate", RUN_DATE + timedelta(days=1), next_day=True)
    landed = sizes()
    assert {p: landed[p] for p in history} == history
    new = {p.relative_to(root).parts[:2] for p in set(landed) - set(history)}
    assert new == {("transactions", "day=20260630"), ("events", "day=20260630")}

    def rows(folder: Path, history_only: bool = False) -> list[dict[str, str]]:
        found = []
        for path in sorted(folder.rglob("*.csv")):
            if history_only and path in landed and path not in history:
                continue
            with path.open(newline="") as f:
                found += list(csv.DictReader(f))
        return found

    def utc_day(text: str) -> date:
        return datetime.fromisoformat(text).astimezone(UTC).date()

    history_orders = {r["order_id"] for r in rows(root / "transactions", history_only=True)}
    day_rows = rows(root / "transactions" / "day=20260630")
    sales = [r for r in day_rows if r["status"] != "refunded"]
    refunds = [r for r in day_rows if r["status"] == "refunded"]
    assert sales
    for r in sales:
        late = utc_day(r["order_time"]) != RUN_DATE
        assert not late or (
            r["channel"] == "store" and utc_day(r["order_time"]) == RUN_DATE - timedelta(days=1)
        )
    assert all(utc_day(r["order_time"]) == RUN_DATE for r in refunds)
    assert {r["order_id"] for r in refunds} <= history_orders
    events = [
        json.loads(line)
        for path in sorted((root / "events" / "day=20260630").rglob("*.txt"))
        for line in path.read_text().splitlines()
    ]
    event_days = Counter(utc_day(e["event_time"]) for e in events)
    assert set(event_days) <= {RUN_DATE, RUN_DATE - timedelta(days=1), RUN_DATE + timedelta(days=1)}
    assert event_days[RUN_DATE] > 0

    run_stage(spark, config, "generate", RUN_DATE + timedelta(days=2), next_day=True)
    truth = tables.read(spark, tables.ground_truth(config, "next_days")).orderBy("day").collect()
    assert [(r["day"], r["run_date"]) for r in truth] == [
        (RUN_DATE, RUN_DATE + timedelta(days=1)),
        (RUN_DATE + timedelta(days=1), RUN_DATE + timedelta(days=2)),
    ]
    first = truth[0]
    assert (first["order_lines"], first["refunds"], first["events"]) == (
        len(sales),
        len(refunds),
        len(events),
    )
