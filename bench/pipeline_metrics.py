"""Per-phase figures of a benchmark run, read after the fact from what Spark and Delta record.

Pure Python on purpose: nothing here starts a Spark job, so measuring never adds to what is
measured, and a run that died half-way can still be read (its event log ends early, its Delta
logs hold the commits it made).

- Spark's event log (one JSON object per line) gives task metrics (input records, shuffle bytes,
  spill) and the driver's memory peaks. Every Spark stage carries the properties of the job
  that submitted it, including `spark.jobGroup.id`, which the bench sets to the phase's name;
  a stage without a known group (a thread pool started before the group was set) falls to the
  phase whose time window holds its submission time.
- Delta's transaction log (`_delta_log/<version>.json`, whose `commitInfo` action holds the
  operation metrics, the same numbers `DESCRIBE HISTORY` and `io.tables.last_commit` show)
  gives the rows each phase wrote, table by table, without a Spark job per table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GROUP_PREFIX = "bench:"
UNATTRIBUTED = "(unattributed)"
# In local mode the driver runs the tasks: its executor metrics are the one JVM's.
DRIVER = "driver"

# Event types read; everything else (SQL plans, accumulator updates, ...) is skipped unparsed.
_STAGE_SUBMITTED = "SparkListenerStageSubmitted"
_TASK_END = "SparkListenerTaskEnd"
_STAGE_EXECUTOR_METRICS = "SparkListenerStageExecutorMetrics"
_EXECUTOR_METRICS_UPDATE = "SparkListenerExecutorMetricsUpdate"
_WANTED = (_STAGE_SUBMITTED, _TASK_END, _STAGE_EXECUTOR_METRICS, _EXECUTOR_METRICS_UPDATE)


def job_group(phase: str) -> str:
    """The Spark job group the bench sets while `phase` runs."""
    return f"{GROUP_PREFIX}{phase}"


@dataclass(frozen=True)
class Window:
    """When a phase ran, in epoch milliseconds (the JVM's clock, which the event log uses)."""

    phase: str
    start_ms: int
    end_ms: int


@dataclass
class SparkFigures:
    """What Spark measured for one phase, summed over its tasks (peaks: the maximum)."""

    stages: int = 0
    tasks: int = 0
    failed_tasks: int = 0
    input_records: int = 0
    input_bytes: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    memory_spilled_bytes: int = 0
    disk_spilled_bytes: int = 0
    executor_run_ms: int = 0
    gc_ms: int = 0
    peak_heap_bytes: int = 0
    peak_rss_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add_task(self, metrics: Mapping[str, Any], failed: bool) -> None:
        self.tasks += 1
        self.failed_tasks += int(failed)
        shuffle_read = metrics.get("Shuffle Read Metrics", {})
        self.input_records += int(metrics.get("Input Metrics", {}).get("Records Read", 0))
        self.input_bytes += int(metrics.get("Input Metrics", {}).get("Bytes Read", 0))
        self.shuffle_read_bytes += int(shuffle_read.get("Local Bytes Read", 0)) + int(
            shuffle_read.get("Remote Bytes Read", 0)
        )
        self.shuffle_write_bytes += int(
            metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0)
        )
        self.memory_spilled_bytes += int(metrics.get("Memory Bytes Spilled", 0))
        self.disk_spilled_bytes += int(metrics.get("Disk Bytes Spilled", 0))
        self.executor_run_ms += int(metrics.get("Executor Run Time", 0))
        self.gc_ms += int(metrics.get("JVM GC Time", 0))

    def add_memory(self, executor_metrics: Mapping[str, Any]) -> None:
        self.peak_heap_bytes = max(
            self.peak_heap_bytes, int(executor_metrics.get("JVMHeapMemory", 0))
        )
        self.peak_rss_bytes = max(
            self.peak_rss_bytes, int(executor_metrics.get("ProcessTreeJVMRSSMemory", 0))
        )


def find_event_log(directory: Path) -> Path | None:
    """The application's event log in `directory` (uncompressed, not rolled; finished or not)."""
    logs = sorted(p for p in directory.glob("*") if p.is_file() and not p.name.startswith("."))
    return logs[-1] if logs else None


def _events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        # The type comes first in every line: skip the big SQL-plan events without parsing.
        head = line[:80]
        if any(f'"{kind}"' in head for kind in _WANTED):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return  # the last line of a log whose application was killed mid-write


def phase_of(group: str | None, submitted_ms: int | None, windows: Iterable[Window]) -> str:
    """The phase a Spark stage belongs to: by its job group, else by when it was submitted."""
    windows = list(windows)
    known = {w.phase for w in windows}
    if group and group.startswith(GROUP_PREFIX) and group[len(GROUP_PREFIX) :] in known:
        return group[len(GROUP_PREFIX) :]
    if submitted_ms is not None:
        for w in windows:
            if w.start_ms <= submitted_ms <= w.end_ms:
                return w.phase
    return UNATTRIBUTED


