"""Whole-pipeline benchmark: every stage at growing sizes, against the engine's own floor.

    .venv/bin/python bench/run.py --sizes 10000 100000 1000000 --root /tmp/pmbench \
        [--stages ingest validate ...] [--set recommend.tune=false ...] [--update-readme]

For each size (customers; generate scales events, orders and items with it), in one Spark
application of its own (a fresh JVM per size, so memory peaks do not carry over):
generate the landing files (kept under --root and reused while the generate settings match),
measure the landing floor (scan + Delta write), run the pipeline's stages in order
(`pipeline.steps`, or --stages) on an empty warehouse, measure the silver floor (scan +
aggregate), then score quality against the planted truth. Each phase runs under its own Spark
job group; after the run the event log gives shuffle, spill and memory per phase and the Delta
logs the rows written (bench/pipeline_metrics.py). Results: bench/results/<time>.json and .md,
the same table on stdout, and with --update-readme in bench/README.md.

    .venv/bin/python bench/run.py --combine bench/results/A.json bench/results/B.json

runs nothing and makes one report of earlier runs (a long 1,000,000 run beside smaller ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import floor
import pipeline_metrics as pm
import recommend_quality
import report
import segments_quality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import precision_marketing
from precision_marketing import definitions
from precision_marketing.cli import STAGES, configure_logging
from precision_marketing.config import Config, load_config
from precision_marketing.generate import next_day as next_day_gen
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, new_run_id
from precision_marketing.spark import build_session

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
README_START, README_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_RUN_DATE = date(2026, 6, 30)
NOT_STAGES = frozenset({"generate", "pipeline"})
STEP_MESSAGE = "step %-28s %s %.1fs"  # runtime.step's log line, captured per phase


def bench_spark_conf(event_log_dir: Path) -> dict[str, str]:
    """What the bench adds to the Spark conf: an uncompressed, unrolled event log with the
    driver's memory peaks per stage (sampled every second), so run.py can read it afterwards."""
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log_dir.resolve().as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.eventLog.logStageExecutorMetrics": "true",
        "spark.executor.processTreeMetrics.enabled": "true",
        "spark.executor.metrics.pollingInterval": "1s",
        "spark.ui.showConsoleProgress": "false",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--root", type=Path, default=Path("/tmp/pmbench"))
    parser.add_argument("--env", default="local", help="conf/<env>.yaml (default: local)")
    parser.add_argument("--run-date", type=date.fromisoformat, default=DEFAULT_RUN_DATE)
    parser.add_argument("--stages", nargs="+", help="default: pipeline.steps from config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--regenerate", action="store_true", help="generate even if kept")
    parser.add_argument("--no-quality", action="store_true", help="skip the quality scores")
    parser.add_argument(
        "--no-next-day", action="store_true", help="skip the next-day run after the first"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--update-readme", action="store_true", help="put the table into bench/README.md"
    )
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        metavar="RESULT_JSON",
        help="run nothing: one report from earlier results (a size in several: the newest)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- one size, in a process of its own ------------------------------------------------------


