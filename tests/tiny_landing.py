"""A hand-written landing folder: a few rows per source, each defect placed on purpose.

Expected outcomes are spelled out next to the rows, so tests assert exact values.
"""

from __future__ import annotations

from pathlib import Path

EVENTS = [
    # good: a product view of a known item
    '{"event_id":"e1","device_id":"d1","customer_id":"c1","session_id":"s1",'
    '"event_type":"product_view","item_id":"i1","category":"books","price":12.5,'
    '"event_time":"2026-06-01T10:00:00.000+02:00","platform":"web"}',
    # good: an anonymous search
    '{"event_id":"e2","device_id":"d1","customer_id":null,"session_id":"s1",'
    '"event_type":"search","search_query":"shoes","event_time":"2026-06-01T10:01:00+02:00",'
    '"platform":"web"}',
    # event_item_known: i999 is not in the catalog
    '{"event_id":"e3","device_id":"d2","customer_id":"c2","session_id":"s2",'
    '"event_type":"product_view","item_id":"i999","event_time":"2026-06-02T10:00:00Z",'
    '"platform":"ios"}',
    # duplicate of e1 (silver keeps one copy)
    '{"event_id":"e1","device_id":"d1","customer_id":"c1","session_id":"s1",'
    '"event_type":"product_view","item_id":"i1","category":"books","price":12.5,'
    '"event_time":"2026-06-01T10:00:00.000+02:00","platform":"web"}',
    # well_formed_record: a truncated line
    '{"event_id":"e4","device_id":"d2","session_id":"s2","event_ty',
    # event_time_not_future
    '{"event_id":"e5","device_id":"d2","customer_id":"c2","session_id":"s3",'
    '"event_type":"page_view","event_time":"2099-01-01T00:00:00Z","platform":"android"}',
    # event_time_valid: month 13
    '{"event_id":"e6","device_id":"d2","customer_id":"c2","session_id":"s3",'
    '"event_type":"page_view","event_time":"2026-13-45T99:00:00","platform":"android"}',
    # good, with a field outside the contract (kept; no_unexpected_fields warns)
    '{"event_id":"e7","device_id":"d2","customer_id":"c2","session_id":"s3",'
    '"event_type":"page_view","event_time":"2026-06-03T00:00:00Z","platform":"android",'
    '"debug_payload":"x"}',
]

CRM_HEADER = (
    "customer_id,email,phone,first_name,last_name,birth_date,gender,city,region,signup_date,"
    "loyalty_tier,consent_email,consent_sms,consent_push,updated_at"
)
CRM_EXPORT_1 = [
    "c1,Ann.Lee@Example.com,+49 30 1234567,Ann,Lee,1985-04-02,F,Berlin,north,2024-01-05,gold,"
    "true,false,true,2026-05-01T00:00:00Z",
    # birth_date_valid: no 31 February (an older version of c2)
    "c2,bob@example.com,+49301234568,Bob,Kim,31/02/1985,M,Hamburg,north,2024-02-05,none,"
    "true,true,false,2026-05-01T00:00:00Z",
    "c2,bob@example.com,+49301234568,Bob,Kim,1990-06-01,M,Hamburg,north,2024-02-05,silver,"
    "true,true,false,2026-05-02T00:00:00Z",
]
# A later export with an extra column: mapped by header name, reported, rows kept.
CRM_EXPORT_2_HEADER = CRM_HEADER + ",loyalty_points"
CRM_EXPORT_2 = [
    "c1,ann.lee@example.com,+49 30 1234567,Ann,Lee,1985-04-02,F,Berlin,south,2024-01-05,"
    "platinum,true,false,true,2026-05-05T00:00:00Z,120",
]

TRANSACTIONS_HEADER = (
    "order_id,line_no,customer_id,item_id,quantity,unit_price,discount,currency,order_time,"
    "channel,store_id,status"
)
TRANSACTIONS = [
    "o1,1,c1,i1,2,12.5,0,EUR,2026-06-01T10:05:00Z,web,,completed",
    "o1,2,c1,i2,1,30,5,EUR,2026-06-01T10:05:00Z,web,,completed",
    # order_customer_known: c9 is in no CRM export
    "o2,1,c9,i1,1,12.5,0,EUR,2026-06-01T10:05:00Z,web,,completed",
    # quantity_in_range
    "o3,1,c2,i1,-1,12.5,0,EUR,2026-06-01T10:05:00Z,web,,completed",
    # a refund of one of o1's two units of i1
    "o1,1,c1,i1,1,12.5,0,EUR,2026-06-05T10:05:00Z,web,,refunded",
]

CATALOG_HEADER = "item_id,title,category,brand,price,active,updated_at"
CATALOG = [
    "i1,Book one,books,Acme,12.5,true,2026-01-01T00:00:00Z",
    "i2,Shoe two,fashion,Foot,30,true,2026-01-01T00:00:00Z",
    # catalog_price_in_range
    "i3,Bad price,fashion,Foot,-3,true,2026-01-01T00:00:00Z",
]

# rule -> how many rows break it, per table
EXPECTED_QUARANTINE = {
    "events": {
        "event_item_known": 1,
        "well_formed_record": 1,
        "event_time_not_future": 1,
        "event_time_valid": 1,
    },
    "crm": {"birth_date_valid": 1},
    "transactions": {"order_customer_known": 1, "quantity_in_range": 1},
    "catalog": {"catalog_price_in_range": 1},
}
EXPECTED_SILVER = {
    "events": 3,  # e1 (once), e2, e7
    "customers": 2,
    "customer_history": 3,  # c1 twice, c2 once (its bad version is quarantined)
    "order_lines": 2,
    "items": 2,
}


def _write(path: Path, lines: list[str], header: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ([header] if header else []) + lines
    path.write_text("\n".join(rows) + "\n")


def write_tiny_landing(landing: Path) -> None:
    _write(landing / "events" / "2026-06-03.jsonl", EVENTS)
    _write(landing / "crm" / "export-1.csv", CRM_EXPORT_1, CRM_HEADER)
    _write(landing / "crm" / "export-2.csv", CRM_EXPORT_2, CRM_EXPORT_2_HEADER)
    _write(landing / "transactions" / "2026-06-03.csv", TRANSACTIONS, TRANSACTIONS_HEADER)
    (landing / "transactions" / "2026-06-04-empty.csv").write_text("")
    _write(landing / "catalog" / "catalog.csv", CATALOG, CATALOG_HEADER)
