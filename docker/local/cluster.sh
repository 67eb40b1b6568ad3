#!/usr/bin/env bash
# A standalone Spark cluster on loopback from pyspark's own distribution (its jars and bin/spark-class): one
# master on 127.0.0.1:<services.spark_master_port> and one worker with <services.spark_worker_cores> cores and
# <services.spark_worker_memory>; logs, pid files and the worker's work dir (executor logs, shipped files)
# under <state_dir>/spark-cluster. Jobs use it with RECSYS__SPARK__MASTER=spark://127.0.0.1:<port>.
# Usage: docker/local/cluster.sh {up|down|status|clean}
#   clean: also stops master/worker daemons of this project whose pid files are gone (a killed test run);
#          `make down` runs it.                Env: SPARK_DAEMON_MEMORY (heap of each daemon, default 512m)
set -euo pipefail
SERVICE=spark-cluster
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="$CFG_SERVICES_SPARK_MASTER_PORT"
UI_PORT="$CFG_SERVICES_SPARK_MASTER_UI_PORT"
WORKER_UI_PORT="$CFG_SERVICES_SPARK_WORKER_UI_PORT"
DIR="$STATE_DIR/spark-cluster"
MASTER_URL="spark://127.0.0.1:$PORT"
HINT="RECSYS__SERVICES__SPARK_MASTER_PORT=<port> (UIs: RECSYS__SERVICES__SPARK_MASTER_UI_PORT, ..._SPARK_WORKER_UI_PORT)"
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker
# Every daemon carries this project's root in its command line, so `clean` finds its own and nobody else's.
MARK="-Drecsys.cluster.root=$ROOT"

spark_home() {
  [[ -n "${SPARK_HOME:-}" ]] && { printf '%s\n' "$SPARK_HOME"; return; }
  "$PYTHON" -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent)'
}

master_pid() { our_pid "$DIR/master.pid" "$MASTER_CLASS"; }
worker_pid() { our_pid "$DIR/worker.pid" "$WORKER_CLASS"; }

# start NAME CLASS ARGS...: the daemon in the background (spark-class execs java, so $! is the JVM). The
# worker deletes the folders of finished applications after spark.worker.cleanup.appDataTtl (7 days).
start() {
  local name=$1; shift
  SPARK_HOME="$HOME_DIR" SPARK_LOCAL_IP=127.0.0.1 \
    SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true ${SPARK_WORKER_OPTS:-}" \
    SPARK_DAEMON_JAVA_OPTS="$MARK ${SPARK_DAEMON_JAVA_OPTS:-}" SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}" \
    nohup "$HOME_DIR/bin/spark-class" "$@" >>"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# wait_registered TIMEOUT: until the master log says the worker registered (it can then take executors).
wait_registered() {
  local deadline=$((SECONDS + $1))
  until grep -q "Registering worker 127.0.0.1" "$DIR/master.log" 2>/dev/null; do
    worker_pid >/dev/null || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

up() {
  local pid
  if pid="$(master_pid)" && worker_pid >/dev/null; then
    log "already running (master pid $pid) at $MASTER_URL"; return 0
  fi
  down >/dev/null  # half a cluster (one daemon died): start both afresh
  for p in "$PORT" "$UI_PORT" "$WORKER_UI_PORT"; do port_in_use "$p" && port_taken_error "$p" "$HINT"; done
  command -v java >/dev/null || die "java not found; run 'make setup'"
  HOME_DIR="$(spark_home)" || die "pyspark not importable by $PYTHON; run 'make setup'"
  mkdir -p "$DIR/work"
  : >"$DIR/master.log"; : >"$DIR/worker.log"
  start master "$MASTER_CLASS" --host 127.0.0.1 --port "$PORT" --webui-port "$UI_PORT"
  wait_for_port "$PORT" 60 "$(cat "$DIR/master.pid")" || { down; die "master not listening on $PORT; see $DIR/master.log"; }
  start worker "$WORKER_CLASS" --host 127.0.0.1 --webui-port "$WORKER_UI_PORT" \
    --cores "$CFG_SERVICES_SPARK_WORKER_CORES" --memory "$CFG_SERVICES_SPARK_WORKER_MEMORY" \
    --work-dir "$DIR/work" "$MASTER_URL"
  wait_registered 60 || { down; die "the worker did not register with the master; see $DIR/worker.log"; }
  log "started: master $MASTER_URL (pid $(master_pid), UI http://127.0.0.1:$UI_PORT), worker" \
      "$CFG_SERVICES_SPARK_WORKER_CORES cores / $CFG_SERVICES_SPARK_WORKER_MEMORY (pid $(worker_pid)); logs in $DIR"
}

# stop NAME: the daemon of this state dir, TERM then KILL (a worker's TERM also ends its executors).
stop() {
  local name=$1 pid
  pid="$("${name}_pid")" || { rm -f "$DIR/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  wait_pid_gone "$pid" 20 || { log "$name still alive after 20s, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$DIR/$name.pid"
  log "stopped $name (pid $pid)"
}

down() {
  stop worker
  stop master
}

# clean: down, then any master/worker JVM whose command line carries this project's mark (by pid).
clean() {
  local pid
  down
  for pid in $(pgrep -f -- "$MARK .*org\.apache\.spark\.deploy\.(master\.Master|worker\.Worker)" || true); do
    log "stopping a left-over daemon of this project (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
  done
}

status() {
  local m w
  m="$(master_pid)" || m=""
  w="$(worker_pid)" || w=""
  if [[ -n "$m" && -n "$w" ]]; then log "running: master $MASTER_URL (pid $m), worker (pid $w)"; return 0; fi
  log "not running${m:+ (master pid $m without a worker)}${w:+ (worker pid $w without a master)}"
  return 1
}

case "${1:-}" in
  up | down | status | clean) "$1" ;;
  *) echo "usage: $0 {up|down|status|clean}" >&2; exit 2 ;;
esac
