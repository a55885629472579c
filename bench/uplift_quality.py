"""Measured campaign uplift against the planted one: generate, publish, respond, measure.

    .venv/bin/python bench/uplift_quality.py --customers 10000 --root /tmp/pmbench-uplift

On a scratch root that it clears first (<root>/n<customers>):

1. `generate` N customers with history up to the run date D (its own application, as
   quickstart.sh runs it); everything after runs in one Spark application;
2. pipeline.steps up to `publish` at D: the campaigns of conf/campaigns.yaml
   (or --set publish.campaigns_file=...) send on D;
3. `simulate_response` at E = D + --days-after (default 30: after the longest demo window,
   D..D+29), which lands the audiences' baseline orders and the planted response;
4. MEASURE_STAGES at E: ingest, validate and silver take the simulated orders in; `measure`
   compares treatment and control in each campaign window.

Then, per campaign window, overall and by segment: the measured absolute conversion uplift with
its 95% interval against the planted one, the mean over the treatment group of
u x P(no baseline order in the window) from ground_truth/campaign_effects (u: the planted
response probability of the customer's archetype, response.uplift_by_archetype). Every figure
compared is a small aggregate (campaigns x segments rows), collected to the driver.

E must not be after today: validate quarantines orders later than the wall clock.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.cli import STAGES, configure_logging
from precision_marketing.config import Config, load_config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, new_run_id
from precision_marketing.spark import build_session

log = logging.getLogger("bench.uplift")

ROOT = Path(__file__).resolve().parents[1]

# What takes the simulated response in and measures it.
MEASURE_STAGES = ("ingest", "validate", "silver", "measure")
DEFAULT_RUN_DATE = date(2026, 10, 1)
KEY = ("campaign_id", "start_date", "end_date")


def run_stage(spark: SparkSession, config: Config, stage: str, day: date, **options: Any) -> float:
    """Runs one stage in this application, as the pipeline job does; returns its seconds."""
    now = datetime.now(UTC)
    ctx = JobContext(spark, config, day, new_run_id(stage, now), now, options)
    started = time.perf_counter()
    log.info("bench: %s at %s ...", stage, day)
    STAGES[stage].run(ctx)
    seconds = time.perf_counter() - started
    log.info("bench: %s at %s done in %.1fs", stage, day, seconds)
    return round(seconds, 1)


def generate(env: str, overrides: list[str], run_date: date, base: Path) -> float:
    """`generate` in an application of its own, as quickstart.sh runs it; returns seconds."""
    base.mkdir(parents=True)
    cmd = [str(ROOT / "spark-submit.sh"), "generate", f"--env={env}", f"--run-date={run_date}"]
    cmd += [f"--set={o}" for o in overrides]
    started = time.perf_counter()
    with (base / "generate.log").open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if code != 0:
        sys.exit(f"generate failed ({code}); see {base / 'generate.log'}")
    return round(time.perf_counter() - started, 1)


def planted(spark: SparkSession, config: Config) -> dict[tuple, dict[str, Any]]:
    """(campaign, start, end, segment or None) -> planted uplift over the treatment group."""
    effects = tables.read(spark, tables.ground_truth(config, "campaign_effects"))
    treated = effects.where(F.col("treated"))
    metrics = [
        F.count(F.lit(1)).alias("treated"),
        F.avg("planted_uplift").alias("response_probability"),
        F.avg("baseline_conversion_probability").alias("baseline_conversion"),
        F.avg("expected_conversion_uplift").alias("planted_uplift"),
        F.sum(F.col("responded").cast("int")).alias("responders"),
    ]
    out: dict[tuple, dict[str, Any]] = {}
    # Bounded: campaign windows, and campaign windows x segments.
    for r in treated.groupBy(*KEY).agg(*metrics).collect():
        out[(*(r[k] for k in KEY), None)] = r.asDict()
    by_segment = treated.groupBy(*KEY, F.coalesce("segment_name", F.lit("unknown")).alias("seg"))
    for r in by_segment.agg(*metrics).collect():
        out[(*(r[k] for k in KEY), r["seg"])] = r.asDict()
    return out


def measured(spark: SparkSession, config: Config, as_of: date) -> list[dict[str, Any]]:
    results = tables.read(spark, tables.table_path(config, Layer.GOLD, "campaign_results"))
    rows = results.where(
        (F.col("as_of_date") == F.lit(as_of)) & F.col("breakdown").isin("overall", "segment")
    )
    # Bounded: campaign windows x (1 + segments) rows.
    return [r.asDict() for r in rows.orderBy(*KEY, "breakdown", "breakdown_value").collect()]


def compare(spark: SparkSession, config: Config, as_of: date) -> list[dict[str, Any]]:
    truth = planted(spark, config)
    rows = []
    for r in measured(spark, config, as_of):
        segment = None if r["breakdown"] == "overall" else r["breakdown_value"]
        p = truth.get((*(r[k] for k in KEY), segment), {})
        low, high = r["conversion_uplift_ci_low"], r["conversion_uplift_ci_high"]
        target = p.get("planted_uplift")
        covered = None if None in (low, high, target) else low <= target <= high
        rows.append(
            {
                "campaign_id": r["campaign_id"],
                "window": f"{r['start_date']}..{r['end_date']}",
                "segment": segment or "(all)",
                "treatment": r["treatment_customers"],
                "control": r["control_customers"],
                "control_rate": r["control_conversion_rate"],
                "treatment_rate": r["treatment_conversion_rate"],
                "measured_uplift": r["conversion_uplift"],
                "ci_low": low,
                "ci_high": high,
                "p_value": r["conversion_p_value"],
                "response_probability": p.get("response_probability"),
                "planted_baseline": p.get("baseline_conversion"),
                "planted_uplift": target,
                "planted_in_ci": covered,
                "incremental_revenue": r["incremental_revenue"],
                "roi": r["roi"],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def pct(v: float | None) -> str:
        return "" if v is None else f"{100 * v:.2f}"

    head = (
        "| campaign | segment | treatment | control | control % | measured uplift pp [95% CI] "
        "| p | planted response % | planted uplift pp | in CI |\n|---|---|---|---|---|---|---|---|"
        "---|---|"
    )
    lines = [head]
    for r in rows:
        ci = f"{pct(r['measured_uplift'])} [{pct(r['ci_low'])}, {pct(r['ci_high'])}]"
        p = "" if r["p_value"] is None else f"{r['p_value']:.3g}"
        inside = {True: "yes", False: "**no**", None: ""}[r["planted_in_ci"]]
        lines.append(
            f"| {r['campaign_id']} | {r['segment']} | {r['treatment']} | {r['control']} | "
            f"{pct(r['control_rate'])} | {ci} | {p} | {pct(r['response_probability'])} | "
            f"{pct(r['planted_uplift'])} | {inside} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--root", type=Path, default=Path("/tmp/pmbench-uplift"))
    parser.add_argument("--run-date", type=date.fromisoformat, default=DEFAULT_RUN_DATE)
    parser.add_argument("--days-after", type=int, default=30, help="E = run date + this")
    parser.add_argument("--env", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: --root)")
    parser.add_argument(
        "--remeasure",
        action="store_true",
        help="keep the data of an earlier run under --root and only run measure at E again",
    )
    args = parser.parse_args()
    configure_logging()
    run_date = args.run_date
    measure_date = run_date + timedelta(days=args.days_after)
    if measure_date > datetime.now(UTC).date():
        sys.exit(f"measure date {measure_date} is after today: validate would quarantine it")
    base = args.root / f"n{args.customers}"
    if not args.remeasure:
        shutil.rmtree(base, ignore_errors=True)
    overrides = [
        f"storage.landing={base}/landing",
        f"storage.warehouse={base}/warehouse",
        f"storage.ground_truth={base}/ground_truth",
        f"generate.customers={args.customers}",
        "spark.conf.spark.ui.showConsoleProgress='false'",
        *args.overrides,
    ]
    config = load_config(args.env, overrides)
    timing: dict[str, float] = {}
    if not args.remeasure:
        timing["generate"] = generate(args.env, overrides, run_date, base)
    spark = build_session(config, "uplift-quality")
    try:
        if args.remeasure:
            timing["measure@E"] = run_stage(spark, config, "measure", measure_date)
        else:
            steps = config.pipeline.steps
            for stage in steps[: steps.index("publish") + 1]:
                timing[f"{stage}@D"] = run_stage(spark, config, stage, run_date)
            timing["simulate_response@E"] = run_stage(
                spark, config, "simulate_response", measure_date
            )
            for stage in MEASURE_STAGES:
                timing[f"{stage}@E"] = run_stage(spark, config, stage, measure_date)
        rows = compare(spark, config, measure_date)
    finally:
        spark.stop()
    result = {
        "customers": args.customers,
        "run_date": run_date.isoformat(),
        "measure_date": measure_date.isoformat(),
        "uplift_by_archetype": config.response.uplift_by_archetype,
        "timing_s": timing,
        "after_publish_s": round(sum(v for k, v in timing.items() if k.endswith("@E")), 1),
        "comparison": rows,
    }
    out = args.out or base.with_suffix(".remeasured.json" if args.remeasure else ".json")
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: v for k, v in result.items() if k != "comparison"}, indent=2))
    print(markdown(rows))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
