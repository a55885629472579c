"""What a pytest process pays per pipeline: the suite's pipelines run one after another in one
Spark session under conf/test.yaml, as the suite's process runs them. `generated` is the
pipeline warehouse's (tests/pipeline_fixture.py: 100 generated customers, then every stage with
Data Docs on); the other cases are the real-shaped fixtures (tests/fixtures/real_shaped).
Prints, per pipeline, its wall time, the driver JVM's CPU seconds and the Spark jobs it ran;
naming a case twice shows the warm JVM's second run beside the first.

    .venv/bin/python -m bench.suite_pipelines generated no_crm generated no_crm
    .venv/bin/python -m bench.suite_pipelines transactions_only \
        --java-options "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"  # C1 alone, 48 MB code cache
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from pyspark.sql import SparkSession

from precision_marketing.config import Config
from precision_marketing.spark import build_session
from tests.pipeline_fixture import warehouse_config
from tests.real_shaped_fixture import ALL_STEPS, CASES, FIXTURES
from tests.support import RUN_DATE, SESSION_JAVA_OPTIONS, make_config, run_stage

GENERATED = "generated"


def jvm_cpu_seconds(pid: int) -> float:
    """utime + stime of a Linux process, from /proc (clock ticks of 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def last_job(spark: SparkSession) -> int:
    """The newest Spark job id the driver knows (-1 before the first)."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None), default=-1)


def pipeline_config(name: str, root: Path, java_options: str) -> Config:
    """The config a test process gives the case's pipeline; a real-shaped case's landing is
    copied under `root`."""
    if name == GENERATED:
        return warehouse_config(root, java_options)
    case = CASES[name]
    shutil.copytree(FIXTURES / name, root / "landing")
    return make_config(
        root, f"pipeline.steps=[{','.join(ALL_STEPS)}]", *case.overrides, java_options
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", choices=[GENERATED, *sorted(CASES)])
    parser.add_argument(
        "--java-options", help="the driver JVM's options (the suite session's else)"
    )
    args = parser.parse_args()
    java_options = (
        f"spark.conf.spark.driver.extraJavaOptions={args.java_options}"
        if args.java_options
        else SESSION_JAVA_OPTIONS
    )
    spark: SparkSession | None = None
    pid = 0
    for name in args.cases:
        root = Path(tempfile.mkdtemp(prefix=f"suite_{name}_"))
        config = pipeline_config(name, root, java_options)
        if spark is None:
            spark = build_session(config, "suite_pipelines")
            pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
        run_date = RUN_DATE if name == GENERATED else CASES[name].run_date
        started, cpu, jobs = time.monotonic(), jvm_cpu_seconds(pid), last_job(spark)
        with redirect_stdout(io.StringIO()):
            if name == GENERATED:
                run_stage(spark, config, "generate", run_date)
            run_stage(spark, config, "pipeline", run_date)
        print(
            f"{name}: {time.monotonic() - started:.1f} s, driver JVM CPU "
            f"{jvm_cpu_seconds(pid) - cpu:.1f} s, {last_job(spark) - jobs} Spark jobs",
            flush=True,
        )
        shutil.rmtree(root)
    print(f"driver JVM CPU: {jvm_cpu_seconds(pid):.1f} s")


if __name__ == "__main__":
    main()
