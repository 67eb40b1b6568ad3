#!/usr/bin/env bash
# Local Redis (Debian's redis-server) on 127.0.0.1:<services.redis_port>; state under <state_dir>/redis.
# Usage: docker/local/redis.sh {up|down|status}
set -euo pipefail
SERVICE=redis
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="$CFG_SERVICES_REDIS_PORT"
DIR="$STATE_DIR/redis"
PIDFILE="$DIR/redis.pid"
HINT="RECSYS__SERVICES__REDIS_PORT=<port> RECSYS__REDIS__URL=redis://127.0.0.1:<port>/0"

running_pid() { our_pid "$PIDFILE" "redis-server .*:$PORT\b"; }

up() {
  local pid
  if pid="$(running_pid)"; then log "already running (pid $pid) on 127.0.0.1:$PORT"; return 0; fi
  port_in_use "$PORT" && port_taken_error "$PORT" "$HINT"
  command -v redis-server >/dev/null || die "redis-server not found; install it (apt-get install redis-server)"
  [[ "$CFG_REDIS_URL" == *":$PORT"* ]] || log "warning: redis.url ($CFG_REDIS_URL) does not use port $PORT"
  mkdir -p "$DIR"
  cat >"$DIR/redis.conf" <<CONF
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
logfile $DIR/redis.log
dir $DIR
save ""
appendonly no
maxmemory $CFG_SERVICES_REDIS_MAXMEMORY
maxmemory-policy $CFG_SERVICES_REDIS_MAXMEMORY_POLICY
CONF
  redis-server "$DIR/redis.conf" || die "redis-server failed to start; see $DIR/redis.log"
  wait_for_port "$PORT" 10 || die "not listening on port $PORT after 10s; see $DIR/redis.log"
  [[ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping)" == PONG ]] || die "no PONG on port $PORT; see $DIR/redis.log"
  log "started (pid $(running_pid || echo '?')) on 127.0.0.1:$PORT, log $DIR/redis.log"
}

down() {
  local pid
  if ! pid="$(running_pid)"; then
    port_in_use "$PORT" && log "not ours: port $PORT is held by another process ($(port_owner "$PORT")); left alone"
    log "not running"; rm -f "$PIDFILE"; return 0
  fi
  kill -TERM "$pid"
  wait_pid_gone "$pid" 10 || { log "still alive after 10s, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  wait_port_free "$PORT" 10 || die "port $PORT still in use after stopping pid $pid"
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)" && port_in_use "$PORT"; then log "running (pid $pid) on 127.0.0.1:$PORT"; return 0; fi
  if port_in_use "$PORT"; then log "not running; port $PORT is held by another process"; else log "not running"; fi
  return 1
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
