#!/usr/bin/env bash
# scripts/minicluster.sh start|stop|status: a Hadoop mini cluster on loopback for tests and demos.
# HDFS (NameNode + DataNode) and YARN (ResourceManager + NodeManager) in one JVM, from Maven
# Central's hadoop-client-minicluster (scripts/setup.sh --yarn resolves it into .hadoop/).
# `start` waits until both serve and prints the HADOOP_CONF_DIR they are described in.
#
# Environment (all optional):
#   PM_MINICLUSTER_HOME       state, logs and conf/ (default: .minicluster/ in the checkout)
#   PM_MINICLUSTER_NN_PORT    the NameNode's port (default 0: any free port)
#   PM_MINICLUSTER_NM_MEMORY  MB the NodeManager offers to containers (default 4096)
#   PM_MINICLUSTER_NM_VCORES  vcores it offers (default 4; YARN counts them, it does not pin)
#   PM_MINICLUSTER_HEAP       the cluster JVM's -Xmx (default 768m)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
home="${PM_MINICLUSTER_HOME:-$root/.minicluster}"
pid_file="$home/pid"
conf_dir="$home/conf"

running() { [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

start() {
  if running; then
    echo "minicluster: already running (pid $(cat "$pid_file")); HADOOP_CONF_DIR=$conf_dir"
    return 0
  fi
  bash "$root/scripts/setup.sh" --yarn
  local jars="$root/.venv/lib/python3.11/site-packages/pyspark/jars"
  # pyspark's slf4j 2 + log4j 2 JARs; no log4j2 config, so only errors reach the log.
  local logging
  logging="$(ls "$jars"/slf4j-api-*.jar "$jars"/log4j-api-*.jar "$jars"/log4j-core-*.jar \
    "$jars"/log4j-1.2-api-*.jar "$jars"/log4j-slf4j2-impl-*.jar | tr '\n' ':')"
  rm -rf "$home"
  mkdir -p "$home"
  local java_home
  java_home="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
  local started=$SECONDS
  # The NodeManager starts containers with $JAVA_HOME/bin/java; it runs in its own session so
  # that `stop` can signal it alone. MiniYARNCluster keeps its dirs under ./target: cd home.
  (
    cd "$home"
    JAVA_HOME="$java_home" exec setsid java "-Xmx${PM_MINICLUSTER_HEAP:-768m}" \
      --add-opens=java.base/java.lang=ALL-UNNAMED \
      -cp "$root/.hadoop/classes:$root/.hadoop/jars/*:$logging" MiniHadoop \
      "$home" "$conf_dir" "${PM_MINICLUSTER_NN_PORT:-0}" \
      "${PM_MINICLUSTER_NM_MEMORY:-4096}" "${PM_MINICLUSTER_NM_VCORES:-4}" \
      > "$home/minicluster.log" 2>&1 < /dev/null &
    echo $! > "$pid_file"
  )
  until [[ -f "$conf_dir/ready" ]]; do
    if ! running; then
      echo "minicluster: the cluster JVM exited while starting; see $home/minicluster.log" >&2
      tail -20 "$home/minicluster.log" >&2
      exit 1
    fi
    if (( SECONDS - started > 180 )); then
      echo "minicluster: not ready after 180 s; see $home/minicluster.log" >&2
      stop
      exit 1
    fi
    sleep 0.5
  done
  echo "minicluster: ready in $((SECONDS - started)) s: $(cat "$conf_dir/ready")"
  echo "export HADOOP_CONF_DIR=$conf_dir"
}

stop() {
  if ! running; then
    echo "minicluster: not running"
    rm -f "$pid_file"
    return 0
  fi
  local pid started=$SECONDS
  pid="$(cat "$pid_file")"
  # SIGTERM runs the JVM's shutdown hook: YARN stops its containers, then HDFS shuts down.
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - started > 60 )); then
      echo "minicluster: still up after 60 s, killing pid $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$pid_file" "$conf_dir/ready"
  echo "minicluster: stopped in $((SECONDS - started)) s"
}

status() {
  if running; then
    echo "minicluster: running (pid $(cat "$pid_file"), RSS $(ps -o rss= -p "$(cat "$pid_file")" | tr -d ' ') KB): $(cat "$conf_dir/ready" 2>/dev/null || echo starting)"
    echo "export HADOOP_CONF_DIR=$conf_dir"
  else
    echo "minicluster: not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