class StepCapture(logging.Handler):
    """Keeps the stages' own step lines (name, row counts, seconds) for the phase's record."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == STEP_MESSAGE and isinstance(record.args, tuple):
            name, counts, seconds = record.args
            rows = dict(pair.split("=", 1) for pair in str(counts).split() if "=" in pair)
            self.steps.append(
                {"step": name, "seconds": round(float(str(seconds)), 2), "counts": _numbers(rows)}
            )


def _numbers(values: dict[str, str]) -> dict[str, Any]:
    return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in values.items()}


class Recorder:
    """Runs the phases of one size and writes what they did to result.json after each one,
    so a run that dies part-way still leaves its finished phases behind."""

    def __init__(self, spark: SparkSession, size_dir: Path, table_roots: list[Path]) -> None:
        self.spark, self.size_dir, self.table_roots = spark, size_dir, table_roots
        self.result: dict[str, Any] = {"phases": []}

    def save(self) -> None:
        path = self.size_dir / "result.json"
        path.with_suffix(".tmp").write_text(json.dumps(self.result, indent=2, default=str))
        path.with_suffix(".tmp").replace(path)

    def phase(self, name: str, kind: str, action: Callable[[], Any]) -> tuple[bool, Any]:
        sc = self.spark.sparkContext
        before = pm.delta_versions(self.table_roots)
        entry: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "ok": False,
            "error": "did not finish",
            "start_ms": _now_ms(),
        }
        self.result["phases"].append(entry)
        self.save()
        capture = StepCapture()
        logging.getLogger("precision_marketing").addHandler(capture)
        sc.setJobGroup(pm.job_group(name), name)
        log.info("bench: %s ...", name)
        started = time.perf_counter()
        value = None
        try:
            value = action()
            entry.update(ok=True, error=None)
        except Exception as exc:
            log.exception("bench: %s failed", name)
            entry["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 2)
            entry["end_ms"] = _now_ms()
            sc.setJobGroup(pm.job_group("between phases"), "bench bookkeeping")
            logging.getLogger("precision_marketing").removeHandler(capture)
            entry["steps"] = capture.steps
            writes = pm.delta_writes(self.table_roots, before)
            entry["tables"] = {
                os.path.relpath(t, self.size_dir): dataclasses.asdict(w) for t, w in writes.items()
            }
            entry["rows_written"] = sum(w.rows_written for w in writes.values())
            # ru_maxrss is in KiB on Linux; the driver process's peak since it started.
            entry["python_peak_rss_bytes"] = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            )
            self.save()
            log.info(
                "bench: %s %s in %.1fs", name, "ok" if entry["ok"] else "FAILED", entry["seconds"]
            )
        return bool(entry["ok"]), value


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_ms() -> int:
    return int(time.time() * 1000)


def size_config(args: argparse.Namespace, size_dir: Path) -> Config:
    storage = [
        f"storage.landing={size_dir / 'landing'}",
        f"storage.warehouse={size_dir / 'warehouse'}",
        f"storage.ground_truth={size_dir / 'ground_truth'}",
    ]
    config = load_config(args.env, [*storage, *args.overrides])
    conf = {**config.spark.conf, **bench_spark_conf(size_dir / "eventlog")}
    return dataclasses.replace(config, spark=dataclasses.replace(config.spark, conf=conf))


def pipeline_stages(args: argparse.Namespace, config: Config) -> list[str]:
    stages = list(args.stages or config.pipeline.steps)
    unknown = [s for s in stages if s not in STAGES or s in NOT_STAGES]
    if unknown:
        raise SystemExit(f"unknown stage '{unknown[0]}' (known: {', '.join(sorted(STAGES))})")
    return stages


def generation_key(config: Config, customers: int, run_date: date) -> dict[str, Any]:
    """What the kept landing files depend on: regenerate when any of it changes."""
    return {
        **dataclasses.asdict(config.generate),
        "customers": customers,
        "run_date": run_date.isoformat(),
    }


def run_size(args: argparse.Namespace) -> int:
    """The child process: one size, one Spark application."""
    configure_logging()
    customers: int = args.child
    size_dir: Path = args.root / f"n{customers}"
    for scratch in ("warehouse", "floor", "eventlog"):
        shutil.rmtree(size_dir / scratch, ignore_errors=True)
    (size_dir / "eventlog").mkdir(parents=True)
    config = size_config(args, size_dir)
    forget_next_days(config)
    stages = pipeline_stages(args, config)
    key = generation_key(config, customers, args.run_date)
    marker = size_dir / "generated.json"
    reuse = (
        not args.regenerate
        and marker.is_file()
        and json.loads(marker.read_text()) == key
        and (size_dir / "landing").is_dir()
    )

    started = time.perf_counter()
    spark = build_session(config, f"{config.spark.app_name}:bench-n{customers}")
    roots = [size_dir / "warehouse", size_dir / "floor", size_dir / "ground_truth"]
    rec = Recorder(spark, size_dir, roots)
    rec.result.update(
        customers=customers,
        session_start_s=round(time.perf_counter() - started, 2),
        stages=stages,
        generated="reused" if reuse else "generated",
        env=jvm_versions(spark),
        spark_conf={"master": spark.sparkContext.master, **config.spark.conf},
    )

    next_day = args.run_date + timedelta(days=1)

    def context(job: str, run_date: date = args.run_date, **options: Any) -> JobContext:
        now = datetime.now(UTC)
        return JobContext(spark, config, run_date, new_run_id(job, now), now, options)

    def stage_action(stage: str, run_date: date = args.run_date) -> Callable[[], None]:
        return lambda: STAGES[stage].run(context(stage, run_date))

    try:
        if not reuse:
            marker.unlink(missing_ok=True)
            ok, _ = rec.phase(
                "generate",
                "generate",
                lambda: STAGES["generate"].run(context("generate", customers=customers)),
            )
            if not ok:
                return finish(rec, spark, "generate failed")
            marker.write_text(json.dumps(key))
        floor_dir = str((size_dir / "floor").resolve())
        _, landing_rows = rec.phase(
            report.LANDING_FLOOR,
            "floor",
            lambda: floor.landing_scan_and_write(spark, config, floor_dir),
        )
        rec.result["landing_rows"] = landing_rows
        silver_events = tables.table_path(config, Layer.SILVER, "events")
        silver_floor_done = False

        def silver_floor() -> None:
            """Measured right before the first stage set against it (features), when the JVM
            is as warm as it will be for that stage, or at the end when none follows."""
            nonlocal silver_floor_done
            if not silver_floor_done and tables.is_delta(spark, silver_events):
                silver_floor_done = True
                rec.phase(
                    report.SILVER_FLOOR,
                    "floor",
                    lambda: floor.silver_scan_and_aggregate(spark, config, floor_dir),
                )

        for stage in stages:
            if report.floor_for(stage) == report.SILVER_FLOOR:
                silver_floor()
            ok, _ = rec.phase(stage, "stage", stage_action(stage))
            if not ok:
                return finish(rec, spark, f"stage {stage} failed")
        silver_floor()
        if not args.no_quality:
            _, scores = rec.phase(
                "quality", "quality", lambda: quality(spark, config, args.run_date)
            )
            rec.result["quality"] = scores or {}
        if not args.no_next_day:
            # A daily schedule's second day: one more day of landing files on this warehouse,
            # then every stage again on the day after (models refit by their cadence only).
            ok, _ = rec.phase(
                report.NEXT_DAY_GENERATE,
                "generate",
                lambda: STAGES["generate"].run(context("generate", next_day, next_day=True)),
            )
            if not ok:
                return finish(rec, spark, "generate --next-day failed")
            for stage in stages:
                ok, _ = rec.phase(
                    report.next_day_phase(stage), "next_day", stage_action(stage, next_day)
                )
                if not ok:
                    return finish(rec, spark, f"next-day stage {stage} failed")
        return finish(rec, spark, None)
    except BaseException:
        finish(rec, spark, "interrupted")
        raise


def forget_next_days(config: Config) -> None:
    """Takes kept landing files back to their history: the day folders and truth rows an earlier
    run's next day added (generate.next_day) would otherwise be ingested by the first run."""
    for source in next_day_gen.DELIVERED:
        for day in Path(tables.landing(config, source)).glob(next_day_gen.FOLDER_GLOB):
            shutil.rmtree(day)
    shutil.rmtree(tables.ground_truth(config, next_day_gen.TRUTH_TABLE), ignore_errors=True)


