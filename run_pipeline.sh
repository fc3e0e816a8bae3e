#!/usr/bin/env bash
# Run the whole pipeline: model service -> relay -> Spark job -> parquet.
#
#   ./run_pipeline.sh [KEYWORD ...] [--limit N] [--file PATH] [--rate TWEETS_PER_S] [--loop] [--start-over]
#   ./run_pipeline.sh --source twitter KEYWORD ... [--mode stream|search] [--lang en] [--no-retweets] [--limit N]
#   common: [--transport spool|socket] [--start-over] [--master spark://HOST:PORT] [--replicas N]
#           [--dashboard] [--trends-time created_at|relayed_at]
#
# With no arguments it replays the bundled sample tweets through the bundled model and stops
# when every tweet is in the parquet. Run again, it resumes where it stopped (nothing twice);
# --start-over empties the spool, the checkpoint and the outputs first. With --source twitter it
# relays live tweets (bearer token from TWITTER_BEARER_TOKEN) until Ctrl-C or --limit. A service
# or relay that exits unexpectedly is restarted. Ctrl-C stops all parts within 10 s (SIGKILL after 8 s).
# --master runs the job on a Spark cluster (scripts/spark_cluster.sh start: one on this machine);
# --replicas N starts N model services on ports service.port, +1, ... and the job spreads over them.
# --dashboard serves the live dashboard on 127.0.0.1 (it stays up after a finite replay until Ctrl-C).
# Settings come from conf/pipeline.toml (ports, paths, trigger, band); see the README.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

keywords=() limit="" file="" rate="" loop="" source="replay" mode="" lang="" no_retweets="" transport="" start_over="" master="" replicas=1
dashboard="" trends_time=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dashboard) dashboard=1; shift ;;
    --trends-time) trends_time="${2:?--trends-time needs created_at or relayed_at}"; shift 2 ;;
    --transport) transport="${2:?--transport needs spool or socket}"; shift 2 ;;
    --start-over) start_over=1; shift ;;
    --master) master="${2:?--master needs a Spark master URL, e.g. spark://127.0.0.1:7077}"; shift 2 ;;
    --replicas) replicas="${2:?--replicas needs a number}"; shift 2 ;;
    --source) source="${2:?--source needs replay or twitter}"; shift 2 ;;
    --mode) mode="${2:?--mode needs stream or search}"; shift 2 ;;
    --lang) lang="${2:?--lang needs a language code}"; shift 2 ;;
    --no-retweets) no_retweets=1; shift ;;
    --limit) limit="${2:?--limit needs a number}"; shift 2 ;;
    --file) file="${2:?--file needs a path}"; shift 2 ;;
    --rate) rate="${2:?--rate needs a number}"; shift 2 ;;
    --loop) loop=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) keywords+=("$1"); shift ;;
  esac
