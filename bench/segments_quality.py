"""Segment quality against the generator's planted archetypes, at 10k and 100k customers.

For each size: generate synthetic data (once; kept under --root), run the pipeline (ingest,
validate, silver), then features and segment for two adjacent weeks, timing each job. It then
reports the adjusted Rand index (ARI) between found segments and planted archetypes, and how
stable segment ids are between the two weekly retrains (share of customers keeping their id,
and the ARI between the two weeks' partitions).

    .venv/bin/python bench/segments_quality.py --customers 10000 100000 --root /tmp/pmbench

ARI is computed from the k x a contingency table, which is aggregated in Spark and small enough
to collect (k segments by a archetypes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from math import comb
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def adjusted_rand_index(table: np.ndarray) -> float:
    """ARI (Hubert & Arabie) from a contingency table of two labelings of the same items."""
    n = int(table.sum())
    pairs = sum(comb(int(v), 2) for v in table.ravel())
    rows = sum(comb(int(v), 2) for v in table.sum(axis=1))
    cols = sum(comb(int(v), 2) for v in table.sum(axis=0))
    total = comb(n, 2)
    if total == 0:
        return 1.0
    expected = rows * cols / total
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else (pairs - expected) / (maximum - expected)


def contingency(pairs: list[tuple[object, object, int]]) -> np.ndarray:
    """(label a, label b, count) rows -> a dense matrix (labels sorted)."""
    a_labels = sorted({str(a) for a, _, _ in pairs})
    b_labels = sorted({str(b) for _, b, _ in pairs})
    table = np.zeros((len(a_labels), len(b_labels)), dtype=np.int64)
    for a, b, n in pairs:
        table[a_labels.index(str(a)), b_labels.index(str(b))] += n
    return table


def storage_args(base: Path) -> list[str]:
    return [
        f"--set=storage.landing={base}/landing",
        f"--set=storage.warehouse={base}/warehouse",
        f"--set=storage.ground_truth={base}/ground_truth",
    ]


def submit(job: str, run_date: date, base: Path, *extra: str) -> float:
    """Runs one job through spark-submit.sh; returns its wall-clock seconds (JVM start included)."""
    log = base / f"{job}_{run_date.isoformat()}.log"
    cmd = [str(ROOT / "spark-submit.sh"), job, f"--run-date={run_date.isoformat()}"]
    cmd += [*storage_args(base), "--set=spark.conf.spark.ui.showConsoleProgress='false'", *extra]
    # This checkout's package, whatever another install in the venv points at.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        ).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"{job} {run_date} failed ({code}); see {log}")
    return seconds


def job_seconds(base: Path, job: str, run_date: date) -> float | None:
    """The job's own time from its log ('<job> finished in Ns'), without spark-submit start-up."""
    text = (base / f"{job}_{run_date.isoformat()}.log").read_text()
    found = re.findall(rf"{job} finished in ([0-9.]+)s", text)
    return float(found[-1]) if found else None


def segments_vs_planted(spark, config, run_date: date) -> list[tuple[object, object, int]]:
    """(segment id, archetype id, customers) at run_date: the cells of the k x a table.

    Also used by bench/run.py (the whole-pipeline benchmark) for its ARI.
    """
    from pyspark.sql import functions as F

    from precision_marketing.io import tables
    from precision_marketing.io.tables import Layer

    segments = tables.read(spark, tables.table_path(config, Layer.GOLD, "segments"))
    truth = tables.read(spark, tables.ground_truth(config, "customers"))
    now = segments.where(F.col("as_of_date") == F.lit(run_date))
    found = now.join(truth.select("customer_id", "archetype_id"), "customer_id")
    # k x a: a tiny aggregate, safe to collect.
    return [tuple(r) for r in found.groupBy("segment_id", "archetype_id").count().collect()]


def measure(spark, config, run_date: date, previous: date) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    from precision_marketing.io import tables
    from precision_marketing.io.tables import Layer

    segments = tables.read(spark, tables.table_path(config, Layer.GOLD, "segments"))
    now = segments.where(F.col("as_of_date") == F.lit(run_date))
    before = segments.where(F.col("as_of_date") == F.lit(previous))
    vs_truth = segments_vs_planted(spark, config, run_date)
    # k x k table: a tiny aggregate, safe to collect.
    moved = (
        before.select("customer_id", F.col("segment_id").alias("a"))
        .join(now.select("customer_id", F.col("segment_id").alias("b")), "customer_id")
        .groupBy("a", "b")
        .count()
        .collect()
    )
    week_table = [tuple(r) for r in moved]
    kept = sum(n for a, b, n in week_table if a == b)
    both = sum(n for _, _, n in week_table)
    return {
        "ari_vs_planted": adjusted_rand_index(contingency(vs_truth)),
        "ari_between_weeks": adjusted_rand_index(contingency(week_table)),
        "same_id_share": kept / both if both else float("nan"),
        "customers_scored": float(sum(n for _, _, n in vs_truth)),
        "k": float(now.select("segment_id").distinct().count()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/pmbench"))
    parser.add_argument("--run-date", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: --root)")
    args = parser.parse_args()
    run_date, previous = args.run_date, args.run_date - timedelta(days=7)
    results = {}
    for n in args.customers:
        base = args.root / f"n{n}"
        base.mkdir(parents=True, exist_ok=True)
        timing: dict[str, float | None] = {}
        if not (base / "warehouse" / "silver" / "events").exists():
            timing["generate_s"] = submit("generate", run_date, base, f"--customers={n}")
            timing["pipeline_s"] = submit("pipeline", run_date, base)
        for day in (previous, run_date):
            for job in ("features", "segment"):
                wall = submit(job, day, base)
                timing[f"{job}_{day.isoformat()}_wall_s"] = round(wall, 1)
                timing[f"{job}_{day.isoformat()}_job_s"] = job_seconds(base, job, day)
        results[n] = {"timing": timing, **score(base, run_date, previous)}
        print(json.dumps({n: results[n]}, indent=2), flush=True)
    out = args.out or args.root / "segments_quality.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


def score(base: Path, run_date: date, previous: date) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "lib"))
    from precision_marketing.config import load_config
    from precision_marketing.spark import build_session

    overrides = [s.removeprefix("--set=") for s in storage_args(base)]
    config = load_config("local", overrides)
    spark = build_session(config, "segments-quality")
    try:
        return measure(spark, config, run_date, previous)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
