"""What a pytest process pays per pipeline: real-shaped fixtures (tests/fixtures/real_shaped) run
through every stage one after another in one Spark session under conf/test.yaml, as the suite's
process runs them. Prints each pipeline's wall time, then the driver JVM's CPU seconds.

    .venv/bin/python -m bench.suite_pipelines transactions_only no_crm transactions_only
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

from precision_marketing.spark import build_session
from tests.real_shaped_fixture import ALL_STEPS, CASES, FIXTURES
from tests.support import SESSION_JAVA_OPTIONS, make_config, run_stage


def jvm_cpu_seconds(pid: int) -> float:
    """utime + stime of a Linux process, from /proc (clock ticks of 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", choices=sorted(CASES))
    parser.add_argument(
        "--java-options", help="the driver JVM's options (the suite session's else)"
    )
    args = parser.parse_args()
    java_options = (
        f"spark.conf.spark.driver.extraJavaOptions={args.java_options}"
        if args.java_options
        else SESSION_JAVA_OPTIONS
    )
    spark = None
    for name in args.cases:
        case = CASES[name]
        root = Path(tempfile.mkdtemp(prefix=f"suite_{name}_"))
        shutil.copytree(FIXTURES / name, root / "landing")
        config = make_config(
            root,
            f"pipeline.steps=[{','.join(ALL_STEPS)}]",
            *case.overrides,
            java_options,
        )
        spark = spark or build_session(config, "suite_pipelines")
        started = time.monotonic()
        with redirect_stdout(io.StringIO()):
            run_stage(spark, config, "pipeline", case.run_date)
        print(f"{name}: {time.monotonic() - started:.1f} s", flush=True)
        shutil.rmtree(root)
    assert spark is not None
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[union-attr]
    print(f"driver JVM CPU: {jvm_cpu_seconds(pid):.1f} s")


if __name__ == "__main__":
    main()
