"""A run killed anywhere and rerun ends as a clean run; two runs on one warehouse never mix.

The pipeline (ingest, validate, silver; conf/test.yaml) runs as ./spark-submit.sh subprocesses
on the hand-written landing (tests/tiny_landing.py), all warehouses reading the one landing
folder. Runs are the cost here (minutes each on a busy 2-core machine), so the module makes as
few as it can:

- `raced`: two runs started together on a fresh warehouse. One gets the warehouse lock and runs
  clean; the other must stop at once with exit 5 and one line. The winner's tables are checked
  against the landing's planted outcomes, and then serve as the clean reference.
- `crashed`: a second warehouse, where run 1 is SIGKILLed inside validate (after the results of
  all four tables are written but only catalog's mark has moved), run 2 resumes and is
  SIGKILLed inside silver (after customers was merged, before its mark moved), run 3 finishes.
  After run 2 everything validate owns must equal the reference; after run 3, every table.

The kill is the test-only fault-injection point runtime.kill_point ($PM_TEST_KILL_AT).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import deltalake
import pytest

from precision_marketing.cli import EXIT_BUSY
from precision_marketing.config import load_config
from precision_marketing.contracts import SOURCES
from precision_marketing.runtime import KILL_AT_ENV
from precision_marketing.validate.suites import load_suite
from tests.tiny_landing import EXPECTED_QUARANTINE, EXPECTED_SILVER, write_tiny_landing

ROOT = Path(__file__).parents[1]
KILL_IN_VALIDATE = "validate:marked-catalog"
KILL_IN_SILVER = "silver:merged-customers"
# Columns that name the run or the moment it ran: the only ones a rerun may change.
VOLATILE = {
    "_ingest_run_id",
    "_ingested_at",
    "_validation_run_id",
    "_quarantined_at",
    "run_id",
    "validated_at",
    "planned_at",
}
# ops/pipeline_runs logs attempts (a resumed run adds rows by design); the rest must match.
ATTEMPT_LOGS = {"ops/pipeline_runs"}
Snapshot = dict[str, list[tuple[Any, ...]]]


def pipeline(landing: Path, warehouse: Path, kill_at: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    args = [
        str(ROOT / "spark-submit.sh"),
        "pipeline",
        "--env",
        "test",
        "--run-date",
        "2026-06-30",
        "--set",
        f"storage.landing={landing}",
        "--set",
        f"storage.warehouse={warehouse}",
        "--set",
        f"storage.ground_truth={warehouse.parent}/ground_truth",
        "--set",
        "validate.data_docs=false",  # HTML is not under test here, and costs seconds
    ]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def finish(process: subprocess.Popen[str]) -> Finished:
    stdout, stderr = process.communicate(timeout=1500)
    return Finished(process.returncode, stdout, stderr)


def frozen(value: Any) -> Any:
    """Lists and mappings (arrays, structs) as tuples, so rows can be counted and compared."""
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, frozen(v)) for k, v in sorted(value.items()))
    return value


def snapshot(
    warehouse: Path, layers: tuple[str, ...] = ("bronze", "quarantine", "silver", "ops")
) -> Snapshot:
    """Every Delta table's rows without run ids and run times, sorted (tables are tiny)."""
    tables: Snapshot = {}
    for log_dir in sorted(warehouse.glob("*/*/_delta_log")):
        name = str(log_dir.parent.relative_to(warehouse))
        if name.split("/")[0] not in layers or name in ATTEMPT_LOGS:
            continue
        rows = deltalake.DeltaTable(str(log_dir.parent)).to_pyarrow_table().to_pylist()
        drop = VOLATILE | ({"updated_at"} if name == "ops/watermarks" else set())
        tables[name] = sorted(
            (
                tuple((k, frozen(v)) for k, v in sorted(row.items()) if k not in drop)
                for row in rows
            ),
            key=repr,
        )
    return tables


def rules_per_table() -> dict[str, int]:
    """How many rules each suite has: one validation record per batch and rule."""
    config = load_config(
        "test", ["storage.landing=x", "storage.warehouse=x", "storage.ground_truth=x"]
    )
    return {t: len(load_suite(config.expectations_path(), t).expectations) for t in SOURCES}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("landing")
    write_tiny_landing(path)
    return path


@dataclass(frozen=True)
class Race:
    winner: Finished
    loser: Finished
    tables: Snapshot


