"""Builds what spark-submit.sh hands to spark-submit: the shipped package and the arguments.

Kept in Python so that master and Spark conf come from the same layered config the jobs read
(`--env`, `--set`), and driver settings such as spark.driver.memory take effect (they must be
known before the JVM starts, which a SparkSession builder inside the job is too late for).
The Airflow DAG gets the same package, JARs and conf from here (`--airflow`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from precision_marketing.cli import UsageError, prepare, refusal
from precision_marketing.config import ConfigError
from precision_marketing.spark import delta_jars, session_conf

ROOT = Path(__file__).resolve().parents[2]
# The packed .venv (scripts/setup.sh --yarn); YARN containers unpack it as ./environment.
PYENV_ENV = "PM_PYENV_ARCHIVE"
CONTAINER_PYTHON = "./environment/bin/python"


def build_archives(out: Path) -> tuple[Path, Path]:
    """lib/ as a zip for --py-files (executors need no checkout) and conf/ for --archives."""
    out.mkdir(parents=True, exist_ok=True)
    package = _zip(out, "precision_marketing", ROOT / "lib", "precision_marketing")
    conf = _zip(out, "conf", ROOT / "conf", ".")
    return package, conf


def _write_once(target: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Writes a content-named file atomically, unless it exists.

    Jobs started side by side (Airflow runs several) must never see each other's half-written
    archive: Python's zipimport re-reads the file while the job runs.
    """
    if target.exists():
        return target
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
        write(tmp)
    os.replace(tmp.name, target)
    return target


def _zip(out: Path, name: str, base: Path, folder: str) -> Path:
    """A zip named by its content."""
    files = sorted(
        p for p in (base / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(base)).encode())
        digest.update(path.read_bytes())

    def write(tmp: IO[bytes]) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(base))

    return _write_once(out / f"{name}-{digest.hexdigest()[:16]}.zip", write)


@dataclass(frozen=True)
class Submission:
    """Everything spark-submit gets besides the job script and the job's own arguments."""

    master: str
    app_name: str
    conf: dict[str, str]
    jars: list[str]
    py_files: Path
    archives: list[str]

    def args(self, job: str) -> list[str]:
        result = ["--master", self.master, "--name", f"{self.app_name}:{job}"]
        for key, value in self.conf.items():
            result += ["--conf", f"{key}={value}"]
        result += ["--jars", ",".join(self.jars), "--py-files", str(self.py_files)]
        if self.archives:
            result += ["--archives", ",".join(self.archives)]
        return result


def submission(job: str, argv: list[str], out: Path) -> Submission:
    # The job's own checks of its files run here too: a mistake stops before the JVM starts.
    _, config, _ = prepare(job, argv, driver=False)
    package, conf = build_archives(out)
    master = config.spark.master
    # On a cluster the driver may run where there is no checkout (YARN cluster mode) and
    # executors run in their own work dirs: conf/ arrives as ./conf in every container,
    # where config.find_conf_dir looks.
    archives = [] if master.startswith("local") else [f"{conf}#conf"]
    spark_conf = session_conf(config)
    if master == "yarn":
        archives.append(f"{python_env()}#environment")
        # Executors, and the driver in cluster mode, run the shipped Python; a client-mode
        # driver runs here, with this checkout's Python (spark-submit.sh's PYSPARK_DRIVER_PYTHON).
        spark_conf.setdefault("spark.pyspark.python", CONTAINER_PYTHON)
        if spark_conf.get("spark.submit.deployMode", "client") == "client":
            spark_conf.setdefault("spark.pyspark.driver.python", sys.executable)
    return Submission(master, config.spark.app_name, spark_conf, delta_jars(), package, archives)


def python_env() -> str:
    """The packed Python environment for YARN containers (built by scripts/setup.sh --yarn).

    `$PM_PYENV_ARCHIVE` may be a cluster URI (hdfs://...): a world-readable copy there is
    localized once per node and reused by every application, instead of being uploaded to the
    application's staging folder and unpacked again each time.
    """
    chosen = os.environ.get(PYENV_ENV) or str(ROOT / "build" / "pyenv.tar.gz")
    if "://" in chosen:
        return chosen
    if not Path(chosen).is_file():
        raise FileNotFoundError(
            f"no packed Python environment at {chosen}: run scripts/setup.sh --yarn"
        )
    return chosen


def secret_env_conf(job: str, argv: list[str]) -> dict[str, str]:
    """The salts a YARN application needs, as Spark conf that puts them into its environment.

    In cluster mode the driver runs in the application master's container, which does not
    inherit this shell's environment: spark.yarn.appMasterEnv.<VAR> carries them there (and
    spark.executorEnv.<VAR> to executors). spark-submit.sh writes them into a private
    properties file, never onto a command line; yarn.yaml's spark.redaction.regex hides them
    from Spark's logs and UI. Salts that are not set here are left out (the job then says so).
    """
    _, config, _ = prepare(job, argv, driver=False)
    if config.spark.master != "yarn":
        return {}
    names = [config.pii.salt_env, config.publish.holdout_salt_env]
    conf: dict[str, str] = {}
    for name in names:
        value = os.environ.get(name)
        if value:
            conf[f"spark.yarn.appMasterEnv.{name}"] = value
            conf[f"spark.executorEnv.{name}"] = value
    return conf


def submit_args(job: str, argv: list[str], out: Path) -> list[str]:
    return submission(job, argv, out).args(job)


def airflow_spec(argv: list[str], out: Path) -> dict[str, str]:
    """What the DAG's SparkSubmitOperators need, as one JSON-able mapping.

    The Spark conf goes into a properties file (`--properties-file`): the operator's `conf`
    must be a mapping when the DAG is parsed, while a file path can come from a template.
    The master is left to the Airflow connection.
    """
    spec = submission("pipeline", argv, out)
    conf = dict(spec.conf)
    if spec.archives:
        conf["spark.archives"] = ",".join(spec.archives)
    text = "".join(f"{key}={_escape(value)}\n" for key, value in sorted(conf.items()))
    data = text.encode("utf-8")

    def write(tmp: IO[bytes]) -> None:
        tmp.write(data)

    digest = hashlib.sha256(data).hexdigest()[:16]
    properties = _write_once(out / f"spark-{digest}.properties", write)
    return {
        "app_name": spec.app_name,
        "master": spec.master,
        "py_files": str(spec.py_files),
        "jars": ",".join(spec.jars),
        "properties_file": str(properties),
    }


def _escape(value: str) -> str:
    """A value as java.util.Properties reads it back (spark-submit --properties-file)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"a Spark conf value with a line break cannot be shipped: {value!r}")
    return value.replace("\\", "\\\\")


def main(argv: list[str]) -> int:
    """Prints spark-submit's arguments; a usage or config mistake is one line on stderr, exit 2
    (spark-submit.sh passes the code on), with the traceback only under --verbose."""
    job_name, *job_argv = argv
    try:
        if job_name == "--airflow":
            print(json.dumps(airflow_spec(job_argv, ROOT / "build")))
        elif job_name == "--secrets":
            # Properties-file lines on stdout, which spark-submit.sh sends to a 0600 file.
            job_name, *job_argv = job_argv
            for key, value in secret_env_conf(job_name, job_argv).items():
                print(f"{key}={_escape(value)}")
        else:
            print("\n".join(submit_args(job_name, job_argv, ROOT / "build")))
    except (UsageError, ConfigError) as exc:
        if "--verbose" in job_argv:
            traceback.print_exc()
        line, code = refusal("pipeline" if job_name == "--airflow" else job_name, exc) or ("", 1)
        print(line, file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
