"""From measured phases to the benchmark's verdicts and tables: floor ratios, scaling, targets.

Pure functions of the result dictionaries run.py writes (one per size, see `run.py`), so the
arithmetic is testable without Spark. Targets are reported, never asserted: a benchmark that
fails on a slow machine says nothing the table would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

LANDING_FLOOR = "floor:landing"
SILVER_FLOOR = "floor:silver_aggregate"
# Stages that read and rewrite the landing rows; every other stage is set against the
# aggregate over silver events (for features the floor of the same work, for the rest a yardstick).
LANDING_STAGES = frozenset({"ingest", "validate", "silver"})
FLOOR_LABELS = {LANDING_FLOOR: "landing scan+write", SILVER_FLOOR: "silver scan+aggregate"}
# The daily schedule's second day (run.py): one more day of files, every stage again.
NEXT_DAY_GENERATE = "generate next day"
# Totals of the phases of one kind: the first run's stages, the next day's.
TOTALS = {"pipeline": "stage", "next-day run": "next_day"}

# 10x the data in more than 12x the time counts as faster than linear.
SUPERLINEAR_SLACK = 1.2
# Issue 16's ratio targets, reported at every size.
FEATURES_MAX_FLOOR_RATIO = 3.0
VALIDATE_MAX_SHARE_OF_INGEST = 0.40
LANDING_STAGES_MAX_FLOOR_RATIO = 1.5  # ingest and silver against the landing scan+write
# Issue 16's wall-clock targets, set at 1,000,000 customers (smaller sizes: reported only).
TARGET_SIZE = 1_000_000
FIRST_RUN_MAX_S = 30 * 60
NEXT_DAY_MAX_S = 10 * 60

Result = Mapping[str, Any]


def floor_for(stage: str) -> str:
    return LANDING_FLOOR if stage in LANDING_STAGES else SILVER_FLOOR


def next_day_phase(stage: str) -> str:
    return f"next day: {stage}"


def phases(result: Result, kind: str | None = None) -> list[Mapping[str, Any]]:
    return [p for p in result.get("phases", []) if kind is None or p["kind"] == kind]


def seconds(result: Result, phase: str) -> float | None:
    """Seconds of a phase that completed, else None."""
    for p in phases(result):
        if p["name"] == phase and p["ok"]:
            return float(p["seconds"])
    return None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def total_seconds(result: Result, kind: str) -> float | None:
    """Sum over the phases of a kind (stage: the first run), when every one of them completed."""
    done = phases(result, kind)
    if not done or not all(p["ok"] for p in done):
        return None
    return sum(float(p["seconds"]) for p in done)


def pipeline_seconds(result: Result) -> float | None:
    return total_seconds(result, "stage")


def phase_or_total_seconds(result: Result, name: str) -> float | None:
    return total_seconds(result, TOTALS[name]) if name in TOTALS else seconds(result, name)


def floor_ratios(result: Result) -> dict[str, float | None]:
    """Each stage's seconds as a multiple of its floor's seconds."""
    return {
        p["name"]: ratio(seconds(result, p["name"]), seconds(result, floor_for(p["name"])))
        for p in phases(result, "stage")
    }


def provenance(result: Result) -> tuple[str, tuple[str, ...]]:
    """The commit and config overrides a size ran with (set by `combine`; a single run's sizes
    share one, so a result without it counts as the same)."""
    return result.get("commit", ""), tuple(result.get("overrides", ()))


def unequal_work(small: Result, large: Result) -> str | None:
    """Why two sizes did not do the same work (other code or other settings), or None."""
    (commit_a, overrides_a), (commit_b, overrides_b) = provenance(small), provenance(large)
    reasons = []
    if commit_a != commit_b:
        reasons.append(f"commit {commit_a or '?'} vs {commit_b or '?'}")
    if overrides_a != overrides_b:
        shown = [
            ", ".join(f"`{o}`" for o in o_) or "no overrides" for o_ in (overrides_a, overrides_b)
        ]
        reasons.append(f"{shown[0]} vs {shown[1]}")
    return "; ".join(reasons) or None


def scaling(results: Sequence[Result]) -> list[dict[str, Any]]:
    """For consecutive sizes: time ratio per phase against the data ratio, superlinear flagged.

    Only like for like: a pair whose commit or overrides differ is kept with the reason and no
    ratios (e.g. ALS tuning on at one size and off at the next is not growth with the data).
    """
    ordered = sorted(results, key=lambda r: r["customers"])
    steps = []
    for small, large in pairwise(ordered):
        factor = large["customers"] / small["customers"]
        reason = unequal_work(small, large)
        if reason:
            steps.append(
                {"from": small["customers"], "to": large["customers"], "factor": factor,
                 "phases": {}, "not_comparable": reason}
            )  # fmt: skip
            continue
        names = [p["name"] for p in phases(large) if p["kind"] != "quality"]
        by_phase = {}
        for name in [*names, *TOTALS]:
            grown = ratio(phase_or_total_seconds(large, name), phase_or_total_seconds(small, name))
            by_phase[name] = {
                "ratio": grown,
                "superlinear": grown is not None and grown > factor * SUPERLINEAR_SLACK,
            }
        steps.append(
            {
                "from": small["customers"],
                "to": large["customers"],
                "factor": factor,
                "phases": by_phase,
            }
        )
    return steps


def targets(result: Result) -> dict[str, dict[str, Any]]:
    """The issue's targets for one size: measured value and whether it was met (None: unknown)."""
    stages = phases(result, "stage")
    failed = [p["name"] for p in stages if not p["ok"]]
    features = ratio(seconds(result, "features"), seconds(result, SILVER_FLOOR))
    over_landing = {
        stage: ratio(seconds(result, stage), seconds(result, LANDING_FLOOR))
        for stage in ("ingest", "silver")
    }
    validate = ratio(seconds(result, "validate"), seconds(result, "ingest"))
    coverage = result.get("quality", {}).get("recommend_coverage", {})
    served = coverage.get("customers_with_recommendations")
    eligible = coverage.get("eligible_customers")
    recommend_ok = seconds(result, "recommend") is not None
    at_target_size = result["customers"] >= TARGET_SIZE

    def wall_clock(kind: str, limit: float) -> dict[str, Any]:
        value = total_seconds(result, kind)
        met = None if value is None or not at_target_size else value <= limit
        return {"value": value, "limit": limit, "met": met}

    return {
        "first_run_wall_clock": wall_clock("stage", FIRST_RUN_MAX_S),
        "next_day_wall_clock": wall_clock("next_day", NEXT_DAY_MAX_S),
        "pipeline_finishes": {
            "value": "ok"
            if stages and not failed
            else f"failed at {failed[0]}"
            if failed
            else str(result.get("error") or "not run"),
            "met": bool(stages) and not failed,
        },
        "features_vs_floor": {
            "value": features,
            "limit": FEATURES_MAX_FLOOR_RATIO,
            "met": None if features is None else features <= FEATURES_MAX_FLOOR_RATIO,
        },
        "validate_share_of_ingest": {
            "value": validate,
            "limit": VALIDATE_MAX_SHARE_OF_INGEST,
            "met": None if validate is None else validate <= VALIDATE_MAX_SHARE_OF_INGEST,
        },
        **{
            f"{stage}_vs_floor": {
                "value": value,
                "limit": LANDING_STAGES_MAX_FLOOR_RATIO,
                "met": None if value is None else value <= LANDING_STAGES_MAX_FLOOR_RATIO,
            }
            for stage, value in over_landing.items()
        },
        "recommend_all_customers": {
            "value": ratio(served, eligible),
            "als_share": ratio(coverage.get("customers_served_by_als"), eligible),
            "met": (recommend_ok and served == eligible) if served is not None else None,
        },
    }