done
if [ -n "$limit" ] && ! [[ "$limit" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: --limit must be a positive whole number, got '$limit'" >&2; exit 2
fi
if ! [[ "$replicas" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: --replicas must be a positive whole number, got '$replicas'" >&2; exit 2
fi
case "$source" in
  replay) ;;
  twitter)
    if [ ${#keywords[@]} -eq 0 ]; then
      echo "error: --source twitter needs at least one KEYWORD to track" >&2; exit 2
    fi
    if [ -z "${TWITTER_BEARER_TOKEN:-}" ]; then
      echo "error: --source twitter needs a bearer token: export TWITTER_BEARER_TOKEN=..." >&2; exit 2
    fi ;;
  *) echo "error: --source must be replay or twitter, got '$source'" >&2; exit 2 ;;
esac

make --no-print-directory --quiet install
PY=.venv/bin/python
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

{ read -r service_url; read -r output; read -r conf_transport; read -r service_host; read -r service_port;
  read -r own_url; } < <(
  $PY -m sentiment.show_config service_url stream.output relay.transport service.host service.port stream.service_url)
if [ "$replicas" -gt 1 ] && [ -n "$own_url" ]; then
  echo "error: --replicas starts services on service.port + i; leave stream.service_url empty (it is '$own_url')" >&2
  exit 2
fi
# Replica i (from 0) listens on service.port + i; the job gets all their URLs.
service_urls=("$service_url")
if [ "$replicas" -gt 1 ]; then
  service_urls=()
  for i in $(seq 0 $((replicas - 1))); do service_urls+=("http://$service_host:$((service_port + i))"); done
  service_url=$(IFS=,; echo "${service_urls[*]}")
fi
transport="${transport:-$conf_transport}"
case "$transport" in
  spool|socket) ;;
  *) echo "error: --transport must be spool or socket, got '$transport'" >&2; exit 2 ;;
esac
mkdir -p output/logs

relay_args=("$source" --transport "$transport")
if [ -n "$start_over" ] && [ "$transport" = spool ]; then relay_args+=(--start-over); fi
if [ "$source" = replay ]; then
  [ -n "$file" ] && relay_args+=(--file "$file")
  [ -n "$rate" ] && relay_args+=(--rate "$rate")
  [ -n "$loop" ] && relay_args+=(--loop)
  [ -n "$limit" ] && relay_args+=(--limit "$limit")
else
  [ -n "$mode" ] && relay_args+=(--mode "$mode")
  [ -n "$lang" ] && relay_args+=(--lang "$lang")
  [ -n "$no_retweets" ] && relay_args+=(--no-retweets)
fi
for k in ${keywords[@]+"${keywords[@]}"}; do relay_args+=(--track "$k"); done

job_args=(--transport "$transport" --service-url "$service_url")
[ -n "$master" ] && job_args+=(--master "$master")
[ -n "$trends_time" ] && job_args+=(--trends-time "$trends_time")
[ -n "$start_over" ] && job_args+=(--start-over)
for k in ${keywords[@]+"${keywords[@]}"}; do job_args+=(--track "$k"); done
if [ "$source" = twitter ]; then
  [ -n "$limit" ] && job_args+=(--stop-after "$limit")
elif [ "$transport" = spool ]; then
  # A finite replay: the relay marks the spool complete at its end; the job stops once all of it is written.
  if [ -z "$loop" ] || [ -n "$limit" ]; then job_args+=(--until-done); fi
elif [ -z "$loop" ] || [ -n "$limit" ]; then
  total=$($PY -m ingest "${relay_args[@]}" --count)
  if [ "$total" -eq 0 ]; then
    echo "error: no tweet to relay (keywords: ${keywords[*]:-none})" >&2; exit 1
  fi
  job_args+=(--stop-after "$total")
  echo "pipeline: relaying $total tweet(s)${keywords:+ matching ${keywords[*]}}"
fi

# Each part runs in a process group of its own (setsid), with what it starts (the job's JVM, the
# service's workers). Only processes started here are ever signalled: a part's PID is kept with its
# start time (/proc/PID/stat), which a reused PID would not have; and a process group is signalled
# only while it has members, which the kernel never gives a new process's PID.
declare -A started_at=()
stat_fields() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; echo "${s##*) }"; }
track() {  # track PID: a part just started here
  local f; f=($(stat_fields "$1")) || return 0
  started_at[$1]=${f[19]}
}
ours() {  # ours PID: still running, and still the part started here
  local f; f=($(stat_fields "$1")) || return 1
  [ "${f[0]}" != Z ] && [ "${f[19]}" = "${started_at[$1]:-}" ]
}
group_alive() { kill -0 -- "-$1" 2>/dev/null; }  # group_alive PID: the part's process group has members
reaped() { unset "started_at[$1]"; }  # its PID may be reused from now on: never signal it again
pause() { sleep "$1" & wait $! 2>/dev/null; }  # a sleep that SIGTERM and Ctrl-C interrupt at once
stop_grace=8  # seconds the parts get to stop after SIGTERM before SIGKILL
cleanup() {
  trap - INT TERM EXIT
  local pid deadline=$(( $(date +%s) + stop_grace )) left
  for pid in "${!started_at[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null; done
  while :; do
    left=0
    for pid in "${!started_at[@]}"; do group_alive "$pid" && left=1; done
    [ "$left" -eq 0 ] || [ "$(date +%s)" -ge "$deadline" ] && break
    sleep 0.2
  done
  for pid in "${!started_at[@]}"; do
    if group_alive "$pid"; then
      echo "pipeline: process group $pid did not stop within ${stop_grace}s of SIGTERM; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null
    fi
  done
  for pid in "${!started_at[@]}"; do wait "$pid" 2>/dev/null; reaped "$pid"; done
  return 0
}
trap 'echo; echo "pipeline: stopping"; cleanup; exit 130' INT TERM
trap cleanup EXIT

started=$(date +%s)
# Each part's output goes through a writer that rotates its log past logs.max_bytes (conf/pipeline.toml),
# keeping logs.backups older files (<log>.1, .2, ...); the writer ends with the part's output.
log_to() { exec $PY -m sentiment.log_writer "$1"; }
service_pids=()
service_log() { if [ "$1" -eq 0 ]; then echo output/logs/model_api.log; else echo "output/logs/model_api-$1.log"; fi; }
start_service() {  # start_service I: replica I on service.port + I
  TWEETSENT_SERVICE__PORT=$((service_port + $1)) setsid $PY -m model_api > >(log_to "$(service_log "$1")") 2>&1 &
  service_pids[$1]=$!
  track $!
}
healthy() {  # healthy URL (stream.health sends the bearer token, when one is set)
  $PY -m stream.health "$1" --timeout 2 2>/dev/null
}
start_relay() {
  # Restarted, it resumes: --start-over only on the first start.
  local args=() a
  for a in "${relay_args[@]}"; do
    [ "${1:-}" = again ] && [ "$a" = --start-over ] && continue
    args+=("$a")
  done
  setsid $PY -m ingest "${args[@]}" > >(log_to output/logs/relay.log) 2>&1 &
  relay_pid=$!
  track "$relay_pid"
}
: > output/logs/relay.log
for i in "${!service_urls[@]}"; do
  : > "$(service_log "$i")"
  echo "pipeline: starting the model service at ${service_urls[$i]} (log: $(service_log "$i"))"
  start_service "$i"
