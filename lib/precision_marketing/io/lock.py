"""One job at a time per warehouse: an exclusive lock on <warehouse>/ops/.run.lock.

Two runs on one warehouse would otherwise race: Delta's optimistic concurrency lets both
MERGE the same new batch into silver when neither conflicts at file level, and a run that
fails restores its tables to their version before it started (tables.restored_on_failure),
which would throw away the other run's commits. The lock is an OS file lock (flock), so a run
that dies, even by SIGKILL, releases it with its process: there is no stale lock to clean up.

flock needs a local file system: a warehouse on HDFS or S3 gets no lock, and the scheduler must
not overlap runs (the DAG has max_active_runs=1); a conflict Delta detects then still ends in
a one-line error with exit 5 (cli.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from precision_marketing.config import Config
from precision_marketing.io.tables import Layer, table_path

log = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
POLL_SECONDS = 0.5


class WarehouseBusyError(RuntimeError):
    """Another run holds the warehouse lock (exit 5: nothing was written)."""


def lock_file(config: Config) -> Path | None:
    """The lock file of a local warehouse; None for a remote one (hdfs://, s3a://, ...)."""
    ops = table_path(config, Layer.OPS, "")
    parsed = urlparse(ops)
    if parsed.scheme and parsed.scheme != "file":
        return None
    return Path(parsed.path if parsed.scheme else ops) / LOCK_NAME


@contextmanager
def warehouse_lock(config: Config, job: str, run_id: str) -> Iterator[None]:
    """Holds the warehouse lock for the block; waits up to storage.lock_wait_seconds for it."""
    path = lock_file(config)
    if path is None:
        log.info("warehouse %s is not local: no run lock", config.storage.warehouse)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # "a+": opening must not wipe the holder's note before the lock is ours.
    with open(path, "a+") as handle:
        _acquire(handle, path, config.storage.lock_wait_seconds)
        handle.seek(0)
        handle.truncate()
        holder = {
            "job": job,
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        handle.write(json.dumps(holder))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], path: Path, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    waited = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(_busy_message(handle, path, wait_seconds)) from None
            if not waited:
                log.info("waiting up to %.0fs for the warehouse lock %s", wait_seconds, path)
                waited = True
            time.sleep(POLL_SECONDS)


def _busy_message(handle: IO[str], path: Path, wait_seconds: float) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    who = (
        f"{holder.get('job')} (run {holder.get('run_id')}, pid {holder.get('pid')} on "
        f"{holder.get('host')}, since {holder.get('since')})"
        if holder
        else "another run"
    )
    waited = f" (waited {wait_seconds:.0f}s)" if wait_seconds > 0 else ""
    return (
        f"{who} holds {path}{waited}; this run wrote nothing: run it again when that one has "
        "finished, or set storage.lock_wait_seconds to wait for it"
    )