def combine(docs: Sequence[Mapping[str, Any]], created: str) -> dict[str, Any]:
    """One report from several runs' reports: each size from the newest run that measured it.

    A 1,000,000-customer run takes hours; this sets it beside smaller sizes run on another
    occasion. Header fields (machine, versions, config) are the newest run's; `runs` says which
    run, commit, overrides and load each size came from.
    """
    ordered = sorted(docs, key=lambda d: d["created"])
    newest = {r["customers"]: d for d in ordered for r in d["sizes"]}  # later runs win
    kept = [[r for r in d["sizes"] if newest[r["customers"]] is d] for d in ordered]
    results = sorted(
        (
            {**r, "commit": d["versions"].get("commit", "?"),
             "overrides": list(d["config"].get("overrides", []))}
            for d, sizes in zip(ordered, kept, strict=True)
            for r in sizes
        ),
        key=lambda r: r["customers"],
    )  # fmt: skip
    runs = [
        {
            "created": d["created"],
            "commit": d["versions"].get("commit", "?"),
            "overrides": d["config"].get("overrides", []),
            "load_before": d["machine"].get("load_before"),
            "load_after": d["machine"].get("load_after"),
            "sizes": sorted(r["customers"] for r in sizes),
        }
        for d, sizes in zip(ordered, kept, strict=True)
        if sizes
    ]
    return {
        **ordered[-1],
        "created": created,
        "sizes": results,
        "scaling": scaling(results),
        "targets": {r["customers"]: targets(r) for r in results},
        "runs": runs,
    }


