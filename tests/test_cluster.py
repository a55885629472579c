"""./spark-submit.sh against a real Spark standalone cluster on loopback.

A master and one worker (1 core, 2 GB) are started from the pinned pyspark's bin/spark-class.
The worker runs executors in its own work dir, where nothing of this checkout is: whatever the
jobs need there (the Delta JARs for Delta's writers, the package zip, conf/) must be shipped by
spark-submit. One `pipeline` application runs conf/test.yaml's steps (ingest, validate, silver)
on the hand-written landing set (tests/tiny_landing.py), so its silver tables have exact counts.
The stages after silver run on Spark the same way; they are tested in-process
(tests/test_pipeline_resume.py counts gold/user_features and gold/segments of a pipeline run).
This run is also the suite's real run of ./spark-submit.sh (tests/test_spark_submit.py keeps
its exit codes): the summary goes to stdout, step lines to stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import deltalake
import pyarrow.compute as pc
import pyspark
import pytest

from precision_marketing.spark import delta_jars
from precision_marketing.submit import ROOT
from tests.support import RUN_DATE
from tests.tiny_landing import EXPECTED_SILVER, write_tiny_landing

SPARK_CLASS = ROOT / ".venv" / "bin" / "spark-class"
SPARK_HOME = str(Path(pyspark.__file__).parent)  # the pip package is a whole Spark home
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A JVM in a process group of its own, so it and its executors stop together."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_CLASS), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "SPARK_HOME": SPARK_HOME,
                "SPARK_LOCAL_IP": HOST,
                # The master and worker live for this module: C1 alone (conf/test.yaml).
                "SPARK_DAEMON_JAVA_OPTS": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            },
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class Cluster:
    master_url: str
    state_url: str  # the master's web UI as JSON: workers, running and completed apps
    work_dir: Path

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.state_url, timeout=5) as response:
            data: dict[str, Any] = json.load(response)
            return data


def wait_for(condition: Any, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not up after {seconds}s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("standalone")
    port, ui, worker_port, worker_ui = (free_port() for _ in range(4))
    master_url = f"spark://{HOST}:{port}"
    master_args = ["--host", HOST, "--port", str(port), "--webui-port", str(ui)]
    master = start(["org.apache.spark.deploy.master.Master", *master_args], root / "master.log")
    processes = [master]
    try:
        found = Cluster(master_url, f"http://{HOST}:{ui}/json", root / "work")
        wait_for(lambda: found.state()["status"] == "ALIVE", "the master")
        worker_args = [
            *("--host", HOST, "--port", str(worker_port), "--webui-port", str(worker_ui)),
            *("--cores", "1", "--memory", "2g", "--work-dir", str(found.work_dir)),
            master_url,
        ]
        worker = start(["org.apache.spark.deploy.worker.Worker", *worker_args], root / "worker.log")
        processes.append(worker)
        wait_for(lambda: found.state()["aliveworkers"] == 1, "the worker")
        yield found
    finally:
        for process in reversed(processes):
            stop(process)


def submit(
    cluster: Cluster, tmp: Path, job: str, *options: str
) -> subprocess.CompletedProcess[str]:
    settings = [
        f"spark.master={cluster.master_url}",
        f"storage.landing={tmp}/landing",
        f"storage.warehouse={tmp}/warehouse",
        f"storage.ground_truth={tmp}/ground_truth",
        *options,
    ]
    args = ["--env", "test", "--run-date", RUN_DATE.isoformat()]
    return subprocess.run(
        [str(ROOT / "spark-submit.sh"), job, *args, *(a for s in settings for a in ("--set", s))],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        # The package spark-submit.sh zips and ships is this checkout's lib/.
        env={**os.environ, "PYTHONPATH": str(ROOT / "lib")},
    )


@dataclass(frozen=True)
class Submitted:
    tmp: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def submitted(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Submitted:
    tmp = tmp_path_factory.mktemp("on_cluster")
    write_tiny_landing(tmp / "landing")
    result = submit(cluster, tmp, "pipeline")  # conf/test.yaml: ingest, validate, silver
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Submitted(tmp, result)


def rows(path: Path, as_of: bool = False) -> int:
    table = deltalake.DeltaTable(str(path)).to_pyarrow_table()
    if as_of:
        table = table.filter(pc.equal(table["as_of_date"], RUN_DATE))
    return int(table.num_rows)


def test_the_jobs_wrote_real_delta_tables(submitted: Submitted) -> None:
    """Read back by delta-rs, a second Delta reader: exact rows of bronze and every silver table."""
    warehouse = submitted.tmp / "warehouse"
    assert rows(warehouse / "bronze" / "events") == 8  # tests/tiny_landing.py: 8 lines
    silver = {name: rows(warehouse / "silver" / name) for name in EXPECTED_SILVER}
    assert silver == EXPECTED_SILVER


def test_the_summary_goes_to_stdout_and_step_lines_to_stderr(submitted: Submitted) -> None:
    # Step lines go to the JVM's stderr (PythonRunner merges Python's stderr into stdout);
    # stdout holds the job's result, the summary.
    result = submitted.result
    assert "step silver order_lines" in result.stderr
    assert " INFO " not in result.stdout, result.stdout[-3000:]
    steps = re.findall(r"^  (\w+) +(\w+) +[\d.]+  on: (.*)$", result.stdout, re.M)
    assert steps == [
        (step, "succeeded", "events, crm, transactions, catalog")
        for step in ("ingest", "validate", "silver")
    ], result.stdout


def test_the_application_ran_executors_on_the_worker(
    cluster: Cluster, submitted: Submitted
) -> None:
    apps = cluster.state()["completedapps"]
    assert [(a["name"], a["state"]) for a in apps] == [("precision-marketing:pipeline", "FINISHED")]
    executors = sorted((cluster.work_dir / apps[0]["id"]).iterdir())
    assert executors
    assert any("Finished task" in (e / "stderr").read_text() for e in executors)


def test_package_conf_and_delta_jars_were_shipped_to_the_executors(
    cluster: Cluster, submitted: Submitted
) -> None:
    (pipeline,) = cluster.state()["completedapps"]
    executor = sorted((cluster.work_dir / pipeline["id"]).iterdir())[0]
    names = {p.name for p in executor.iterdir()}
    assert {Path(jar).name for jar in delta_jars()} <= names
    (package,) = executor.glob("precision_marketing-*.zip")
    with zipfile.ZipFile(package) as shipped:
        assert "precision_marketing/pipeline.py" in shipped.namelist()
    assert (executor / "conf" / "base.yaml").is_file()
