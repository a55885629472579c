"""Propensity quality against the generator's planted purchase rates, at 10k and 100k customers.

For each size: generate synthetic data (once; kept under --root), run ingest, validate, silver
and features for the run date in one application, then `propensity` (which builds the past
feature snapshots it needs), timing each. It then reports, on the job's validation as_of date:

- model AUC (from ops/propensity_metrics) and the oracle AUC: the same customers and labels
  ranked by the true probability 1 - exp(-rate x overlap of [as_of, as_of + H) with the
  customer's active window) from ground_truth/customers; their ratio;
- a bound: the AUC of a ranker that knows who is still active but must estimate the rate from
  the observed order count (posterior mean of a gamma prior), i.e. what the order history can
  tell at best about the rate;
- top-decile lift and precision, and the expected calibration error (ECE over deciles);
- at the run date: the ECE of gold/propensity against the true probability of the next H days,
  decile by decile, and the mean served probability against the mean true one (the planted
  truth is known even where the future is not generated);
- both candidates' validation ROC AUC (logistic, gbt), which one served, and the base rate and
  mean calibrated probability on the calibration snapshot.

    .venv/bin/python bench/propensity_quality.py --customers 10000 100000 --root /tmp/propbench

Everything collected is an aggregate: metric rows, ten deciles, single AUC values.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from segments_quality import storage_args, submit  # noqa: E402  (bench/ is on sys.path)

# Through features: propensity runs on its own afterwards, so its time is measured apart.
STEPS = "[ingest,validate,silver,features]"


def step_seconds(base: Path, job: str, run_date: date) -> dict[str, float]:
    """'step <name> ... <s>s' lines of a job's log, plus the job's own total."""
    text = (base / f"{job}_{run_date.isoformat()}.log").read_text()
    steps = {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(r"step (propensity [a-z_ ]+?)\s{1,}(?:\S+=\S+ )*([0-9.]+)s$", text,
                             re.MULTILINE)
    }  # fmt: skip
    found = re.findall(rf"{job} finished in ([0-9.]+)s", text)
    if found:
        steps["total"] = float(found[-1])
    return steps


def measure(spark: Any, config: Any, run_date: date) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from precision_marketing.io import tables
    from precision_marketing.io.tables import Layer
    from precision_marketing.propensity import evaluate, job, transforms
    from precision_marketing.propensity.evaluate import DECILES

    cfg = config.propensity
    h = cfg.horizon_days
    _, validation_date = transforms.snapshot_dates(run_date, cfg)
    version = job.model_version(cfg, run_date)
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, job.METRICS)).where(
        (F.col("as_of_date") == F.lit(run_date)) & (F.col("model_version") == version)
    )
    # Bounded: models x (metrics + deciles x 7) rows.
    rows = metrics.collect()
    ops = {(r["model"], r["metric"], r["decile"]): r["value"] for r in rows}

    truth = tables.read(spark, tables.ground_truth(config, "customers")).select(
        "customer_id", "purchase_rate_per_day", "active_from", "active_until"
    )

    def true_probability(start: date) -> Any:
        end = F.least(F.date_add(F.lit(start), h), F.date_add(F.col("active_until"), 1))
        overlap = F.greatest(F.lit(0), F.datediff(end, F.greatest(F.lit(start), "active_from")))
        return 1 - F.exp(-F.col("purchase_rate_per_day") * overlap)

    inputs = job.read_inputs(spark, config)
    validation = (
        inputs.labelled(validation_date, cfg)
        .join(truth, "customer_id")
        .withColumn("p_true", true_probability(validation_date))
        .cache()
    )
    # The order history's best: activity known, rate = posterior mean of orders / exposure.
    exposure = F.greatest(
        F.least(F.coalesce("tenure_days", transforms.HISTORY_DAYS), transforms.HISTORY_DAYS),
        F.lit(1),
    )
    active = F.col("active_until") >= F.lit(validation_date)
    bound_score = F.when(active, (F.col("orders_lifetime") + 0.5) / (exposure + 30.0)).otherwise(
        F.lit(-1.0)
    )
    oracle = evaluate.ranking_metrics(validation, "p_true", transforms.LABEL)
    bound = evaluate.ranking_metrics(
        validation.withColumn("bound", bound_score), "bound", transforms.LABEL
    )
    customers = validation.count()
    validation.unpersist()

    scored = tables.read(spark, tables.table_path(config, Layer.GOLD, job.PROPENSITY)).where(
        F.col("as_of_date") == F.lit(run_date)
    )
    by_decile = (
        scored.join(truth, "customer_id")
        .withColumn("p_true", true_probability(run_date))
        .groupBy("decile")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.avg("probability").alias("predicted"),
            F.avg("p_true").alias("true"),
        )
        .orderBy("decile")
        .collect()  # ten rows
    )
    scored_customers = sum(r["n"] for r in by_decile)
    ece_truth = sum(r["n"] / scored_customers * abs(r["predicted"] - r["true"]) for r in by_decile)
    mean_served = sum(r["n"] * r["predicted"] for r in by_decile) / scored_customers
    mean_true = sum(r["n"] * r["true"] for r in by_decile) / scored_customers
    model_auc = ops[("propensity", "roc_auc", None)]
    return {
        "validation_as_of": validation_date.isoformat(),
        "validation_customers": customers,
        "model_auc": model_auc,
        "oracle_auc": oracle["roc_auc"],
        "ratio": model_auc / oracle["roc_auc"],
        "bound_activity_known_auc": bound["roc_auc"],
        "recency_baseline_auc": ops[("recency_baseline", "roc_auc", None)],
        "model_pr_auc": ops[("propensity", "pr_auc", None)],
        "oracle_pr_auc": oracle["pr_auc"],
        "top_decile_lift": ops[("propensity", "top_decile_lift", None)],
        "top_decile_precision": ops[("propensity", "top_decile_precision", None)],
        "baseline_top_decile_lift": ops[("recency_baseline", "top_decile_lift", None)],
        "ece_validation": ops[("propensity", "ece", None)],
        "brier": ops[("propensity", "brier", None)],
        "log_loss": ops[("propensity", "log_loss", None)],
        "base_rate": ops[("propensity", "base_rate", None)],
        "calibration_validation": [
            (d, ops[("propensity", "mean_predicted", d)], ops[("propensity", "observed_rate", d)])
            for d in range(1, DECILES + 1)
        ],
        "ece_vs_truth_at_run_date": ece_truth,
        "calibration_vs_truth_at_run_date": [
            (r["decile"], r["predicted"], r["true"]) for r in by_decile
        ],
        "scored_customers": scored_customers,
        "spend_mae": ops.get(("spend", "mae", None)),
        "spend_mape": ops.get(("spend", "mape", None)),
        "spend_last_period_mae": ops.get(("spend_last_period", "mae", None)),
        "spend_last_period_mape": ops.get(("spend_last_period", "mape", None)),
        "churn_auc": ops.get(("churn", "roc_auc", None)),
        "logistic_auc": ops.get(("logistic", "roc_auc", None)),
        "gbt_auc": ops.get(("gbt", "roc_auc", None)),
        "served": next((m for m in ("gbt", "logistic") if ops.get((m, "chosen", None))), None),
        "calibration_base_rate": ops.get(("calibration", "base_rate", None)),
        "calibration_mean_predicted": ops.get(("calibration", "mean_predicted", None)),
        "mean_served_at_run_date": mean_served,
        "mean_true_at_run_date": mean_true,
    }


def score(base: Path, run_date: date, overrides: list[str]) -> dict[str, Any]:
    from precision_marketing.config import load_config
    from precision_marketing.spark import build_session

    sets = [s.removeprefix("--set=") for s in storage_args(base)] + overrides
    config = load_config("local", sets)
    spark = build_session(config, "propensity-quality")
    try:
        return measure(spark, config, run_date)
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/propbench"))
    parser.add_argument("--run-date", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--days", type=int, default=None, help="generator history (days)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="config override, key=value"
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: --root)")
    args = parser.parse_args()
    run_date = args.run_date
    results = {}
    for n in args.customers:
        base = args.root / f"n{n}"
        base.mkdir(parents=True, exist_ok=True)
        timing: dict[str, Any] = {}
        if not (base / "warehouse" / "silver" / "order_lines").exists():
            days = [f"--days={args.days}"] if args.days else []
            timing["generate_s"] = round(
                submit("generate", run_date, base, f"--customers={n}", *days), 1
            )
            timing["pipeline_to_features_s"] = round(
                submit("pipeline", run_date, base, f"--set=pipeline.steps={STEPS}"), 1
            )
        extra = [f"--set={s}" for s in args.overrides]
        timing["propensity_wall_s"] = round(submit("propensity", run_date, base, *extra), 1)
        timing["propensity_steps_s"] = step_seconds(base, "propensity", run_date)
        results[n] = {"timing": timing, **score(base, run_date, args.overrides)}
        print(json.dumps({n: results[n]}, indent=2), flush=True)
    out = args.out or args.root / "propensity_quality.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