def finish(rec: Recorder, spark: SparkSession, error: str | None) -> int:
    rec.result.update(ok=error is None, error=error)
    rec.save()
    spark.stop()  # closes the event log (it loses its .inprogress suffix)
    return 0 if error is None else 1


def jvm_versions(spark: SparkSession) -> dict[str, str]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return {
        "spark": spark.version,
        "java": str(jvm.System.getProperty("java.version")),
        "app_id": str(spark.sparkContext.applicationId),
    }


# --- quality against the planted truth ------------------------------------------------------


def quality(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    """The quality benches' scores for what this run wrote; a part whose table is missing (its
    stage not in the run) is left out, a part that fails is recorded with its error."""
    parts: dict[str, Callable[[], Any]] = {}
    if tables.is_delta(spark, tables.table_path(config, Layer.GOLD, "segments")):
        parts["segments"] = lambda: segment_scores(spark, config, as_of)
    if tables.is_delta(spark, tables.table_path(config, Layer.GOLD, "recommendations")):
        parts["recommend"] = lambda: recommend_scores(spark, config, as_of)
    if tables.is_delta(spark, tables.table_path(config, Layer.OPS, "propensity_metrics")):
        parts["propensity"] = lambda: propensity_scores(spark, config, as_of)
    scores: dict[str, Any] = {}
    for name, score in parts.items():
        try:
            scores[name] = score()
        except Exception as exc:
            log.exception("bench: %s quality failed", name)
            scores[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    if "recommend" in scores and "coverage" in scores["recommend"]:
        scores["recommend_coverage"] = scores["recommend"].pop("coverage")
    return scores


def segment_scores(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    cells = segments_quality.segments_vs_planted(spark, config, as_of)
    return {
        "ari_vs_planted": segments_quality.adjusted_rand_index(segments_quality.contingency(cells)),
        "k": len({segment for segment, _, _ in cells}),
        "customers_scored": sum(n for _, _, n in cells),
    }


def recommend_scores(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    out: dict[str, Any] = {"coverage": recommend_coverage(spark, config, as_of)}
    if tables.is_delta(spark, tables.table_path(config, Layer.OPS, "recommend_metrics")):
        # Empty when recommend.tune=false: the time split is only evaluated while tuning.
        out["time_split"] = recommend_quality.time_split_metrics(spark, config, as_of)
    out["planted"] = recommend_quality.planted_metrics(spark, config, as_of)
    return out


def recommend_coverage(spark: SparkSession, config: Config, as_of: date) -> dict[str, int]:
    """The customers recommend serves at the run date (`definitions.customers_at`), and how
    many got a list (from ALS)."""

    def silver(name: str) -> DataFrame:
        return tables.read(spark, tables.table_path(config, Layer.SILVER, name))

    active = definitions.active_customers(silver("events"), silver("order_lines"), as_of)
    eligible = definitions.customers_at(silver("customers"), active, as_of)
    recs = tables.read(spark, tables.table_path(config, Layer.GOLD, "recommendations")).where(
        F.col("as_of_date") == F.lit(as_of)
    )
    return {
        "eligible_customers": eligible.count(),
        "customers_with_recommendations": recs.select("customer_id").distinct().count(),
        "customers_served_by_als": recs.where(F.col("source") == "als")
        .select("customer_id")
        .distinct()
        .count(),
    }


def propensity_scores(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    """The AUC figures the propensity stage recorded for this run date (model, baseline,
    oracle: whatever rows name an AUC), keyed `<model>.<metric>`."""
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, "propensity_metrics"))
    if "as_of_date" in metrics.columns:
        metrics = metrics.where(F.col("as_of_date") == F.lit(as_of))
    if not {"metric", "value"} <= set(metrics.columns):
        return {"error": f"unexpected columns {metrics.columns}"}
    model = F.col("model") if "model" in metrics.columns else F.lit("model")
    rows = (
        metrics.where(F.lower("metric").contains("auc"))
        .select(model.alias("model"), "metric", "value")
        .limit(100)
        .collect()  # bounded: a few metrics per model
    )
    return {f"{r['model']}.{r['metric']}": r["value"] for r in rows}


# --- all sizes: the parent process -----------------------------------------------------------


def run_child(args: argparse.Namespace, customers: int) -> int:
    """Runs one size in a fresh interpreter (and JVM); its output goes to <size>/bench.log,
    the bench's own progress lines also to the console."""
    size_dir = args.root / f"n{customers}"
    size_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(customers),
        "--root",
        str(args.root),
        "--env",
        args.env,
        "--run-date",
        args.run_date.isoformat(),
    ]
    if args.stages:
        cmd += ["--stages", *args.stages]
    for override in args.overrides:
        cmd += ["--set", override]
    cmd += ["--regenerate"] if args.regenerate else []
    cmd += ["--no-quality"] if args.no_quality else []
    print(f"n={customers:,}: log {size_dir / 'bench.log'}", flush=True)
    with (size_dir / "bench.log").open("w") as out:
        child = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        assert child.stdout is not None
        for line in child.stdout:
            out.write(line)
            if " bench: " in line:
                print(f"  n={customers:,} {line.split(' bench: ', 1)[1].rstrip()}", flush=True)
        return child.wait()


def collect(args: argparse.Namespace, customers: int, exit_code: int) -> dict[str, Any]:
    """The child's result.json with Spark's figures from its event log added to each phase."""
    size_dir = args.root / f"n{customers}"
    path = size_dir / "result.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"phases": []}
    result.setdefault("customers", customers)
    if exit_code != 0 and result.get("ok", True):
        result.update(ok=False, error=f"exited with code {exit_code}")
    windows = [
        pm.Window(p["name"], p["start_ms"], p.get("end_ms") or _now_ms()) for p in result["phases"]
    ]
    figures = pm.read_spark_figures(size_dir / "eventlog", windows)
    for p in result["phases"]:
        p["spark"] = figures.get(p["name"], pm.SparkFigures()).as_dict()
    if pm.UNATTRIBUTED in figures:
        result["spark_outside_phases"] = figures[pm.UNATTRIBUTED].as_dict()
    event_log = pm.find_event_log(size_dir / "eventlog")
    result["event_log"] = str(event_log) if event_log else None
    result["log"] = str(size_dir / "bench.log")
    return result


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo")
    memory_kb = 0
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "load_before": _load(),
    }


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def versions(results: list[dict[str, Any]]) -> dict[str, str]:
    jvm: dict[str, str] = next((r["env"] for r in results if r.get("env")), {})
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "java": jvm.get("java", "?"),
        "spark": jvm.get("spark", "?"),
        "pyspark": importlib.metadata.version("pyspark"),
        "delta": importlib.metadata.version("delta-spark"),
        "delta_jars": ", ".join(p.name for p in sorted((ROOT / ".jars").glob("*.jar"))),
        "great_expectations": importlib.metadata.version("great-expectations"),
        "commit": commit or "?",
        # Which checkout's code ran: an editable install can point at another one.
        "package": str(Path(precision_marketing.__file__).parent),
    }