def spark_figures(lines: Iterable[str], windows: Iterable[Window]) -> dict[str, SparkFigures]:
    """Per-phase Spark figures from the lines of an event log.

    Memory samples taken between stages (stage id -1) belong to the phase of the stage
    submitted last before them: the log is in event order.
    """
    windows = list(windows)
    by_phase: dict[str, SparkFigures] = {}
    stage_phase: dict[int, str] = {}
    current = UNATTRIBUTED

    def figures(phase: str) -> SparkFigures:
        return by_phase.setdefault(phase, SparkFigures())

    for event in _events(lines):
        kind = event["Event"]
        if kind == _STAGE_SUBMITTED:
            info = event["Stage Info"]
            group = (event.get("Properties") or {}).get("spark.jobGroup.id")
            current = phase_of(group, info.get("Submission Time"), windows)
            if info["Stage ID"] not in stage_phase:
                figures(current).stages += 1
            stage_phase[info["Stage ID"]] = current
        elif kind == _TASK_END:
            phase = stage_phase.get(event["Stage ID"], UNATTRIBUTED)
            failed = bool(event.get("Task Info", {}).get("Failed", False))
            figures(phase).add_task(event.get("Task Metrics") or {}, failed)
            figures(phase).add_memory(event.get("Task Executor Metrics") or {})
        elif kind == _STAGE_EXECUTOR_METRICS:
            if event.get("Executor ID") == DRIVER:
                phase = stage_phase.get(event["Stage ID"], UNATTRIBUTED)
                figures(phase).add_memory(event.get("Executor Metrics") or {})
        elif kind == _EXECUTOR_METRICS_UPDATE and event.get("Executor ID") == DRIVER:
            for sample in event.get("Executor Metrics Updated") or []:
                phase = stage_phase.get(sample.get("Stage ID", -1), current)
                figures(phase).add_memory(sample.get("Executor Metrics") or {})
    return by_phase


def read_spark_figures(directory: Path, windows: Iterable[Window]) -> dict[str, SparkFigures]:
    path = find_event_log(directory)
    if path is None:
        return {}
    with path.open(encoding="utf-8") as lines:
        return spark_figures(lines, windows)


# --- Delta commits -------------------------------------------------------------------------


@dataclass
class TableWrites:
    """The commits one phase made to one table and the rows their metrics report."""

    commits: int = 0
    operations: list[str] = field(default_factory=list)
    rows_written: int = 0  # numOutputRows: rows in the files written (MERGE: rewritten ones too)
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0

    def add(self, commit: Mapping[str, Any]) -> None:
        metrics = commit.get("operationMetrics") or {}

        def rows(*keys: str) -> int:
            return sum(int(metrics.get(k, 0)) for k in keys)

        self.commits += 1
        self.operations.append(str(commit.get("operation", "")))
        self.rows_written += rows("numOutputRows")
        self.rows_inserted += rows("numTargetRowsInserted")
        self.rows_updated += rows("numTargetRowsUpdated")
        self.rows_deleted += rows("numTargetRowsDeleted", "numDeletedRows")


def delta_tables(roots: Iterable[Path]) -> list[Path]:
    """Delta tables directly below each root and one level further (<root>/<layer>/<table>)."""
    found: set[Path] = set()
    for root in roots:
        for pattern in ("*/_delta_log", "*/*/_delta_log"):
            found.update(log.parent for log in root.glob(pattern) if log.is_dir())
    return sorted(found)


def _commit_files(table: Path) -> dict[int, Path]:
    commits = {}
    for path in (table / "_delta_log").glob("*.json"):
        if path.stem.isdigit():
            commits[int(path.stem)] = path
    return commits


def delta_versions(roots: Iterable[Path]) -> dict[str, int]:
    """Latest committed version of every Delta table under `roots`."""
    versions = {}
    for table in delta_tables(roots):
        commits = _commit_files(table)
        if commits:
            versions[str(table)] = max(commits)
    return versions


def delta_writes(roots: Iterable[Path], before: Mapping[str, int]) -> dict[str, TableWrites]:
    """The commits made to each table under `roots` since the versions in `before`."""
    writes: dict[str, TableWrites] = {}
    for table in delta_tables(roots):
        since = before.get(str(table), -1)
        for version, path in sorted(_commit_files(table).items()):
            if version <= since:
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                action = json.loads(line) if line.strip() else {}
                if "commitInfo" in action:
                    writes.setdefault(str(table), TableWrites()).add(action["commitInfo"])
    return writes
