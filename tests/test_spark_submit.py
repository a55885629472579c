"""./spark-submit.sh through the pinned pyspark's real spark-submit: exit codes.

A real run of ./spark-submit.sh (exit 0, summary on stdout, step lines on stderr, exact silver
rows) is tests/test_cluster.py's: the same script, on a standalone master instead of local[2].
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def submit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = submit("ingest", "--env", "test", "--set", "storage.warehuse=/x")
    assert result.returncode == 2
    assert "unknown key 'storage.warehuse'" in result.stderr


def test_unknown_job_exits_2(tmp_path: Path) -> None:
    result = submit("no_such_job")
    assert result.returncode == 2
    assert "no job 'no_such_job'" in result.stderr
