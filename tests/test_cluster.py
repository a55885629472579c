"""./spark-submit.sh against a real Spark standalone cluster on loopback.

A master and one worker (1 core, 2 GB) are started from the pinned pyspark's bin/spark-class.
The worker runs executors in its own work dir, where nothing of this checkout is: whatever the
jobs need there (the Delta JARs for Delta's writers, the package zip, conf/) must be shipped by
spark-submit. ingest runs as its own application, then validate, silver, features and segment
as one `pipeline` application, on 100 generated customers.
"""

from __future__ import annotations

import json
import os
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
from pyspark.sql import SparkSession

from precision_marketing.spark import delta_jars
from precision_marketing.submit import ROOT
from tests.support import RUN_DATE, make_config, run_stage

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
            env={**os.environ, "SPARK_HOME": SPARK_HOME, "SPARK_LOCAL_IP": HOST},
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


@pytest.fixture(scope="module")
def submitted(
    cluster: Cluster, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    tmp = tmp_path_factory.mktemp("on_cluster")
    run_stage(spark, make_config(tmp), "generate", RUN_DATE)
    ingest = submit(cluster, tmp, "ingest")
    assert ingest.returncode == 0, ingest.stdout[-4000:] + ingest.stderr[-4000:]
    models = submit(
        cluster,
        tmp,
        "pipeline",
        "pipeline.steps=[validate,silver,features,segment]",
        # Cheaper, same code paths: a fixed k skips the silhouette search, no Data Docs HTML.
        "segment.k=3",
        "quality.data_docs=false",
    )
    assert models.returncode == 0, models.stdout[-4000:] + models.stderr[-4000:]
    return tmp


def rows(path: Path, as_of: bool = False) -> int:
    table = deltalake.DeltaTable(str(path)).to_pyarrow_table()
    if as_of:
        table = table.filter(pc.equal(table["as_of_date"], RUN_DATE))
    return int(table.num_rows)


def test_the_jobs_wrote_real_delta_tables(submitted: Path) -> None:
    warehouse = submitted / "warehouse"
    assert rows(warehouse / "bronze" / "events") > 0
    assert rows(warehouse / "silver" / "customers") == 100
    assert rows(warehouse / "gold" / "user_features", as_of=True) == 100
    assert rows(warehouse / "gold" / "segments", as_of=True) == 100


def test_both_applications_ran_executors_on_the_worker(cluster: Cluster, submitted: Path) -> None:
    apps = {a["name"]: a for a in cluster.state()["completedapps"]}
    assert set(apps) == {"precision-marketing:ingest", "precision-marketing:pipeline"}
    assert {a["state"] for a in apps.values()} == {"FINISHED"}
    for app in apps.values():
        executors = sorted((cluster.work_dir / app["id"]).iterdir())
        assert executors, app["id"]
        assert any("Finished task" in (e / "stderr").read_text() for e in executors), app["id"]


def test_package_conf_and_delta_jars_were_shipped_to_the_executors(
    cluster: Cluster, submitted: Path
) -> None:
    pipeline = next(
        a for a in cluster.state()["completedapps"] if a["name"] == "precision-marketing:pipeline"
    )
    executor = sorted((cluster.work_dir / pipeline["id"]).iterdir())[0]
    names = {p.name for p in executor.iterdir()}
    assert {Path(jar).name for jar in delta_jars()} <= names
    (package,) = executor.glob("precision_marketing-*.zip")
    with zipfile.ZipFile(package) as shipped:
        assert "precision_marketing/pipeline.py" in shipped.namelist()
    assert (executor / "conf" / "base.yaml").is_file()
