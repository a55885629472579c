"""A real-shaped landing set at scale: an online gift shop's exports, not the synthetic world.

Shaped like the UCI "Online Retail" export (InvoiceNo, StockCode, Description, Quantity,
InvoiceDate as `M/d/yyyy H:mm` in Europe/London, UnitPrice in GBP, CustomerID, Country), a bare
CRM (id, signup date, country, e-mail opt-in), a catalog of a few hundred items in ten real
categories, no clickstream, and a history that ended years ago (default 2010-12-01 to
2011-12-09, run date 2011-12-10). Writes `sources.yaml` beside the files, mapping them onto the
contract (docs/bring-your-own-data.md). bench/README-real-shaped.md says how to run the pipeline.

Behaviour with structure for the models to find: each customer has an order cadence (lognormal,
a few days to months), an active window (signup, and for a third of them a lapse), one or two
favourite categories and three favourite items bought again and again; item popularity is Zipf
within a category. Deterministic by `--seed`; vectorized numpy + pyarrow (10k customers in a
few seconds).

    .venv/bin/python bench/real_shaped.py --out /tmp/rs/landing --customers 10000
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

CATEGORIES = (  # name, median GBP price, share of the catalog
    ("candles & lighting", 3.5, 0.12),
    ("kitchen & dining", 4.5, 0.14),
    ("christmas", 2.5, 0.10),
    ("garden", 6.0, 0.08),
    ("stationery", 1.2, 0.12),
    ("bags & storage", 2.1, 0.10),
    ("party & baking", 1.0, 0.10),
    ("home decor", 5.0, 0.10),
    ("toys & games", 3.0, 0.08),
    ("jewellery", 1.8, 0.06),
)
ADJECTIVES = (
    "VINTAGE",
    "REGENCY",
    "RETRO",
    "PINK",
    "WHITE",
    "RED",
    "BLUE",
    "GREEN",
    "SET OF 3",
    "JUMBO",
    "SMALL",
    "LARGE",
    "HEART",
    "POLKADOT",
    "SPOTTY",
    "FLORAL",
    "WOODEN",
)
NOUNS = {
    "candles & lighting": ("T-LIGHT HOLDER", "LANTERN", "CANDLE", "NIGHT LIGHT", "FAIRY LIGHTS"),
    "kitchen & dining": ("CAKESTAND", "TEACUP", "MUG", "JAM JAR", "TEA TOWEL", "LUNCH BOX"),
    "christmas": ("BAUBLE", "STAR DECORATION", "ADVENT CALENDAR", "STOCKING", "WREATH"),
    "garden": ("WATERING CAN", "BIRD HOUSE", "PLANT POT", "GARDEN MARKER", "THERMOMETER"),
    "stationery": ("NOTEBOOK", "WRAPPING PAPER", "GIFT TAG", "PENCIL SET", "STICKER SHEET"),
    "bags & storage": ("JUMBO BAG", "SHOPPER", "STORAGE TIN", "TRINKET BOX", "BASKET"),
    "party & baking": ("PAPER CUPS", "BUNTING", "CAKE CASES", "NAPKINS", "PARTY BAG"),
    "home decor": ("MIRROR", "PHOTO FRAME", "CLOCK", "CUSHION COVER", "DOORSTOP", "SIGN"),
    "toys & games": ("SPACEBOY", "DOLLY GIRL", "SKIPPING ROPE", "JIGSAW", "PLAYING CARDS"),
    "jewellery": ("NECKLACE", "BRACELET", "EARRINGS", "HAIR CLIP", "BROOCH"),
}
COUNTRIES = (
    ("United Kingdom", 0.88),
    ("Germany", 0.03),
    ("France", 0.03),
    ("EIRE", 0.02),
    ("Spain", 0.01),
    ("Netherlands", 0.01),
    ("Belgium", 0.01),
    ("Switzerland", 0.01),
)
QUANTITIES = np.array([1, 2, 3, 4, 6, 8, 12, 24])
QUANTITY_WEIGHTS = np.array([0.22, 0.16, 0.10, 0.10, 0.14, 0.06, 0.16, 0.06])

SOURCES_YAML = """\
# bench/real_shaped.py's exports mapped onto the contract (docs/bring-your-own-data.md).
# No clickstream: events are left out and flow through as an empty batch.
sources:
  transactions:
    folder: transactions
    format: csv
    columns:
      order_id: InvoiceNo
      line_no: Line
      item_id: StockCode
      quantity: Quantity
      order_time: InvoiceDate
      unit_price: UnitPrice
      customer_id: CustomerID
    constants:
      channel: web
      currency: GBP
      status: completed
    timestamp_format: "M/d/yyyy H:mm"
    time_zone: Europe/London
  crm:
    folder: crm
    format: csv
    columns:
      customer_id: CustomerID
      signup_date: SignupDate
      region: Country
      consent_email: EmailOptIn
    constants:
      # No change time in the export: one state per customer, valid at every snapshot date
      # (signup_date still decides who existed when).
      updated_at: "1970-01-01T00:00:00Z"
  catalog:
    folder: catalog
    format: csv
    columns:
      item_id: StockCode
      title: Description
      category: Category
      price: UnitPrice
      active: Active
