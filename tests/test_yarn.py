"""./spark-submit.sh --env yarn against a real Hadoop mini cluster (HDFS + YARN) on loopback.

scripts/minicluster.sh starts a NameNode, DataNode, ResourceManager and NodeManager in one JVM
(from Maven Central's hadoop-client-minicluster, the Hadoop pyspark bundles). A 200-customer
landing generated here is copied into HDFS; ingest, validate, silver, features and segment then
run as one YARN application in cluster mode: the driver runs in the application master's
container with the packed Python environment (--archives), the salt comes through
spark.yarn.appMasterEnv, the Delta JARs and the package are shipped. The same stages run in
this process's local session on the same landing, and every table must hold the same rows.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, DoubleType, FloatType, MapType, StructType

from precision_marketing.config import load_config
from precision_marketing.submit import ROOT, python_env, secret_env_conf, submission
from tests.support import RUN_DATE, TIERED_JIT, run_stage
from tests.tiny_landing import write_tiny_landing

log = logging.getLogger(__name__)

MINICLUSTER = ROOT / "scripts" / "minicluster.sh"
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
SALT = "yarn-test-salt"
STEPS = ["ingest", "validate", "silver", "features", "segment"]
# The same config for both runs, besides storage: 200 customers, a fixed k, no Data Docs HTML.
SETTINGS = ["generate.customers=200", "generate.days=60", "segment.k=3", "validate.data_docs=false"]
# Columns a run stamps with its own id, clock or file paths; everything else must agree.
RUN_COLUMNS = {
    "_ingest_run_id",
    "_ingested_at",
    "_source_file",
    "_validation_run_id",
    "_quarantined_at",
    "run_id",
    "pipeline_run_id",
}
LOG_FILES = {"stdout", "stderr", "syslog"}
# The applications' JVMs live minutes: the JIT conf/test.yaml gives such JVMs (C1 alone).
TEST_SPARK_CONF = load_config("test").spark.conf
SHORT_LIVED_JVM = TEST_SPARK_CONF["spark.executor.extraJavaOptions"]
# conf/test.yaml's settings for tiny data, which the local runs here plan with too. Without
# them a quality stop on the 20-row landing ran 1,341 tasks (Delta's 50 snapshot partitions per
# log replay, each a round trip to the one executor) in 186 s of application time.
TINY_DATA_CONF = {
    key: TEST_SPARK_CONF[key]
    for key in (
        "spark.sql.shuffle.partitions",
        "spark.default.parallelism",
        "spark.databricks.delta.snapshotPartitions",
        "spark.sql.codegen.wholeStage",
        "spark.sql.codegen.factoryMode",
        "spark.sql.adaptive.enabled",
        "spark.sql.adaptive.coalescePartitions.enabled",
    )
}
# The data layers; ops/ records durations and run ids.
LAYERS = ("bronze", "silver", "gold", "quarantine")


@dataclass(frozen=True)
class MiniCluster:
    hdfs: str  # hdfs://localhost:<port>
    conf_dir: Path
    home: Path
    pyenv: str  # the packed Python environment, uploaded once: every application reuses it


def minicluster(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(MINICLUSTER), command],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        env={**os.environ, "PM_MINICLUSTER_HOME": str(home)},
    )


def memory_kb(home: Path, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of the cluster JVM, in KB (its containers are other JVMs)."""
    pid = (home / "pid").read_text().strip()
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith(f"{field}:")))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Iterator[MiniCluster]:
    home = tmp_path_factory.mktemp("minicluster")
    clock = time.monotonic()
    started = minicluster("start", home)
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        log.info("minicluster start %.0f s, RSS %d MB idle", time.monotonic() - clock,
                 memory_kb(home, "VmRSS") // 1024)  # fmt: skip
        hdfs = (home / "conf" / "ready").read_text().split()[0]
        pyenv = f"{hdfs}/shared/pyenv.tar.gz"
        put(spark, Path(python_env()), pyenv)
        yield MiniCluster(hdfs, home / "conf", home, pyenv)
    finally:
        if (home / "pid").exists():
            log.info("minicluster peak RSS %d MB", memory_kb(home, "VmHWM") // 1024)
        clock = time.monotonic()
        stopped = minicluster("stop", home)
        log.info("minicluster stop %.0f s", time.monotonic() - clock)
        assert stopped.returncode == 0, stopped.stderr


def put(spark: SparkSession, local: Path, target: str) -> None:
    """Copies a local file or folder into HDFS through the Hadoop client pyspark carries."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    fs = hadoop_path(target).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    fs.copyFromLocalFile(False, True, hadoop_path(str(local)), hadoop_path(target))


def submit_to_yarn(
    cluster: MiniCluster, base: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """`./spark-submit.sh pipeline --env yarn` in cluster mode: the driver in the AM."""
    jars = Path(pyspark.__file__).parent / "jars"
    settings = [
        f"storage.landing={base}/landing",
        f"storage.warehouse={base}/warehouse",
        f"storage.ground_truth={base}/ground_truth",
        *SETTINGS,
        # Small containers: a 1 GB driver (the AM) and one 1 GB executor fit the 4 GB node.
        "spark.conf.spark.submit.deployMode=cluster",
        "spark.conf.spark.driver.memory=1g",
        "spark.conf.spark.executor.memory=1g",
        "spark.conf.spark.executor.cores=1",
        "spark.conf.spark.dynamicAllocation.maxExecutors=1",
        *(f"spark.conf.{key}={value}" for key, value in TINY_DATA_CONF.items()),
        # Spark's own JARs are on the node already: no 460 MB upload per application.
        f"spark.conf.spark.yarn.jars=local:{jars}/*",
        # The driver (in the AM's container) and the executors.
        *(
            f"spark.conf.spark.{jvm}.extraJavaOptions={SHORT_LIVED_JVM}"
            for jvm in ("driver", "executor")
        ),
        *options,
    ]
    return subprocess.run(
        [
            str(ROOT / "spark-submit.sh"),
            "pipeline",
            *("--env", "yarn", "--run-date", RUN_DATE.isoformat()),
            *(a for s in settings for a in ("--set", s)),
        ],
        capture_output=True,
        text=True,
        # 21 min seen at a load average of 40 on 2 cores (the AM alone took 5 min to start).
        timeout=3600,
        check=False,
        env={
            **os.environ,
            "HADOOP_CONF_DIR": str(cluster.conf_dir),
            "PM_PYENV_ARCHIVE": cluster.pyenv,
            "PM_PII_SALT": SALT,
            "PYTHONPATH": str(ROOT / "lib"),
        },
    )


@dataclass(frozen=True)
class Runs:
    local: Path
    hdfs: str
    seconds: float
    stderr: str
    killed_executor: int | None


class ExecutorKiller(threading.Thread):
    """Kills the first executor container of `cluster` once it has lived `after` seconds.

    Executors are found by their main class and by a working directory inside the cluster's
    folder (so nothing else on the machine is touched); SIGKILL is what an OOM killer or a lost
    node does to a container.
    """

    def __init__(self, cluster: MiniCluster, after: float) -> None:
        super().__init__(daemon=True)
        self.home = str(cluster.home.resolve())
        self.after = after
        self.killed: int | None = None
        self.done = threading.Event()

    def executors(self) -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes()
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if b"YarnCoarseGrainedExecutorBackend" in command and cwd.startswith(self.home):
                found.append(int(proc.name))
        return found

    def run(self) -> None:
        first_seen: dict[int, float] = {}
        while not self.done.is_set():
            now = time.monotonic()
            for pid in self.executors():
                first_seen.setdefault(pid, now)
                if now - first_seen[pid] >= self.after:
                    os.kill(pid, signal.SIGKILL)
                    self.killed = pid
                    return
            self.done.wait(0.5)


@pytest.fixture(scope="module")
def runs(
    cluster: MiniCluster, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    tmp = tmp_path_factory.mktemp("yarn_local")
    saved = os.environ.get("PM_PII_SALT")
    os.environ["PM_PII_SALT"] = SALT  # the local run salts with the same value
    try:
        config = load_config(
            "yarn",
            [
                f"storage.landing={tmp}/landing",
                f"storage.warehouse={tmp}/warehouse",
                f"storage.ground_truth={tmp}/ground_truth",
                *SETTINGS,
            ],
        )
        run_stage(spark, config, "generate", RUN_DATE)
        base = f"{cluster.hdfs}/pm"
        put(spark, tmp / "landing", f"{base}/landing")
        killer = ExecutorKiller(cluster, after=30.0)
        killer.start()
        started = time.monotonic()
        result = submit_to_yarn(
            cluster,
            base,
            f"pipeline.steps=[{','.join(STEPS)}]",
            # Five stages for ten minutes and more: the driver and the executors keep the tiered
            # JIT, as the pytest session does. With C1 alone this run took 1,261 s in the suite
            # of 2026-12-02 (1,038 s the day before); with C1 executors, 853 s alone.
            *(
                f"spark.conf.spark.{jvm}.extraJavaOptions={TIERED_JIT}"
                for jvm in ("driver", "executor")
            ),
        )
        seconds = time.monotonic() - started
        killer.done.set()
        killer.join()
        log.info("YARN cluster-mode run %.0f s", seconds)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
        started = time.monotonic()
        for step in STEPS:
            run_stage(spark, config, step, RUN_DATE)
        log.info("local run %.0f s", time.monotonic() - started)
        yield Runs(tmp / "warehouse", f"{base}/warehouse", seconds, result.stderr, killer.killed)
    finally:
        if saved is None:
            os.environ.pop("PM_PII_SALT", None)
        else:
            os.environ["PM_PII_SALT"] = saved


def tables(warehouse: Path) -> list[str]:
    """layer/table of every Delta table the local run wrote."""
    return sorted(
        str(log.parent.relative_to(warehouse))
        for layer in LAYERS
        for log in warehouse.glob(f"{layer}/*/_delta_log")
    )


def hashable(column: Column, kind: DataType) -> Column:
    """A column xxhash64 accepts, floats rounded at any depth (arrays, structs, map values); a
    map as its entries sorted by key."""
    if isinstance(kind, FloatType | DoubleType):
        return F.round(column, 9)
    if isinstance(kind, ArrayType):
        element = kind.elementType
        return F.transform(column, lambda e: hashable(e, element))
    if isinstance(kind, StructType):
        return F.struct(*(hashable(column[f.name], f.dataType).alias(f.name) for f in kind.fields))
    if isinstance(kind, MapType):
        value = kind.valueType
        return F.transform(
            F.array_sort(F.map_entries(column)),
            lambda e: F.struct(e["key"].alias("key"), hashable(e["value"], value).alias("value")),
        )
    return column


def digest(frame: DataFrame) -> tuple[int, int]:
    """Row count and an order-free content digest (sum of per-row xxhash64, as decimal).

    Floating-point columns are rounded first: sums over differently ordered partitions may
    differ in the last bits.
    """
    columns = [
        hashable(F.col(field.name), field.dataType)
        for field in sorted(frame.schema.fields, key=lambda f: f.name)
        if field.name not in RUN_COLUMNS
    ]
    row = frame.select(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*columns).cast("decimal(38,0)")).alias("digest"),
    ).first()
    assert row is not None
    return int(row["n"]), int(row["digest"] or 0)


@pytest.mark.yarn
def test_yarn_cluster_mode_writes_the_tables_a_local_run_writes(
    spark: SparkSession, runs: Runs
) -> None:
    names = tables(runs.local)
    assert {"bronze/events", "silver/customers", "gold/user_features", "gold/segments"} <= set(
        names
    )
    for name in names:
        local = digest(spark.read.format("delta").load(str(runs.local / name)))
        on_hdfs = digest(spark.read.format("delta").load(f"{runs.hdfs}/{name}"))
        assert on_hdfs == local, name
    customers = spark.read.format("delta").load(f"{runs.hdfs}/silver/customers")
    assert customers.count() == 200
    segments = spark.read.format("delta").load(f"{runs.hdfs}/gold/segments")
    assert segments.where(F.col("as_of_date") == F.lit(RUN_DATE)).count() == 200


def container_logs(cluster: MiniCluster) -> list[Path]:
    """The stdout/stderr/syslog files the NodeManager kept of every container."""
    return [
        p
        for p in cluster.home.rglob("*")
        if p.is_file() and p.parent.name.startswith("container_") and p.name in LOG_FILES
    ]


@pytest.mark.yarn
def test_a_killed_executor_is_replaced_and_the_run_converges(
    runs: Runs, cluster: MiniCluster
) -> None:
    # The tables above equal the local run's although an executor died mid-run: its tasks ran
    # again on the executor YARN started in its place.
    assert runs.killed_executor is not None, "no executor lived 30 s: nothing was killed"
    driver_log = "".join(p.read_text(errors="replace") for p in container_logs(cluster))
    assert "Lost executor 1" in driver_log


@pytest.mark.yarn
def test_a_data_quality_stop_exits_3_through_yarn(
    spark: SparkSession, cluster: MiniCluster, tmp_path: Path
) -> None:
    # Reporting in GBP with no GBP rates: the EUR transactions break currency_known (a fail
    # rule), so validate stops the run before silver; in cluster mode the code comes back
    # through YARN's final status. (In client mode the driver is spark-submit's own process:
    # its exit code is the local one, tests/test_pipeline_resume.py; the Airflow test below
    # runs client mode.)
    write_tiny_landing(tmp_path / "landing")
    base = f"{cluster.hdfs}/stop"
    put(spark, tmp_path / "landing", f"{base}/landing")
    started = time.monotonic()
    result = submit_to_yarn(
        cluster,
        base,
        "pipeline.steps=[ingest,validate,silver]",
        "currency.reporting=GBP",
        # One attempt: YARN's second application master would only stop at validate again.
        "spark.conf.spark.yarn.maxAppAttempts=1",
    )
    log.info("data-quality stop (cluster mode) %.0f s", time.monotonic() - started)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-6000:]
    results = spark.read.format("delta").load(f"{base}/warehouse/ops/validation_results")
    failed = results.where((F.col("rule") == "currency_known") & (F.col("severity") == "fail"))
    assert failed.where(F.col("unexpected_count") > 0).count() == 1
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    silver = jvm.org.apache.hadoop.fs.Path(f"{base}/warehouse/silver")
    fs = silver.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    assert not fs.exists(silver)


def yarn_applications(spark: SparkSession, cluster: MiniCluster) -> dict[str, tuple[str, str]]:
    """name -> (state, final status) of every application the ResourceManager knows."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = jvm.org.apache.hadoop.yarn.conf.YarnConfiguration()
    conf.addResource(jvm.org.apache.hadoop.fs.Path(str(cluster.conf_dir / "yarn-site.xml")))
    client = jvm.org.apache.hadoop.yarn.client.api.YarnClient.createYarnClient()
    client.init(conf)
    client.start()
    try:
        return {
            str(app.getName()): (
                str(app.getYarnApplicationState().toString()),
                str(app.getFinalApplicationStatus().toString()),
            )
            for app in client.getApplications()
        }
    finally:
        client.stop()


@pytest.mark.yarn
def test_the_airflow_dag_runs_ingest_on_yarn(
    spark: SparkSession, cluster: MiniCluster, runs: Runs, tmp_path: Path
) -> None:
    """The DAG's own `package` and `ingest` tasks (`airflow dags test`, the rest marked done)
    with spark_default pointed at YARN, client mode, --env yarn: bronze lands in HDFS where
    conf/yarn.yaml puts it, equal to the local run's."""
    assert AIRFLOW.exists(), f"no {AIRFLOW}: run scripts/setup.sh --airflow"
    warehouse = f"{cluster.hdfs}/data/precision_marketing/warehouse"  # conf/yarn.yaml's, on HDFS
    put(spark, runs.local.parent / "landing", f"{cluster.hdfs}/data/precision_marketing/landing")
    jars = Path(pyspark.__file__).parent / "jars"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV", "PM_"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow_home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_VAR_PM_PROJECT_DIR=str(ROOT),
        # The connection names the master and the deploy mode; client mode: the driver runs in
        # the worker and has its environment's salt (README "Scheduling with Airflow").
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps(
            {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "client"}}
        ),
        PATH=f"{ROOT}/.venv/bin:{os.environ['PATH']}",
        HADOOP_CONF_DIR=str(cluster.conf_dir),
        PM_PYENV_ARCHIVE=cluster.pyenv,
        PM_PII_SALT=SALT,
        # The gateway's own Spark default (spark-defaults.conf on a real cluster): Spark's JARs
        # are on the node, so none is uploaded per application. The JVMs: the driver (this
        # spark-submit's own JVM in client mode), the AM and the executors run C1 alone, as
        # conf/test.yaml's short-lived JVMs do (one word per -D value: the variable is split
        # on spaces). The tiny-data settings too, where the job's own --conf (base.yaml,
        # yarn.yaml) leaves Spark's default: its --conf would win over a -D.
        SPARK_SUBMIT_OPTS=" ".join(
            (
                SHORT_LIVED_JVM,
                f"-Dspark.yarn.jars=local:{jars}/*",
                "-Dspark.yarn.am.extraJavaOptions=-XX:TieredStopAtLevel=1",
                "-Dspark.executor.extraJavaOptions=-XX:TieredStopAtLevel=1",
                *(
                    f"-D{key}={value}"
                    for key, value in TINY_DATA_CONF.items()
                    if key not in load_config("yarn").spark.conf
                ),
            )
        ),
    )

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AIRFLOW), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=3600, check=False,
        )  # fmt: skip

    migrated = airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    started = time.monotonic()
    later = "validate|silver|features|segment|propensity|recommend|publish|measure|monitor"
    result = airflow(
        "dags", "test", "precision_marketing", RUN_DATE.isoformat(),
        "--conf", json.dumps({"env": "yarn"}), "--mark-success-pattern", f"^({later})$",
    )  # fmt: skip
    log.info("airflow dags test (package + ingest on YARN) %.0f s", time.monotonic() - started)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    command = next(line for line in output.splitlines() if "Spark-Submit cmd:" in line)
    assert "--master yarn" in command
    assert "--deploy-mode client" in command
    finished = [line for line in output.splitlines() if "DagRun Finished" in line]
    assert len(finished) == 1, output[-6000:]
    assert "state=success" in finished[0], output[-6000:]
    assert yarn_applications(spark, cluster)["precision-marketing:ingest"] == (
        "FINISHED",
        "SUCCEEDED",
    )
    bronze = [name for name in tables(runs.local) if name.startswith("bronze/")]
    assert bronze
    for name in bronze:
        local = digest(spark.read.format("delta").load(str(runs.local / name)))
        assert digest(spark.read.format("delta").load(f"{warehouse}/{name}")) == local, name