# --- Markdown ------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _bytes(value: int | None) -> str:
    if not value:
        return "0" if value == 0 else ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return ""


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def size_table(result: Result) -> list[str]:
    ratios = floor_ratios(result)
    rows = []
    for p in phases(result):
        if p["kind"] == "quality":
            continue
        spark = p.get("spark") or {}
        floor = f"{_num(ratios.get(p['name']), 2)}" if p["kind"] == "stage" else ""
        status = "" if p["ok"] else " (**failed**)"
        rows.append(
            [
                f"{p['name']}{status}",
                _num(p["seconds"]),
                floor,
                _count(spark.get("stages")),
                _count(spark.get("input_records")),
                _count(p.get("rows_written")),
                _bytes(spark.get("shuffle_read_bytes")),
                _bytes(spark.get("shuffle_write_bytes")),
                f"{_bytes(spark.get('memory_spilled_bytes'))} / "
                f"{_bytes(spark.get('disk_spilled_bytes'))}",
                _bytes(spark.get("peak_heap_bytes")),
                _bytes(spark.get("peak_rss_bytes")),
            ]
        )
    for name, kind in TOTALS.items():
        if phases(result, kind):
            rows.append([f"**{name}**", _num(total_seconds(result, kind)), *[""] * 9])
    header = [
        "phase",
        "s",
        "x floor",
        "Spark stages",
        "rows read",
        "rows written",
        "shuffle read",
        "shuffle write",
        "spill mem / disk",
        "peak heap",
        "peak RSS",
    ]
    return _table(header, rows)


