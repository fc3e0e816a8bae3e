#!/usr/bin/env bash
# A Spark standalone cluster on this machine: one Master and N Workers, bound to 127.0.0.1.
#
#   scripts/spark_cluster.sh start|stop|status
#
# It runs the Spark that the pyspark package ships (spark-class ...Master / ...Worker), with every
# port and web UI on 127.0.0.1, and keeps logs and PID files in $SPARK_CLUSTER_DIR. `stop` ends only
# the processes whose PID files it wrote. Run the job there with
#   ./run_pipeline.sh --master spark://127.0.0.1:7077
# Settings (environment):
#   SPARK_CLUSTER_DIR          logs, PID files, worker folders (default output/cluster)
#   SPARK_MASTER_PORT          7077      SPARK_MASTER_WEBUI_PORT   8080
#   SPARK_WORKER_WEBUI_PORT    8081 (worker i gets +i-1; 0 = any free port)
#   SPARK_WORKERS              2         SPARK_WORKER_CORES 1     SPARK_WORKER_MEMORY 1g
#   PYSPARK_PYTHON             the Python of the executors (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

dir="${SPARK_CLUSTER_DIR:-output/cluster}"
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
master_port="${SPARK_MASTER_PORT:-7077}"
master_ui="${SPARK_MASTER_WEBUI_PORT:-8080}"
worker_ui="${SPARK_WORKER_WEBUI_PORT:-8081}"
workers="${SPARK_WORKERS:-2}"
cores="${SPARK_WORKER_CORES:-1}"
memory="${SPARK_WORKER_MEMORY:-1g}"
python="${PYSPARK_PYTHON:-$root/.venv/bin/python}"
master_url="spark://127.0.0.1:$master_port"

for n in "$master_port" "$master_ui" "$worker_ui" "$workers" "$cores"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "error: ports, SPARK_WORKERS and SPARK_WORKER_CORES must be numbers, got '$n'" >&2; exit 2; }
done

spark_home() {
  "$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null || {
    echo "error: no pyspark in $python; run 'make install' or set PYSPARK_PYTHON to a Python that has it" >&2
    exit 1
  }
}

alive() {  # alive NAME: the PID in NAME.pid runs, and is a JVM this script started
  local f="$dir/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa "org.apache.spark.deploy" "/proc/$pid/cmdline" 2>/dev/null
}

names() { echo master; for i in $(seq 1 "$workers"); do echo "worker-$i"; done; }

launch() {  # launch NAME CLASS ARGS...: one daemon in its own session, PID file and log in $dir
  local name=$1; shift
  if alive "$name"; then echo "cluster: $name already running (pid $(cat "$dir/$name.pid"))"; return; fi
  setsid "$SPARK_HOME/bin/spark-class" "$@" >"$dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$dir/$name.pid"
}

wait_for() {  # wait_for NAME PATTERN SECONDS: the daemon's log says PATTERN
  local name=$1 pattern=$2 limit=$3 i
  for i in $(seq 1 $((limit * 5))); do
    grep -q "$pattern" "$dir/$name.log" 2>/dev/null && return 0
    alive "$name" || { echo "error: $name exited; the end of $dir/$name.log:" >&2; tail -n 15 "$dir/$name.log" >&2; return 1; }
    sleep 0.2
  done
  echo "error: $name did not log '$pattern' within ${limit}s; see $dir/$name.log" >&2
  return 1
}

start() {
  mkdir -p "$dir"
  SPARK_HOME=$(spark_home)
  export SPARK_HOME PYSPARK_PYTHON="$python"
  export SPARK_LOCAL_IP=127.0.0.1 SPARK_PUBLIC_DNS=127.0.0.1  # RPC, block manager and web UIs on loopback
  export SPARK_LOG_DIR="$dir" SPARK_NO_DAEMONIZE=1
  export SPARK_DAEMON_JAVA_OPTS="-Dspark.ui.host=127.0.0.1 -Dspark.master.ui.port=$master_ui -Dspark.master.rest.enabled=false ${SPARK_DAEMON_JAVA_OPTS:-}"
  launch master org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$master_port" --webui-port "$master_ui"
  wait_for master "Starting Spark master at" 60
  wait_for master "I have been elected leader" 60
  for i in $(seq 1 "$workers"); do
    local ui=0
    [ "$worker_ui" -ne 0 ] && ui=$((worker_ui + i - 1))
    mkdir -p "$dir/worker-$i"
    launch "worker-$i" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --port 0 --webui-port "$ui" \
      --cores "$cores" --memory "$memory" --work-dir "$dir/worker-$i" "$master_url"
  done
  for i in $(seq 1 "$workers"); do wait_for "worker-$i" "Successfully registered with master" 90; done
  echo "cluster: master $master_url (web UI http://127.0.0.1:$master_ui), $workers worker(s) of $cores core(s)" \
    "and $memory; logs in $dir"
}

stop() {
  local name pid stopped=0
  for name in $(names | tac); do
    if alive "$name"; then
      pid=$(cat "$dir/$name.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      stopped=$((stopped + 1))
    fi
    rm -f "$dir/$name.pid"
  done
  echo "cluster: stopped $stopped process(es)"
}

status() {
  local name up=0
  for name in $(names); do
    if alive "$name"; then
      echo "$name: running (pid $(cat "$dir/$name.pid"), log $dir/$name.log)"; up=$((up + 1))
    else
      echo "$name: not running"
    fi
  done
  [ "$up" -gt 0 ] && echo "master: $master_url"
  [ "$up" -eq $((workers + 1)) ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