@pytest.mark.yarn
def test_the_salt_reached_the_driver_but_no_log(runs: Runs, cluster: MiniCluster) -> None:
    # Pseudonyms equal to the local run's (above) prove the driver had the salt; it must not
    # appear in what spark-submit printed nor in any container log the NodeManager kept.
    assert SALT not in runs.stderr
    logs = container_logs(cluster)
    assert logs, "no container logs kept"
    leaked = [str(p) for p in logs if SALT in p.read_text(errors="replace")]
    assert leaked == []


def test_yarn_submission_ships_the_packed_python_and_keeps_the_salt_off_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyenv = tmp_path / "pyenv.tar.gz"
    pyenv.write_bytes(b"packed")
    monkeypatch.setenv("PM_PYENV_ARCHIVE", str(pyenv))
    monkeypatch.setenv("PM_PII_SALT", SALT)
    monkeypatch.delenv("PM_HOLDOUT_SALT", raising=False)
    cluster_mode = ["--env", "yarn", "--set", "spark.conf.spark.submit.deployMode=cluster"]
    spec = submission("pipeline", cluster_mode, tmp_path / "build")
    assert spec.archives[1] == f"{pyenv}#environment"
    assert spec.conf["spark.pyspark.python"] == "./environment/bin/python"
    assert "spark.pyspark.driver.python" not in spec.conf  # the driver runs in the AM
    client = submission("pipeline", ["--env", "yarn"], tmp_path / "build")
    assert client.conf["spark.pyspark.driver.python"] == sys.executable
    assert not any(SALT in arg for arg in spec.args("pipeline"))
    assert secret_env_conf("pipeline", cluster_mode) == {
        "spark.yarn.appMasterEnv.PM_PII_SALT": SALT,
        "spark.executorEnv.PM_PII_SALT": SALT,
    }
    assert secret_env_conf("pipeline", ["--env", "local"]) == {}
