"""Builds what spark-submit.sh hands to spark-submit: the shipped package and the arguments.

Kept in Python so that master and Spark conf come from the same layered config the jobs read
(`--env`, `--set`), and driver settings such as spark.driver.memory take effect (they must be
known before the JVM starts, which a SparkSession builder inside the job is too late for).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from precision_marketing.cli import parse_args
from precision_marketing.config import load_config
from precision_marketing.spark import delta_jars, session_conf

ROOT = Path(__file__).resolve().parents[2]


def build_archives(out: Path) -> tuple[Path, Path]:
    """lib/ as a zip for --py-files (executors need no checkout) and conf/ for --archives."""
    out.mkdir(parents=True, exist_ok=True)
    package = _zip(out, "precision_marketing", ROOT / "lib", "precision_marketing")
    conf = _zip(out, "conf", ROOT / "conf", ".")
    return package, conf


def _zip(out: Path, name: str, base: Path, folder: str) -> Path:
    """A zip named by its content, written atomically.

    Jobs started side by side (Airflow runs several) must never see each other's half-written
    archive: Python's zipimport re-reads the file while the job runs.
    """
    files = sorted(
        p for p in (base / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(base)).encode())
        digest.update(path.read_bytes())
    target = out / f"{name}-{digest.hexdigest()[:16]}.zip"
    if target.exists():
        return target
    with (
        tempfile.NamedTemporaryFile(dir=out, suffix=".tmp", delete=False) as tmp,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in files:
            archive.write(path, path.relative_to(base))
    os.replace(tmp.name, target)
    return target


def submit_args(job: str, argv: list[str], out: Path) -> list[str]:
    args = parse_args(job, argv)
    config = load_config(args.env, args.overrides)
    package, conf = build_archives(out)
    master = config.spark.master
    result = ["--master", master, "--name", f"{config.spark.app_name}:{job}"]
    for key, value in session_conf(config).items():
        result += ["--conf", f"{key}={value}"]
    result += ["--jars", ",".join(delta_jars()), "--py-files", str(package)]
    if not master.startswith("local"):
        # On a cluster the driver may run where there is no checkout (YARN cluster mode):
        # conf/ arrives as ./conf in every container, where config.find_conf_dir looks.
        result += ["--archives", f"{conf}#conf"]
    return result


if __name__ == "__main__":
    job_name, *job_argv = sys.argv[1:]
    print("\n".join(submit_args(job_name, job_argv, ROOT / "build")))
