"""The one SparkSession factory: every job and every test gets its session here."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from pyspark.sql import SparkSession

from precision_marketing.config import Config

log = logging.getLogger(__name__)

JARS_DIR_ENV = "PM_JARS_DIR"

# Delta is not optional: every table of the suite is a Delta table.
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


# Loggers set to a level above Spark's, with why. WindowExec warns "No Partition Defined for
# Window operation!" each time a window without partitionBy is planned (several times per query:
# 124 lines in a 100-customer pipeline run, 84 from recommend and 40 from publish). The suite's
# per-key rankings are partitioned by their key; three windows are global on purpose:
# recommend/ids.py numbers the keys not yet in an id map (dense ALS indices need one order over
# the run's new keys), recommend/baselines.py ranks popular items over no group (one row per
# item), and publish/policy.py takes a campaign's contacts by expected value until its budget
# or size is spent (a running sum over one order; its partitionBy("campaign_id") is a constant
# within a campaign, which Spark folds away).
QUIET_LOGGERS = {"org.apache.spark.sql.execution.window.WindowExec": "ERROR"}


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM (with --master, --jars, --conf) and hands pyspark a port."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


class JvmStderr:
    """A text stream onto the JVM's System.err, where Spark's own log lines go.

    Under spark-submit, PythonRunner merges the Python driver's stderr into its own stdout, so
    log lines written to Python's stderr end up on spark-submit's stdout, mixed with the job's
    result (the pipeline summary). Through the JVM they reach spark-submit's stderr, beside
    Spark's warnings, as they do when Python starts the JVM itself (local runs, tests).
    """

    def __init__(self) -> None:
        from pyspark import SparkContext

        # Connects to the gateway spark-submit started (no SparkContext yet).
        SparkContext._ensure_initialized()
        jvm = SparkContext._jvm
        assert jvm is not None
        self._err = jvm.java.lang.System.err

    def write(self, text: str) -> int:
        self._err.print(text)
        return len(text)

    def flush(self) -> None:
        self._err.flush()


def log_stream() -> TextIO | JvmStderr:
    """Where the job's log lines go: the stderr Spark logs to."""
    return JvmStderr() if launched_by_spark_submit() else sys.stderr


def delta_jars() -> list[str]:
    """The Delta JARs scripts/setup.sh resolved from Maven Central into .jars/."""
    jars_dir = Path(os.environ.get(JARS_DIR_ENV) or Path(__file__).parents[2] / ".jars")
    jars = sorted(str(p) for p in jars_dir.glob("*.jar"))
    if not jars:
        raise RuntimeError(
            f"no Delta JARs in {jars_dir}: run scripts/setup.sh (or set {JARS_DIR_ENV})"
        )
    return jars


def driver_java_options(config: Config) -> str:
    """Quiet Spark's startup INFO lines with conf/log4j2.properties (if present)."""
    log4j = Path(config.conf_dir) / "log4j2.properties"
    extra = config.spark.conf.get("spark.driver.extraJavaOptions", "")
    if log4j.is_file():
        extra = f"-Dlog4j2.configurationFile=file:{log4j} {extra}".strip()
    return extra


def session_conf(config: Config) -> dict[str, str]:
    """Spark conf from config plus what the suite always needs (Delta, the log config)."""
    conf = {**config.spark.conf, **DELTA_CONF}
    java_options = driver_java_options(config)
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    return conf


def build_session(config: Config, app_name: str | None = None) -> SparkSession:
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    for key, value in session_conf(config).items():
        builder = builder.config(key, value)
    if not launched_by_spark_submit():
        # Under spark-submit the master, the JARs and the workers' Python (PYSPARK_PYTHON, set
        # by spark-submit.sh) come from its command line instead. Here the workers run this
        # interpreter, whose environment has the pandas and scipy the vectorized UDFs need
        # (pyspark reads the variable when it creates the context).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(config.spark.master).config("spark.jars", ",".join(delta_jars()))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(config.spark.log_level)
    quiet_loggers(spark)
    log.info(
        "spark %s master=%s app=%s",
        spark.version,
        spark.sparkContext.master,
        spark.sparkContext.appName,
    )
    return spark


def quiet_loggers(spark: SparkSession) -> None:
    """Applies QUIET_LOGGERS to the driver's log4j2 (where Spark plans queries)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    log4j = jvm.org.apache.logging.log4j
    for name, level in QUIET_LOGGERS.items():
        log4j.core.config.Configurator.setLevel(name, log4j.Level.toLevel(level))


def observing_session(spark: SparkSession, settings: dict[str, str] | None = None) -> SparkSession:
    """A child session for code that uses `Observation`, with the parent's SQL conf.

    Spark 4.1: the first Observation gives its session an ObservationManager that cannot be
    serialized, and a LogisticRegression model keeps its training session in its summary, so
    every such model fitted later in that session fails with "Task not serializable". A child
    session shares the context, the tables and the cache, and keeps the parent usable.
    """
    child = spark.newSession()
    for key, value in {**spark.conf.getAll, **(settings or {})}.items():
        if key.startswith("spark.sql.") and child.conf.isModifiable(key):
            child.conf.set(key, value)
    return child