def scaling_table(results: Sequence[Result], steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """Times per size and growth per like-for-like pair; unequal pairs listed below, apart."""
    ordered = sorted(results, key=lambda r: r["customers"])
    apart = [s for s in steps if s.get("not_comparable")]
    steps = [s for s in steps if not s.get("not_comparable")]
    names: list[str] = []
    for r in ordered:
        names += [p["name"] for p in phases(r) if p["kind"] != "quality" and p["name"] not in names]
    header = [
        "phase",
        *(f"s @ {r['customers']:,}" for r in ordered),
        *(f"x ({s['to']:,} / {s['from']:,})" for s in steps),
    ]
    rows = []
    for name in [*names, *TOTALS]:
        times = [phase_or_total_seconds(r, name) for r in ordered]
        if all(t is None for t in times) and name in TOTALS:
            continue
        growth = []
        for s in steps:
            cell = s["phases"].get(name, {})
            flag = " **superlinear**" if cell.get("superlinear") else ""
            growth.append(f"{_num(cell.get('ratio'), 2)}{flag}")
        rows.append([name, *(_num(t) for t in times), *growth])
    notes = [
        f"Not compared, {s['from']:,} -> {s['to']:,} customers: different work "
        f"({s['not_comparable']})."
        for s in apart
    ]
    return [*_table(header, rows), *([""] if notes else []), *notes]


def targets_table(results: Sequence[Result]) -> list[str]:
    ordered = sorted(results, key=lambda r: r["customers"])
    verdicts = [targets(r) for r in ordered]
    header = ["target", *(f"{r['customers']:,}" for r in ordered)]

    def cells(key: str, show: Any) -> list[str]:
        return [f"{show(v[key])} ({_met(v[key]['met'])})" for v in verdicts]

    def minutes(t: Mapping[str, Any]) -> str:
        return "" if t["value"] is None else f"{t['value'] / 60:,.1f} min"

    def times(t: Mapping[str, Any]) -> str:
        return "" if t["value"] is None else f"{t['value']:.2f}x"

    rows = [
        ["whole pipeline finishes", *cells("pipeline_finishes", lambda t: t["value"])],
        [
            f"first run <= {FIRST_RUN_MAX_S // 60} min at {TARGET_SIZE:,}",
            *cells("first_run_wall_clock", minutes),
        ],
        [
            f"next-day run <= {NEXT_DAY_MAX_S // 60} min at {TARGET_SIZE:,}",
            *cells("next_day_wall_clock", minutes),
        ],
        [
            f"features <= {FEATURES_MAX_FLOOR_RATIO}x silver scan+aggregate",
            *cells("features_vs_floor", times),
        ],
        [
            f"validate <= {VALIDATE_MAX_SHARE_OF_INGEST:.0%} of ingest",
            *cells(
                "validate_share_of_ingest",
                lambda t: "" if t["value"] is None else f"{t['value']:.0%}",
            ),
        ],
        *[
            [
                f"{stage} <= {LANDING_STAGES_MAX_FLOOR_RATIO}x landing scan+write",
                *cells(f"{stage}_vs_floor", times),
            ]
            for stage in ("ingest", "silver")
        ],
        [
            "recommendations for every customer (ALS-served share)",
            *cells(
                "recommend_all_customers",
                lambda t: (
                    ""
                    if t["value"] is None
                    else f"{t['value']:.1%} ({_num(t['als_share'] and 100 * t['als_share'])}% ALS)"
                ),
            ),
        ],
    ]
    return _table(header, rows)


QUALITY_ROWS = (
    ("segments.ari_vs_planted", "ARI, segments vs planted archetypes"),
    ("segments.k", "segments found (k)"),
    ("recommend.planted.served.ndcgAtK@10", "NDCG@10 served (blend or ALS), planted"),
    ("recommend.planted.popular.ndcgAtK@10", "NDCG@10 popularity, planted preferences"),
    ("recommend.planted.recently_viewed.ndcgAtK@10", "NDCG@10 recently viewed, planted"),
    ("recommend.planted.unseen.served.ndcgAtK@10", "NDCG@10 served, planted, seen items out"),
    ("recommend.planted.unseen.popular.ndcgAtK@10", "NDCG@10 popularity, planted, seen items out"),
    ("recommend.time_split.blend.ndcgAtK@10", "NDCG@10 blend, time split"),
    ("recommend.time_split.als.ndcgAtK@10", "NDCG@10 ALS, time split"),
    ("recommend.time_split.cooccurrence.ndcgAtK@10", "NDCG@10 co-occurrence, time split"),
    ("recommend.time_split.popular.ndcgAtK@10", "NDCG@10 popularity, time split"),
)


def quality_table(results: Sequence[Result]) -> list[str]:
    ordered = sorted(results, key=lambda r: r["customers"])
    flat = [flatten(r.get("quality", {})) for r in ordered]
    keys = [k for k, _ in QUALITY_ROWS]
    # Whatever else was measured (propensity AUCs, when that stage writes them) follows.
    extra = sorted({k for f in flat for k in f if k.startswith("propensity.") and k not in keys})
    labels = dict(QUALITY_ROWS)
    rows = []
    for key in [*keys, *extra]:
        values = [f.get(key) for f in flat]
        if all(v is None for v in values):
            continue
        rows.append(
            [
                labels.get(key, key),
                *(_num(v, 3) if isinstance(v, float) else str(v or "") for v in values),
            ]
        )
    return _table(["metric", *(f"{r['customers']:,}" for r in ordered)], rows)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def markdown(report: Mapping[str, Any]) -> str:
    results = report["sizes"]
    m, v, c = report["machine"], report["versions"], report["config"]
    lines = [
        f"### Pipeline benchmark, {report['created']}",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gb']:.0f} GB, {m['os']}; load average "
        f"{m['load_before']} before, {m['load_after']} after. Versions: Python {v['python']}, "
        f"Java {v.get('java', '?')}, Spark {v.get('spark', '?')}, Delta {v['delta']}, "
        f"Great Expectations {v['great_expectations']}; commit {v['commit']}.",
        f"Env `{c['env']}`, run date {c['run_date']}, stages {', '.join(c['stages'])}; "
        f"overrides: {', '.join(f'`{o}`' for o in c['overrides']) or 'none'}.",
        "",
        *_runs_lines(report.get("runs", [])),
    ]
    for r in sorted(results, key=lambda r: r["customers"]):
        landing = r.get("landing_rows") or {}
        data = ", ".join(f"{k} {_count(n)}" for k, n in landing.items())
        lines += [
            f"**{r['customers']:,} customers** ({data}; Spark session start "
            f"{_num(r.get('session_start_s'))} s)" + ("" if r.get("ok") else f": {r.get('error')}"),
            "",
            *size_table(r),
            "",
        ]
    lines += [
        "x floor: "
        + "; ".join(
            f"{', '.join(sorted(LANDING_STAGES)) if f == LANDING_FLOOR else 'the other stages'}"
            f" against the {label}"
            for f, label in FLOOR_LABELS.items()
        )
        + ". Peaks are the driver JVM's (local mode: it runs the tasks) while the phase ran.",
        "",
        "Scaling (time ratio for the data ratio):",
        "",
        *scaling_table(results, report["scaling"]),
        "",
    ]
    lines += ["Targets (reported, not asserted):", "", *targets_table(results), ""]
    quality = quality_table(results)
    if len(quality) > 2:  # more than the header
        lines += ["Quality against the generator's planted truth:", "", *quality, ""]
    return "\n".join(lines)


def _runs_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where each size of a combined report came from (nothing for a single run)."""
    if not runs:
        return []
    lines = ["Sizes measured in separate runs (the header is the newest run's):", ""]
    for run in runs:
        overrides = ", ".join(f"`{o}`" for o in run["overrides"]) or "none"
        sizes = ", ".join(f"{n:,}" for n in run["sizes"])
        lines.append(
            f"- {sizes}: run {run['created']}, commit {run['commit']}, overrides {overrides}; "
            f"load average {run['load_before']} before, {run['load_after']} after."
        )
    return [*lines, ""]