"""


def _days(d: date) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def _text(values: np.ndarray) -> np.ndarray:
    return values.astype(str)


def _us_stamp(epoch_day: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """`M/d/yyyy H:mm` text of local days and minutes of the day, without a Python loop."""
    day = epoch_day.astype("datetime64[D]")
    month_start = day.astype("datetime64[M]")
    year = _text(day.astype("datetime64[Y]").astype(int) + 1970)
    month = _text(month_start.astype(int) % 12 + 1)
    dom = _text((day - month_start).astype(int) + 1)
    parts = (month, "/", dom, "/", year, " ", _text(minute // 60), ":")
    text = parts[0]
    for part in parts[1:]:
        text = np.char.add(text, part)
    return np.char.add(text, np.char.zfill(_text(minute % 60), 2))


def catalog(rng: np.random.Generator, items: int) -> dict[str, np.ndarray]:
    shares = np.array([c[2] for c in CATEGORIES])
    category = np.sort(rng.choice(len(CATEGORIES), size=items, p=shares / shares.sum()))
    medians = np.array([c[1] for c in CATEGORIES])[category]
    price = np.round(medians * rng.lognormal(0.0, 0.45, items), 2).clip(0.19, None)
    codes = rng.choice(np.arange(10000, 90000), size=items, replace=False)
    suffix = np.where(rng.random(items) < 0.2, rng.choice(list("ABCDE"), items), "")
    adjective = rng.choice(ADJECTIVES, items)
    noun = np.array([rng.choice(NOUNS[CATEGORIES[c][0]]) for c in category])
    title = np.char.add(np.char.add(adjective, " "), noun)
    title = np.char.add(np.char.add(title, " "), _text(np.arange(items) % 7 + 1))
    return {
        "code": np.char.add(_text(codes), suffix),
        "title": title,
        "category": category,
        "price": price,
        # Popularity rank within the category: Zipf-like weight 1 / (rank + 1)^1.1.
        "weight": 1.0 / (rng.permutation(items) % max(1, items // len(CATEGORIES)) + 1) ** 1.1,
    }


def _pick_in_category(
    rng: np.random.Generator, items: dict[str, np.ndarray], category: np.ndarray
) -> np.ndarray:
    """A popularity-weighted item of each given category (inverse CDF per category)."""
    order = np.lexsort((np.arange(len(items["category"])), items["category"]))
    cats, weights = items["category"][order], items["weight"][order]
    cumulative = np.cumsum(weights)
    starts = np.searchsorted(cats, np.arange(len(CATEGORIES)), side="left")
    ends = np.searchsorted(cats, np.arange(len(CATEGORIES)), side="right")
    base = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0.0)
    total = cumulative[np.maximum(ends - 1, 0)] - base
    target = base[category] + rng.random(len(category)) * total[category]
    position = np.searchsorted(cumulative, target, side="right")
    position = np.clip(position, starts[category], np.maximum(ends[category] - 1, 0))
    return order[position]


def generate(out: Path, customers: int, items: int, seed: int, start: date, end: date) -> dict:
    rng = np.random.default_rng(seed)
    cat = catalog(rng, items)
    history = _days(end) - _days(start) + 1

    # Customers: signup, active window, cadence, favourite categories and items.
    signup = _days(start) + rng.integers(-3 * 365, history - 14, customers)
    active_from = np.maximum(signup, _days(start))
    lapses = rng.random(customers) < 0.33
    lapse_at = active_from + (rng.random(customers) * (_days(end) + 1 - active_from)).astype(int)
    active_until = np.where(lapses, lapse_at, _days(end) + 1)  # exclusive
    cadence = np.exp(rng.normal(np.log(45.0), 0.9, customers)).clip(4, 400)
    orders_per_customer = rng.poisson(np.maximum(active_until - active_from, 0) / cadence)
    orders_per_customer = np.maximum(orders_per_customer, 1)  # every CRM row bought once
    cat_share = np.array([c[2] for c in CATEGORIES])
    favourite_cat = rng.choice(len(CATEGORIES), size=(customers, 2), p=cat_share / cat_share.sum())
    favourite_item = _pick_in_category(rng, cat, np.repeat(favourite_cat[:, 0], 3)).reshape(-1, 3)

    # Orders: uniform days in the active window, shop hours, 1 + geometric lines.
    order_customer = np.repeat(np.arange(customers), orders_per_customer)
    span = np.maximum(active_until - active_from, 1)[order_customer]
    order_day = active_from[order_customer] + (rng.random(len(order_customer)) * span).astype(int)
    order_minute = rng.integers(8 * 60, 19 * 60, len(order_customer))
    order_key = order_day.astype(np.int64) * 1440 + order_minute
    by_time = np.lexsort((order_customer, order_key))
    order_customer, order_day, order_minute = (
        order_customer[by_time],
        order_day[by_time],
        order_minute[by_time],
    )
    lines_per_order = np.minimum(rng.geometric(1 / 3.5, len(order_customer)), 30)

    line_order = np.repeat(np.arange(len(order_customer)), lines_per_order)
    first_line = np.repeat(np.cumsum(lines_per_order) - lines_per_order, lines_per_order)
    line_no = np.arange(len(line_order)) - first_line + 1
    line_customer = order_customer[line_order]
    n = len(line_order)
    draw = rng.random(n)
    favourite = favourite_item[line_customer, rng.integers(0, 3, n)]
    in_category = _pick_in_category(
        rng, cat, favourite_cat[line_customer, (rng.random(n) < 0.3).astype(int)]
    )
    anywhere = _pick_in_category(
        rng, cat, rng.choice(len(CATEGORIES), n, p=cat_share / cat_share.sum())
    )
    item = np.where(draw < 0.35, favourite, np.where(draw < 0.8, in_category, anywhere))
    quantity = rng.choice(QUANTITIES, n, p=QUANTITY_WEIGHTS / QUANTITY_WEIGHTS.sum())

    stamp = _us_stamp(order_day[line_order], order_minute[line_order])
    country_names = np.array([c[0] for c in COUNTRIES])
    country_p = np.array([c[1] for c in COUNTRIES])
    country = rng.choice(country_names, customers, p=country_p / country_p.sum())
    customer_id = _text(12346 + np.arange(customers))

    (out / "transactions").mkdir(parents=True, exist_ok=True)
    (out / "crm").mkdir(parents=True, exist_ok=True)
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    options = pacsv.WriteOptions(quoting_style="needed")
    pacsv.write_csv(
        pa.table(
            {
                "InvoiceNo": _text(536365 + line_order),
                "Line": line_no,
                "StockCode": cat["code"][item],
                "Description": cat["title"][item],
                "Quantity": quantity,
                "InvoiceDate": stamp,
                "UnitPrice": cat["price"][item],
                "CustomerID": customer_id[line_customer],
                "Country": country[line_customer],
            }
        ),
        out / "transactions" / "online_retail.csv",
        options,
    )
    signup_dates = np.datetime64("1970-01-01") + signup.astype("timedelta64[D]")
    pacsv.write_csv(
        pa.table(
            {
                "CustomerID": customer_id,
                "SignupDate": signup_dates.astype(str),
                "Country": country,
                "EmailOptIn": np.where(rng.random(customers) < 0.6, "true", "false"),
            }
        ),
        out / "crm" / "customers.csv",
        options,
    )
    pacsv.write_csv(
        pa.table(
            {
                "StockCode": cat["code"],
                "Description": cat["title"],
                "Category": np.array([c[0] for c in CATEGORIES])[cat["category"]],
                "UnitPrice": cat["price"],
                "Active": np.where(rng.random(items) < 0.95, "true", "false"),
            }
        ),
        out / "catalog" / "items.csv",
        options,
    )
    (out / "sources.yaml").write_text(SOURCES_YAML)
    return {
        "customers": customers,
        "items": items,
        "orders": len(order_customer),
        "order_lines": n,
        "lapsed_customers": int(lapses.sum()),
        "history": f"{start} .. {end}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="the landing folder to write")
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2010, 12, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2011, 12, 9))
    args = parser.parse_args()
    started = time.perf_counter()
    summary = generate(args.out, args.customers, args.items, args.seed, args.start, args.end)
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f}s: {summary}")


if __name__ == "__main__":
    main()
