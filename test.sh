#!/usr/bin/env bash
# The test command: sets up on first use, then runs the whole pytest suite: local-mode Spark,
# and the Hadoop mini cluster (HDFS + YARN) for tests/test_yarn.py.
# Extra arguments go to pytest (e.g. ./test.sh -k silver -x).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/setup.sh" --airflow --yarn
cd "$root"
exec .venv/bin/python -m pytest "$@"
