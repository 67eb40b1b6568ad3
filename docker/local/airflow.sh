#!/usr/bin/env bash
# Airflow in its own virtual environment (.venv-airflow), pointed at the project's spark-submit.
#   airflow.sh init                  migrate the metadata DB (SQLite) once
#   airflow.sh test [RUN_DATE [ARGS...]]  `airflow dags test recsys_batch` (runs the DAG in-process; ARGS
#                                    go to it, e.g. --mark-success-pattern maintain)
#   airflow.sh up | down | status    Airflow standalone (UI/API on 127.0.0.1:<services.airflow_port>)
#   airflow.sh cli ARGS...           any airflow command in this environment
set -euo pipefail
SERVICE=airflow
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export AIRFLOW_HOME="$(abs_path "$CFG_AIRFLOW_HOME")"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$CFG_SERVICES_AIRFLOW_PORT"
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW_LOG_LEVEL:-WARNING}"
# The Spark master lives in the connection, not in the DAG.
export AIRFLOW_CONN_$(echo "$CFG_AIRFLOW_SPARK_CONN_ID" | tr '[:lower:]' '[:upper:]')="{\"conn_type\": \"spark\", \"host\": \"$CFG_SPARK_MASTER\"}"
# spark-submit and the project's package come from .venv; Airflow itself from .venv-airflow.
export PATH="$ROOT/.venv/bin:$ROOT/.venv-airflow/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export SPARK_HOME="$("$ROOT/.venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
mkdir -p "$AIRFLOW_HOME"
# The DAG ships this zip with --py-files; rebuild it so a run never uses code older than the tree.
"$PYTHON" -m recsys.spark.package >/dev/null
AIRFLOW="$ROOT/.venv-airflow/bin/airflow"
[ -x "$AIRFLOW" ] || die ".venv-airflow missing; run 'make setup'"
pidfile="$AIRFLOW_HOME/standalone.pid"

init() {
  if [ ! -f "$AIRFLOW_HOME/.migrated" ]; then
    log "migrating metadata DB in $AIRFLOW_HOME"
    "$AIRFLOW" db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/migrate.log"; die "db migrate failed"; }
    touch "$AIRFLOW_HOME/.migrated"
  fi
}

case "${1:-}" in
  init) init ;;
  test)
    init
    run_date="${2:-$(date -u +%F)}"
    log "dags test recsys_batch $run_date ${*:3}"
    "$AIRFLOW" dags test recsys_batch "$run_date" "${@:3}"
    ;;
  up)
    init
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then log "already running"; exit 0; fi
    port_in_use "$CFG_SERVICES_AIRFLOW_PORT" && die "port $CFG_SERVICES_AIRFLOW_PORT is taken"
    setsid "$AIRFLOW" standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 < /dev/null &
    echo $! >"$pidfile"
    wait_for_port "$CFG_SERVICES_AIRFLOW_PORT" 120 || die "did not start; see $AIRFLOW_HOME/standalone.log"
    log "UI on http://127.0.0.1:$CFG_SERVICES_AIRFLOW_PORT (user admin, password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
    ;;
  down)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true   # the whole session: standalone leaves children
      sleep 2; kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"; log "stopped"
    ;;
  status) [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && log "running" || { log "not running"; exit 1; } ;;
  cli) shift; init; "$AIRFLOW" "$@" ;;
  python) shift; init; "$(dirname "$AIRFLOW")/python" "$@" ;;  # Airflow's interpreter (DAG integrity checks)
  *) echo "usage: $0 {init|test [RUN_DATE]|up|down|status|cli ...|python ...}" >&2; exit 2 ;;
esac
