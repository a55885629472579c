#!/usr/bin/env bash
# The main command: sets everything up on a fresh machine, generates the built-in synthetic
# dataset (once: existing landing files are kept) and runs the pipeline on it. Extra arguments go to both jobs,
# e.g. ./quickstart.sh --set generate.customers=100000
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
bash scripts/setup.sh
./spark-submit.sh generate --if-empty "$@"
./spark-submit.sh pipeline "$@"
