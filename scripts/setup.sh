#!/usr/bin/env bash
# Sets up a fresh checkout: a Python 3.11 venv with the pinned packages (.venv/) and the Delta
# Lake JARs resolved from Maven Central (.jars/). Idempotent and quick once done.
# --airflow also installs Airflow into .venv-airflow/ (the DAG test needs it; the jobs do not).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
with_airflow=false
[[ "${1:-}" == "--airflow" ]] && with_airflow=true

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
"$python_bin" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "setup: Python 3.11 is required (found $("$python_bin" --version 2>&1))" >&2; exit 1; }
command -v java >/dev/null || { echo "setup: Java 17 is required (java not on PATH)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup: Maven is required to resolve the Delta JARs" >&2; exit 1; }

# Two independent stamps: a dependency change re-installs the venv without touching the JARs
# that running Spark JVMs hold open, and the JAR folder is swapped in whole, never emptied.
venv_stamp=".venv/.setup-stamp"
venv_want="$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$venv_stamp" || "$(cat "$venv_stamp")" != "$venv_want" ]]; then
  echo "setup: installing the pinned packages into .venv (first time: about 2 minutes)"
  [[ -x .venv/bin/python ]] || "$python_bin" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$venv_want" > "$venv_stamp"
fi

jars_want="$(sha256sum deps/delta-jars.xml | cut -c1-16)"
if [[ ! -f .jars/.stamp || "$(cat .jars/.stamp)" != "$jars_want" ]]; then
  echo "setup: resolving the Delta Lake JARs from Maven Central into .jars/"
  staging="$(mktemp -d "$root/.jars-staging.XXXXXX")"
  mvn --batch-mode --quiet -f deps/delta-jars.xml dependency:copy-dependencies \
    -DincludeGroupIds=io.delta \
    -DexcludeArtifactIds=delta-kernel-api,delta-kernel-defaults,delta-kernel-unitycatalog \
    -DoutputDirectory="$staging"
  ls "$staging"/*.jar >/dev/null
  echo "$jars_want" > "$staging/.stamp"
  rm -rf .jars.previous
  [[ -d .jars ]] && mv .jars .jars.previous
  mv "$staging" .jars
  rm -rf .jars.previous
  echo "setup: Delta JARs: $(cd .jars && ls *.jar | tr '\n' ' ')"
fi

# Airflow in a venv of its own: its Spark provider brings pyspark-client 4.2 (and a `pyspark`
# package), which must not meet the jobs' pinned pyspark. Its own stamp, like the others.
if $with_airflow; then
  airflow_want="$(sha256sum deps/airflow-requirements.txt | cut -c1-16)"
  if [[ ! -f .venv-airflow/.setup-stamp || "$(cat .venv-airflow/.setup-stamp)" != "$airflow_want" ]]; then
    echo "setup: installing Airflow into .venv-airflow (first time: about 1.5 minutes)"
    [[ -x .venv-airflow/bin/python ]] || "$python_bin" -m venv .venv-airflow
    .venv-airflow/bin/python -m pip install --quiet --upgrade pip
    .venv-airflow/bin/python -m pip install --quiet -r deps/airflow-requirements.txt
    echo "$airflow_want" > .venv-airflow/.setup-stamp
  fi
fi
