"""The whole-pipeline benchmark's bookkeeping: event-log and Delta-log reading, floors, verdicts.

The event log here is hand-written in Spark's own format (the keys bench/pipeline_metrics.py
reads, as Spark 4.1 writes them), so every expected figure is spelled out below.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from bench import floor, report
from bench import pipeline_metrics as pm
from precision_marketing.io import tables
from tests.support import make_config
from tests.tiny_landing import (
    CATALOG,
    CRM_EXPORT_1,
    CRM_EXPORT_2,
    EVENTS,
    TRANSACTIONS,
    write_tiny_landing,
)

INGEST = pm.Window("ingest", 1_000, 2_000)
VALIDATE = pm.Window("validate", 2_000, 3_000)


def _stage(stage_id: int, submitted_ms: int, group: str | None) -> dict[str, Any]:
    properties = {"spark.jobGroup.id": group} if group else {}
    return {
        "Event": "SparkListenerStageSubmitted",
        "Stage Info": {"Stage ID": stage_id, "Submission Time": submitted_ms},
        "Properties": properties,
    }


def _task(stage_id: int, failed: bool = False, **metrics: Any) -> dict[str, Any]:
    return {
        "Event": "SparkListenerTaskEnd",
        "Stage ID": stage_id,
        "Task Info": {"Failed": failed},
        "Task Metrics": {
            "Executor Run Time": metrics.get("run_ms", 0),
            "JVM GC Time": 0,
            "Memory Bytes Spilled": metrics.get("mem_spill", 0),
            "Disk Bytes Spilled": metrics.get("disk_spill", 0),
            "Shuffle Read Metrics": {
                "Local Bytes Read": metrics.get("local_read", 0),
                "Remote Bytes Read": metrics.get("remote_read", 0),
            },
            "Shuffle Write Metrics": {"Shuffle Bytes Written": metrics.get("written", 0)},
            "Input Metrics": {"Bytes Read": 0, "Records Read": metrics.get("records", 0)},
        },
        "Task Executor Metrics": {"JVMHeapMemory": metrics.get("heap", 0)},
    }


EVENT_LOG = [
    {"Event": "SparkListenerLogStart", "Spark Version": "4.1.4"},
    _stage(0, 1_100, "bench:ingest"),
    _task(0, records=100, written=500, heap=700),
    _task(0, records=20, mem_spill=10, disk_spill=5),
    {
        "Event": "SparkListenerStageExecutorMetrics",
        "Executor ID": "driver",
        "Stage ID": 0,
        "Executor Metrics": {"JVMHeapMemory": 1_000, "ProcessTreeJVMRSSMemory": 5_000},
    },
    # No job group (a thread pool older than the group): placed by its submission time.
    _stage(1, 2_500, None),
    _task(1, local_read=300, remote_read=20),
    _task(1, failed=True),
    # A memory sample between stages belongs to the phase of the last submitted stage.
    {
        "Event": "SparkListenerExecutorMetricsUpdate",
        "Executor ID": "driver",
        "Executor Metrics Updated": [
            {"Stage ID": -1, "Executor Metrics": {"JVMHeapMemory": 9_000}}
        ],
    },
    {"Event": "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart", "plan": "x"},
    # The bench's own bookkeeping between phases.
    _stage(2, 3_500, "bench:between phases"),
    _task(2, records=7),
]


def test_event_log_is_split_by_job_group_then_by_time() -> None:
    lines = [json.dumps(e) for e in EVENT_LOG] + ['{"Event":"SparkListenerTaskEnd","Stage']
    figures = pm.spark_figures(lines, [INGEST, VALIDATE])

    assert figures["ingest"].as_dict() == {
        "stages": 1,
        "tasks": 2,
        "failed_tasks": 0,
        "input_records": 120,
        "input_bytes": 0,
        "shuffle_read_bytes": 0,
        "shuffle_write_bytes": 500,
        "memory_spilled_bytes": 10,
        "disk_spilled_bytes": 5,
        "executor_run_ms": 0,
        "gc_ms": 0,
        "peak_heap_bytes": 1_000,
        "peak_rss_bytes": 5_000,
    }
    validate = figures["validate"]
    assert (validate.stages, validate.tasks, validate.failed_tasks) == (1, 2, 1)
    assert validate.shuffle_read_bytes == 320
    assert validate.peak_heap_bytes == 9_000
    assert figures[pm.UNATTRIBUTED].input_records == 7


def test_delta_writes_lists_each_phase_commits(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "ops" / "t")
    tables.append(spark.createDataFrame([(1,), (2,), (3,)], "id int"), path)
    after_first = pm.delta_versions([tmp_path])
    tables.append(spark.createDataFrame([(4,), (5,)], "id int"), path)

    assert after_first == {path: 0}
    everything = pm.delta_writes([tmp_path], {})[path]
    assert (everything.commits, everything.operations, everything.rows_written) == (
        2,
        ["WRITE", "WRITE"],
        5,
    )
    assert pm.delta_writes([tmp_path], after_first)[path].rows_written == 2


def test_merge_commit_metrics_are_split_by_outcome() -> None:
    writes = pm.TableWrites()
    writes.add(
        {
            "operation": "MERGE",
            "operationMetrics": {
                "numSourceRows": "2",
                "numTargetRowsInserted": "1",
                "numTargetRowsUpdated": "1",
                "numTargetRowsDeleted": "0",
                "numOutputRows": "4",
            },
        }
    )
    writes.add({"operation": "DELETE", "operationMetrics": {"numDeletedRows": "3"}})

    assert dataclasses.asdict(writes) == {
        "commits": 2,
        "operations": ["MERGE", "DELETE"],
        "rows_written": 4,
        "rows_inserted": 1,
        "rows_updated": 1,
        "rows_deleted": 3,
    }


def test_landing_floor_reads_every_row_of_every_file(spark: SparkSession, tmp_path: Path) -> None:
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)

    rows = floor.landing_scan_and_write(spark, config, str(tmp_path / "floor"))

    assert rows == {
        "events": len(EVENTS),
        "crm": len(CRM_EXPORT_1) + len(CRM_EXPORT_2),
        "transactions": len(TRANSACTIONS),  # the empty file adds nothing
        "catalog": len(CATALOG),
    }


def test_silver_floor_aggregates_per_known_customer(spark: SparkSession) -> None:
    ts = datetime(2026, 6, 1, 10)
    events = spark.createDataFrame(
        [
            ("c1", "s1", "product_view", 10.0, ts),
            ("c1", "s1", "add_to_cart", 10.0, ts),
            ("c1", "s2", "product_view", None, datetime(2026, 6, 2)),
            ("c2", "s3", "search", None, ts),
            (None, "s4", "product_view", 5.0, ts),
        ],
        "customer_id string, session_id string, event_type string, price double, "
        "event_ts timestamp",
    )

    got = floor.customer_aggregate(events).collect()  # two customers

    assert sorted(tuple(r) for r in got) == [
        ("c1", 3, 2, 2, 1, 20.0, datetime(2026, 6, 2)),
        ("c2", 1, 1, 0, 0, None, ts),
    ]


def _phase(name: str, kind: str, seconds: float, ok: bool = True) -> dict[str, Any]:
    return {"name": name, "kind": kind, "seconds": seconds, "ok": ok, "spark": {}}


def _result(customers: int, ingest: float, validate: float, features: float) -> dict[str, Any]:
    return {
        "customers": customers,
        "ok": True,
        "phases": [
            _phase(report.LANDING_FLOOR, "floor", 10.0),
            _phase("ingest", "stage", ingest),
            _phase("validate", "stage", validate),
            _phase("features", "stage", features),
            _phase(report.SILVER_FLOOR, "floor", 20.0),
        ],
        "quality": {
            "recommend_coverage": {"eligible_customers": 100, "customers_with_recommendations": 100}
        },
    }


def test_scaling_flags_stages_that_grow_faster_than_the_data() -> None:
    small, large = _result(1_000, 10.0, 2.0, 25.0), _result(10_000, 50.0, 30.0, 400.0)

    (step,) = report.scaling([large, small])

    assert (step["from"], step["to"], step["factor"]) == (1_000, 10_000, 10.0)
    assert step["phases"]["ingest"] == {"ratio": 5.0, "superlinear": False}
    assert step["phases"]["validate"] == {"ratio": 15.0, "superlinear": True}
    assert step["phases"]["features"] == {"ratio": 16.0, "superlinear": True}
    assert step["phases"]["pipeline"] == {"ratio": 480.0 / 37.0, "superlinear": True}


def test_targets_compare_stages_with_their_floors() -> None:
    result = _result(1_000, 10.0, 2.0, 25.0)
    result["phases"][3]["ok"] = False

    verdict = report.targets(result)

    assert report.floor_ratios(result) == {"ingest": 1.0, "validate": 0.2, "features": None}
    assert verdict["pipeline_finishes"] == {"value": "failed at features", "met": False}
    assert verdict["validate_share_of_ingest"]["value"] == 0.2
    assert verdict["validate_share_of_ingest"]["met"] is True
    assert verdict["features_vs_floor"]["met"] is None
    # ingest 10 s over the landing floor's 10 s: 1.0x (<= 1.5x); silver did not run.
    assert verdict["ingest_vs_floor"] == {"value": 1.0, "limit": 1.5, "met": True}
    assert verdict["silver_vs_floor"] == {"value": None, "limit": 1.5, "met": None}
    assert verdict["recommend_all_customers"]["met"] is False  # recommend did not run


def _with_next_day(result: dict[str, Any], *stage_seconds: tuple[str, float]) -> dict[str, Any]:
    next_day = [_phase(report.next_day_phase(stage), "next_day", s) for stage, s in stage_seconds]
    return {
        **result,
        "phases": [*result["phases"], _phase(report.NEXT_DAY_GENERATE, "generate", 9.0), *next_day],
    }


def test_the_next_day_run_is_a_phase_of_its_own_and_the_targets_apply_at_a_million() -> None:
    small = _with_next_day(_result(100_000, 10.0, 2.0, 25.0), ("ingest", 3.0), ("features", 5.0))
    large = _with_next_day(
        _result(1_000_000, 900.0, 200.0, 1_000.0), ("ingest", 30.0), ("features", 600.0)
    )

    (step,) = report.scaling([small, large])
    verdicts = [report.targets(r) for r in (small, large)]
    text = report.markdown(
        {
            "created": "2026-12-02T00:00:00Z",
            "machine": {"cores": 2, "memory_gb": 23.0, "os": "Linux", "load_before": "1.0",
                        "load_after": "2.0"},
            "versions": {"python": "3.11", "delta": "4.4.0", "great_expectations": "1.24.1",
                         "commit": "abc"},
            "config": {"env": "local", "run_date": "2026-06-30",
                       "stages": ["ingest", "validate", "features"], "overrides": []},
            "sizes": [small, large],
            "scaling": [step],
        }
    )  # fmt: skip

    # The first run's total leaves the next day out; the next day's leaves its generation out.
    assert report.pipeline_seconds(large) == 2_100.0
    assert report.total_seconds(large, "next_day") == 630.0
    assert step["phases"]["next-day run"] == {"ratio": 630.0 / 8.0, "superlinear": True}
    assert step["phases"]["next day: ingest"] == {"ratio": 10.0, "superlinear": False}
    # 35 s and 8 s at 100,000: reported, not judged; 35 min and 10.5 min at 1,000,000: missed.
    assert [v["first_run_wall_clock"]["met"] for v in verdicts] == [None, False]
    assert [v["next_day_wall_clock"]["met"] for v in verdicts] == [None, False]
    assert "| next-day run <= 10 min at 1,000,000 | 0.1 min (n/a) | 10.5 min (**no**) |" in text
    assert "| **next-day run** | 630.0 |" in text


def test_markdown_shows_every_size_and_the_verdicts() -> None:
    results = [_result(1_000, 10.0, 2.0, 25.0), _result(10_000, 50.0, 30.0, 400.0)]
    doc = {
        "created": "2026-11-25T00:00:00Z",
        "machine": {"cores": 2, "memory_gb": 23.0, "os": "Linux", "load_before": "1.0",
                    "load_after": "2.0"},
        "versions": {"python": "3.11", "delta": "4.4.0", "great_expectations": "1.24.1",
                     "commit": "abc"},
        "config": {"env": "local", "run_date": date(2026, 6, 30).isoformat(),
                   "stages": ["ingest", "validate", "features"], "overrides": []},
        "sizes": results,
        "scaling": report.scaling(results),
    }  # fmt: skip

    text = report.markdown(doc)

    assert "**10,000 customers**" in text
    assert "| features | 25.0 | 400.0 | 16.00 **superlinear** |" in text
    assert "| validate <= 40% of ingest | 20% (yes) | 60% (**no**) |" in text
    assert "| ingest <= 1.5x landing scan+write | 1.00x (yes) | 5.00x (**no**) |" in text
    assert "| features <= 3.0x silver scan+aggregate | 1.25x (yes) | 20.00x (**no**) |" in text


def test_combine_takes_each_size_from_the_newest_run_that_measured_it() -> None:
    def doc(created: str, commit: str, *results: dict[str, Any]) -> dict[str, Any]:
        return {
            "created": created,
            "machine": {"cores": 2, "memory_gb": 23.0, "os": "Linux", "load_before": "0.1",
                        "load_after": "2.0"},
            "versions": {"python": "3.11", "delta": "4.4.0", "great_expectations": "1.24.1",
                         "commit": commit},
            "config": {"env": "local", "run_date": "2026-06-30", "stages": ["ingest"],
                       "overrides": ["recommend.tune=false"] if commit == "new" else []},
            "sizes": list(results),
        }  # fmt: skip

    older = doc(
        "2026-11-25T08:00:00Z",
        "old",
        _result(1_000, 10.0, 2.0, 25.0),
        _result(10_000, 50.0, 30.0, 400.0),
    )
    newer = doc(
        "2026-11-25T10:00:00Z",
        "new",
        _result(10_000, 40.0, 8.0, 100.0),
        _result(100_000, 300.0, 60.0, 900.0),
    )

    combined = report.combine([newer, older], "2026-11-25T12:00:00Z")

    assert [r["customers"] for r in combined["sizes"]] == [1_000, 10_000, 100_000]
    assert report.seconds(combined["sizes"][1], "ingest") == 40.0  # the newer run's
    # 1,000 ran on commit "old" without overrides, 10,000 on "new" with tuning off: not the
    # same work, so no growth ratio; 10,000 -> 100,000 came from one run and is compared.
    first, second = combined["scaling"]
    assert (first["from"], first["to"], first["phases"]) == (1_000, 10_000, {})
    assert first["not_comparable"] == "commit old vs new; no overrides vs `recommend.tune=false`"
    assert (second["from"], second["to"]) == (10_000, 100_000)
    assert "not_comparable" not in second
    assert second["phases"]["ingest"]["ratio"] == 7.5
    assert [(r["commit"], r["sizes"]) for r in combined["runs"]] == [
        ("old", [1_000]),
        ("new", [10_000, 100_000]),
    ]
    text = report.markdown(combined)
    assert "- 10,000, 100,000: run 2026-11-25T10:00:00Z, commit new, overrides " in text
    assert "| validate <= 40% of ingest | 20% (yes) | 20% (yes) | 20% (yes) |" in text
    assert "| phase | s @ 1,000 | s @ 10,000 | s @ 100,000 | x (100,000 / 10,000) |" in text
    assert "| ingest | 10.0 | 40.0 | 300.0 | 7.50 |" in text
    assert (
        "Not compared, 1,000 -> 10,000 customers: different work "
        "(commit old vs new; no overrides vs `recommend.tune=false`)." in text
    )


def test_sizes_of_one_run_are_compared_and_unequal_overrides_are_not() -> None:
    small, large = _result(1_000, 10.0, 2.0, 25.0), _result(10_000, 50.0, 30.0, 400.0)
    assert report.unequal_work(small, large) is None
    large["overrides"] = ["recommend.tune=false"]
    (step,) = report.scaling([small, large])
    assert step["phases"] == {}
    assert step["not_comparable"] == "no overrides vs `recommend.tune=false`"
