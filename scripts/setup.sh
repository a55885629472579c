#!/usr/bin/env bash
# Sets up a fresh checkout: a Python 3.11 venv with the pinned packages (.venv/) and the Delta
# Lake JARs resolved from Maven Central (.jars/). Idempotent and quick once done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
"$python_bin" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "setup: Python 3.11 is required (found $("$python_bin" --version 2>&1))" >&2; exit 1; }
command -v java >/dev/null || { echo "setup: Java 17 is required (java not on PATH)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup: Maven is required to resolve the Delta JARs" >&2; exit 1; }

stamp=".venv/.setup-stamp"
want="$(cat pyproject.toml deps/delta-jars.xml | sha256sum | cut -c1-16)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -n "$(ls .jars/*.jar 2>/dev/null)" ]]; then
  exit 0
fi

echo "setup: creating .venv and installing pinned packages (first time: about 2 minutes)"
[[ -x .venv/bin/python ]] || "$python_bin" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

echo "setup: resolving the Delta Lake JARs from Maven Central into .jars/"
rm -rf .jars
mvn --batch-mode --quiet -f deps/delta-jars.xml dependency:copy-dependencies \
  -DincludeGroupIds=io.delta -DexcludeTransitive=false \
  -DexcludeArtifactIds=delta-kernel-api,delta-kernel-defaults,delta-kernel-unitycatalog \
  -DoutputDirectory="$root/.jars"
ls .jars/*.jar >/dev/null
echo "$want" > "$stamp"
echo "setup: done ($(ls .jars | tr '\n' ' '))"