def write_outputs(args: argparse.Namespace, doc: dict[str, Any]) -> tuple[Path, Path]:
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = doc["created"].replace(":", "").replace("-", "")
    json_path, md_path = args.out / f"{stamp}.json", args.out / f"{stamp}.md"
    json_path.write_text(json.dumps(doc, indent=2, default=str))
    md_path.write_text(report.markdown(doc))
    return json_path, md_path


def update_readme(markdown: str) -> None:
    text = README.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    README.write_text(f"{text[:start]}\n{markdown}\n{text[end:]}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return run_size(args)
    if args.combine:
        earlier = [json.loads(path.read_text()) for path in args.combine]
        return publish(args, report.combine(earlier, _utc_now()))
    config = load_config(args.env, args.overrides)
    stages = pipeline_stages(args, config)
    host = machine()
    created = _utc_now()
    results = []
    for customers in sorted(args.sizes):
        code = run_child(args, customers)
        results.append(collect(args, customers, code))
    host["load_after"] = _load()
    doc = {
        "created": created,
        "command": " ".join(["bench/run.py", *(argv or sys.argv[1:])]),
        "machine": host,
        "versions": versions(results),
        "config": {
            "env": args.env,
            "run_date": args.run_date.isoformat(),
            "stages": stages,
            "overrides": args.overrides,
            "bench_spark_conf": sorted(bench_spark_conf(Path("<root>/n<size>/eventlog"))),
            "spark_conf": next((r["spark_conf"] for r in results if r.get("spark_conf")), {}),
        },
        "sizes": results,
        "scaling": report.scaling(results),
        "targets": {r["customers"]: report.targets(r) for r in results},
    }
    return publish(args, doc)


def publish(args: argparse.Namespace, doc: dict[str, Any]) -> int:
    """Writes the JSON and Markdown (and the README table when asked); 1 if any size failed."""
    json_path, md_path = write_outputs(args, doc)
    markdown = report.markdown(doc)
    print(markdown)
    print(f"results: {json_path} and {md_path}")
    if args.update_readme:
        update_readme(markdown)
        print(f"table written to {README}")
    return 0 if all(r.get("ok") for r in doc["sizes"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
