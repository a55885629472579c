#!/usr/bin/env bash
# Sets up a fresh checkout: a Python 3.11 venv with the pinned packages (.venv/) and the Delta
# Lake JARs resolved from Maven Central (.jars/). Idempotent and quick once done.
# --airflow also installs Airflow into .venv-airflow/ (the DAG test needs it; the jobs do not).
# --yarn also resolves Hadoop's mini cluster into .hadoop/ (scripts/minicluster.sh runs it) and
# packs .venv into build/pyenv.tar.gz, the Python environment jobs on YARN ship with --archives.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
with_airflow=false
with_yarn=false
for flag in "$@"; do
  case "$flag" in
    --airflow) with_airflow=true ;;
    --yarn) with_yarn=true ;;
    *) echo "setup: unknown option $flag (known: --airflow --yarn)" >&2; exit 2 ;;
  esac
done

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
"$python_bin" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "setup: Python 3.11 is required (found $("$python_bin" --version 2>&1))" >&2; exit 1; }
command -v java >/dev/null || { echo "setup: Java 17 is required (java not on PATH)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup: Maven is required to resolve the Delta JARs" >&2; exit 1; }

# One setup at a time: runs started together on a stale checkout (./spark-submit.sh sets up
# first) would otherwise run pip on the same venv at once; the second waits, then finds the
# stamps fresh.
exec 9>"$root/.setup.lock"
flock 9

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

# Hadoop's mini cluster (HDFS + YARN in one JVM) for the Hadoop version pyspark bundles, and the
# small Java main that starts it, compiled against those JARs. Swapped in whole, like .jars/.
if $with_yarn; then
  hadoop_want="$(cat deps/hadoop-minicluster.xml scripts/minicluster/MiniHadoop.java | sha256sum | cut -c1-16)"
  if [[ ! -f .hadoop/.stamp || "$(cat .hadoop/.stamp)" != "$hadoop_want" ]]; then
    echo "setup: resolving Hadoop's mini cluster from Maven Central into .hadoop/"
    command -v javac >/dev/null || { echo "setup: javac (a JDK 17) is required for --yarn" >&2; exit 1; }
    staging="$(mktemp -d "$root/.hadoop-staging.XXXXXX")"
    # slf4j 1.7 is left out: pyspark's slf4j 2 and log4j 2 JARs log for the cluster.
    mvn --batch-mode --quiet -f deps/hadoop-minicluster.xml dependency:copy-dependencies \
      -DexcludeArtifactIds=slf4j-api -DoutputDirectory="$staging/jars"
    javac -d "$staging/classes" -cp "$staging/jars/*" scripts/minicluster/MiniHadoop.java
    echo "$hadoop_want" > "$staging/.stamp"
    rm -rf .hadoop.previous
    [[ -d .hadoop ]] && mv .hadoop .hadoop.previous
    mv "$staging" .hadoop
    rm -rf .hadoop.previous
  fi

  # The jobs' Python for YARN containers: .venv as a tar.gz, without pyspark's JARs (Spark
  # ships its own, see spark.yarn.jars), without the editable install's .pth (it points at
  # this checkout; the package travels as build/precision_marketing-*.zip via --py-files) and
  # without what only development uses (scripts/dev_only_files.py: test runners, type checker,
  # linters, the notebook kernel: 238 MB packed, 387 MB with them).
  # venv-pack refuses editable venvs, hence plain tar: bin/python links to the system
  # python3.11, so nodes need Python 3.11 at the same path (true for this machine).
  mkdir -p build
  .venv/bin/python scripts/dev_only_files.py .venv > build/pyenv.exclude
  pyenv_want="$(cat .venv/.setup-stamp) $(sha256sum < build/pyenv.exclude | cut -c1-16)"
  if [[ ! -f build/pyenv.stamp || "$(cat build/pyenv.stamp)" != "$pyenv_want" || ! -f build/pyenv.tar.gz ]]; then
    echo "setup: packing .venv into build/pyenv.tar.gz (about a minute)"
    tar -C .venv -c -I 'gzip -1' -f build/pyenv.tar.gz.tmp -X build/pyenv.exclude \
      --exclude=./lib/python3.11/site-packages/pyspark/jars \
      --exclude='./lib/python3.11/site-packages/__editable__*' --exclude=./.setup-stamp .
    mv build/pyenv.tar.gz.tmp build/pyenv.tar.gz
    echo "$pyenv_want" > build/pyenv.stamp
  fi
fi