done

# The relay writes to the spool (or holds tweets until the job connects), and the job starts Spark
# while the service loads its model; the job waits for the service before it scores.
echo "pipeline: starting the relay, transport $transport (log: output/logs/relay.log)"
start_relay
# Ready when it says so. (Not by connecting to a socket relay: it would send that probe tweets.)
for _ in $(seq 1 150); do
  grep -Eq "relay listening on|relay: writing|nothing to do" output/logs/relay.log 2>/dev/null && break
  ours "$relay_pid" || { echo "error: the relay exited:" >&2; tail -n 5 output/logs/relay.log >&2; exit 1; }
  sleep 0.2
done

if [ -n "$dashboard" ]; then
  dashboard_port=$($PY -m sentiment.show_config trends.dashboard_port)
  # The configured folders (stream.output, trends.output, trends.alerts), as the job writes them.
  : > output/logs/dashboard.log
  setsid $PY -m dashboard --port "$dashboard_port" > >(log_to output/logs/dashboard.log) 2>&1 &
  dashboard_pid=$!
  track "$dashboard_pid"
  echo "pipeline: dashboard at http://127.0.0.1:$dashboard_port (log: output/logs/dashboard.log)"
fi

relay_done="" relay_status=0 relay_restarts=0 service_restarts=0
# Restart each service that exited, at most $1 times in all (few while they start: a bad setting would loop).
check_services() {
  local i code
  for i in "${!service_pids[@]}"; do
    if ! ours "${service_pids[$i]}"; then
      wait "${service_pids[$i]}"; code=$?; reaped "${service_pids[$i]}"
      if [ "$service_restarts" -ge "$1" ]; then
        echo "error: the model service ${service_urls[$i]} exited (status $code); its log:" >&2
        tail -n 20 "$(service_log "$i")" >&2
        exit 1
      fi
      service_restarts=$((service_restarts + 1))
      echo "pipeline: the model service ${service_urls[$i]} exited (status $code); restarting it" \
        "(restart $service_restarts)" >&2
      tail -n 3 "$(service_log "$i")" >&2
      pause $(( service_restarts < 5 ? service_restarts : 5 ))
      start_service "$i"
    fi
  done
}
check_relay() {
  if [ -z "$relay_done" ] && ! ours "$relay_pid"; then
    wait "$relay_pid"; relay_status=$?; reaped "$relay_pid"
    if [ "$relay_status" -eq 0 ]; then
      relay_done=1
    elif [ "$transport" = spool ] && [ "$relay_status" -ne 2 ] && [ "$relay_restarts" -lt 10 ]; then
      # Status 2 is a usage error (or another relay on the spool): restarting cannot fix it. Status 3
      # is a spool that refused a write (a full disk): the relay is restarted with longer pauses.
      relay_restarts=$((relay_restarts + 1))
      echo "pipeline: the relay exited (status $relay_status); restarting it to resume (restart $relay_restarts)" >&2
      tail -n 3 output/logs/relay.log >&2
      if [ "$relay_status" -eq 3 ]; then pause $(( relay_restarts * 3 < 30 ? relay_restarts * 3 : 30 )); else pause 1; fi
      start_relay again
    else
      relay_done=1
      echo "error: the relay stopped with exit status $relay_status:" >&2
      tail -n 5 output/logs/relay.log >&2
      ours "$job_pid" && kill -TERM "$job_pid" 2>/dev/null
    fi
  fi
}

echo "pipeline: starting the Spark job"
set +e
setsid $PY -m stream --wait-for-service 300 ${job_args[@]+"${job_args[@]}"} &
job_pid=$!
track "$job_pid"

# The first start compiles the int8 engine (Inductor caches it for later starts): allow 5 minutes.
for i in "${!service_urls[@]}"; do
  while (( $(date +%s) - started < 300 )); do
    check_services 3
    check_relay
    healthy "${service_urls[$i]}" && break
    sleep 0.5
  done
  healthy "${service_urls[$i]}" || {
    echo "error: the model service did not become healthy in 300 s; see $(service_log "$i")" >&2; exit 1; }
  echo "pipeline: model service ${service_urls[$i]} healthy after $(( $(date +%s) - started )) s"
done

# Supervise: a service or relay that exits unexpectedly is started again (the relay resumes where
# its spool ends); a socket relay cannot resume, so there its exit stops the job.
while ours "$job_pid"; do
  check_services 1000000
  check_relay
  sleep 0.5
done
wait "$job_pid"
status=$?
reaped "$job_pid"
set -e
if [ -n "$relay_done" ] && [ "${relay_status:-0}" -ne 0 ]; then
  exit 1
fi
tail -n 1 output/logs/relay.log | grep '^relay:' || true

$PY -m stream.summary
if [ -n "$dashboard" ] && ours "$dashboard_pid"; then
  echo "pipeline: the dashboard stays at http://127.0.0.1:$dashboard_port; Ctrl-C to stop it"
  wait "$dashboard_pid" || true
fi
exit "$status"
