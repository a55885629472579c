"""./spark-submit.sh through the pinned pyspark's real spark-submit: exit codes and a real run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import deltalake

from tests.tiny_landing import EXPECTED_SILVER, write_tiny_landing

ROOT = Path(__file__).parents[1]


def submit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def storage(tmp: Path) -> list[str]:
    return [
        "--set",
        f"storage.landing={tmp}/landing",
        "--set",
        f"storage.warehouse={tmp}/warehouse",
        "--set",
        f"storage.ground_truth={tmp}/ground_truth",
    ]


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = submit("ingest", "--env", "test", "--set", "storage.warehuse=/x")
    assert result.returncode == 2
    assert "unknown key 'storage.warehuse'" in result.stderr


def test_unknown_job_exits_2(tmp_path: Path) -> None:
    result = submit("no_such_job")
    assert result.returncode == 2
    assert "no job 'no_such_job'" in result.stderr


def test_pipeline_runs_through_spark_submit(tmp_path: Path) -> None:
    write_tiny_landing(tmp_path / "landing")
    result = submit("pipeline", "--env", "test", "--run-date", "2026-06-30", *storage(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    # Step lines go to the JVM's stderr (PythonRunner merges Python's stderr into stdout);
    # stdout holds the job's result, the summary.
    assert "step silver order_lines" in result.stderr
    assert " INFO " not in result.stdout, result.stdout[-3000:]
    assert re.search(
        r"^  silver +succeeded +[\d.]+  on: events, crm, transactions, catalog$",
        result.stdout,
        re.M,
    ), result.stdout
    silver = tmp_path / "warehouse" / "silver"
    counts = {
        name: deltalake.DeltaTable(str(silver / name)).to_pyarrow_table().num_rows
        for name in EXPECTED_SILVER
    }
    assert counts == EXPECTED_SILVER
