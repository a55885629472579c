"""Raw-file access through Hadoop's FileSystem, so the same code works on local disk and HDFS/S3.

File listings are small by construction (one entry per landing file, not per row), so they are
handled on the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class LandingFile:
    path: str
    size: int
    modified_ms: int


def _fs_and_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, path


def list_files(spark: SparkSession, folder: str) -> list[LandingFile]:
    """Data files below `folder`, recursively, skipping Spark/Hadoop markers (_SUCCESS, .crc)."""
    fs, path = _fs_and_path(spark, folder)
    if not fs.exists(path):
        return []
    found = []
    iterator = fs.listFiles(path, True)
    while iterator.hasNext():
        status = iterator.next()
        name = status.getPath().getName()
        if name.startswith(("_", ".")):
            continue
        found.append(
            LandingFile(
                str(status.getPath().toString()), status.getLen(), status.getModificationTime()
            )
        )
    return sorted(found, key=lambda f: f.path)


def read_first_line(spark: SparkSession, uri: str) -> str | None:
    """The first line of a text file (a CSV header), or None for an empty file."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    fs, path = _fs_and_path(spark, uri)
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        line = reader.readLine()
        return None if line is None else str(line).lstrip("\ufeff")
    finally:
        stream.close()


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Writes a small text file (markers, manifests, an intentionally empty file)."""
    fs, path = _fs_and_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Writes a small binary file (a report's PNG chart) on any Hadoop file system."""
    fs, path = _fs_and_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def delete(spark: SparkSession, uri: str) -> None:
    fs, path = _fs_and_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Moves a file or folder, creating the target's parent (a metadata operation on HDFS and
    local disk)."""
    fs, source_path = _fs_and_path(spark, source)
    _, target_path = _fs_and_path(spark, target)
    fs.mkdirs(target_path.getParent())
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_and_path(spark, uri)
    return bool(fs.exists(path))
