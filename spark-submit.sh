#!/usr/bin/env bash
# ./spark-submit.sh <job> [--env local|yarn|...] [--run-date YYYY-MM-DD] [--set key=value]... [job options]
# Runs jobs/<job>.py through the pinned pyspark's spark-submit, shipping the package (--py-files),
# conf/ (--archives, on clusters) and the Delta JARs (--jars). Exits with the job's exit code.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 <job> [--env ENV] [--run-date YYYY-MM-DD] [--set key=value]... [options]" >&2
  echo "jobs: $(cd "$root/jobs" && ls *.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
job="$1"; shift
if [[ ! -f "$root/jobs/$job.py" ]]; then
  echo "$0: no job '$job' (jobs: $(cd "$root/jobs" && ls *.py | sed 's/\.py$//' | tr '\n' ' '))" >&2
  exit 2
fi

bash "$root/scripts/setup.sh"
python="$root/.venv/bin/python"
export PM_CONF_DIR="${PM_CONF_DIR:-$root/conf}"
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$python}"

submit_args="$("$python" -m precision_marketing.submit "$job" "$@")" || exit 2
mapfile -t args <<< "$submit_args"

if [[ "${args[0]}" != --master || "${args[1]}" != yarn ]]; then
  exec "$root/.venv/bin/spark-submit" "${args[@]}" "$root/jobs/$job.py" "$@"
fi

# On YARN the salts reach the driver (cluster mode) and executors through Spark conf
# (spark.yarn.appMasterEnv.*, spark.executorEnv.*) read from a private properties file, never
# the command line; the file is removed when spark-submit ends.
secrets_file="$(mktemp)"  # mode 0600
client_log="$(mktemp)"
trap 'rm -f "$secrets_file" "$client_log"' EXIT
"$python" -m precision_marketing.submit --secrets "$job" "$@" > "$secrets_file" || exit 2
properties=()
[[ -s "$secrets_file" ]] && properties=(--properties-file "$secrets_file")
"$root/.venv/bin/spark-submit" "${properties[@]}" "${args[@]}" "$root/jobs/$job.py" "$@" \
  2> >(tee "$client_log" >&2) &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
wait "$child" || status=$?
# A trapped signal ends the first wait early: wait for spark-submit itself to finish.
if kill -0 "$child" 2>/dev/null; then wait "$child" || status=$?; fi
# In cluster mode spark-submit exits 1 for any failed application; the job's own exit code
# (3: data-quality stop, 4: missing input) is in YARN's diagnostics for the last attempt.
if (( status == 1 )); then
  code="$(grep -oE 'User application exited with status [0-9]+' "$client_log" | tail -1 \
    | grep -oE '[0-9]+$' || true)"
  [[ -n "$code" ]] && status="$code"
fi
exit "$status"