@pytest.fixture(scope="module")
def raced(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Race:
    warehouse = tmp_path_factory.mktemp("raced") / "warehouse"
    first, second = pipeline(landing, warehouse), pipeline(landing, warehouse)
    done = sorted([finish(first), finish(second)], key=lambda f: f.returncode)
    return Race(done[0], done[1], snapshot(warehouse))


def test_concurrent_runs_one_stops_cleanly_and_nothing_is_duplicated(raced: Race) -> None:
    assert raced.winner.returncode == 0, raced.winner.stderr[-3000:]
    assert raced.loser.returncode == EXIT_BUSY, raced.loser.stderr[-3000:]
    busy = [line for line in raced.loser.stderr.splitlines() if "warehouse busy" in line]
    assert len(busy) == 1, raced.loser.stderr[-3000:]
    assert re.search(
        r"pipeline: warehouse busy: pipeline \(run pipeline_\S+, pid \d+ on .+, since .+\) "
        r"holds \S+/ops/\.run\.lock; this run wrote nothing",
        busy[0],
    ), busy[0]
    assert "Traceback" not in raced.loser.stderr

    tables = raced.tables
    silver = {n.split("/")[1]: len(r) for n, r in tables.items() if n.startswith("silver/")}
    assert silver == EXPECTED_SILVER
    quarantined = {
        n.split("/")[1]: len(r) for n, r in tables.items() if n.startswith("quarantine/")
    }
    # Each planted bad row breaks one rule: rows quarantined = rule breaks.
    assert quarantined == {t: sum(r.values()) for t, r in EXPECTED_QUARANTINE.items()}
    assert {n: len(r) for n, r in tables.items() if n.startswith("bronze/")} == {
        "bronze/events": 8,
        "bronze/crm": 4,
        "bronze/transactions": 5,
        "bronze/catalog": 3,
    }
    # No row twice anywhere (bronze keeps the landing's own duplicate e1 under two record ids).
    for name, rows in tables.items():
        doubled = [row for row, n in Counter(rows).items() if n > 1]
        assert doubled == [], name
    results = tables["ops/validation_results"]
    assert Counter(dict(r)["table"] for r in results) == rules_per_table()


@dataclass(frozen=True)
class Crash:
    runs: list[Finished]
    after_validate_kill: Snapshot
    after_silver_kill: Snapshot
    tables: Snapshot
    watermarks_after_validate_kill: dict[tuple[str, str], int]


@pytest.fixture(scope="module")
def crashed(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Crash:
    warehouse = tmp_path_factory.mktemp("crashed") / "warehouse"
    runs = [finish(pipeline(landing, warehouse, KILL_IN_VALIDATE))]
    after_validate_kill = snapshot(warehouse)
    marks = {
        (dict(r)["stage"], dict(r)["table"]): dict(r)["batch_no"]
        for r in after_validate_kill.get("ops/watermarks", [])
    }
    runs.append(finish(pipeline(landing, warehouse, KILL_IN_SILVER)))
    after_silver_kill = snapshot(warehouse)
    runs.append(finish(pipeline(landing, warehouse)))
    return Crash(runs, after_validate_kill, after_silver_kill, snapshot(warehouse), marks)


def test_killed_validate_and_silver_reruns_equal_a_clean_run(crashed: Crash, raced: Race) -> None:
    killed_validate, killed_silver, last = crashed.runs
    for run, point in ((killed_validate, KILL_IN_VALIDATE), (killed_silver, KILL_IN_SILVER)):
        assert run.returncode != 0
        assert f"{KILL_AT_ENV}={point}: killing the driver" in run.stderr, run.stderr[-3000:]
    assert last.returncode == 0, last.stderr[-3000:]

    # The first kill hit where the audit trail used to break: every table's results written,
    # only catalog's batch marked as validated.
    first_results = crashed.after_validate_kill["ops/validation_results"]
    assert Counter(dict(r)["table"] for r in first_results) == rules_per_table()
    assert crashed.watermarks_after_validate_kill == {("validate", "catalog"): 1}

    reference = raced.tables
    # After the validate rerun (run 2), all that validate owns equals the clean run's.
    for name in ("ops/validation_results", *(f"quarantine/{t}" for t in SOURCES)):
        assert crashed.after_silver_kill[name] == reference[name], name
    # The silver kill left customers merged but unmarked.
    assert len(crashed.after_silver_kill["silver/customers"]) == EXPECTED_SILVER["customers"]
    assert "silver/items" not in crashed.after_silver_kill

    assert sorted(crashed.tables) == sorted(reference)
    for name in reference:
        assert crashed.tables[name] == reference[name], name
