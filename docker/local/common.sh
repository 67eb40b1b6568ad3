# Shared helpers for docker/local/*.sh (sourced, not executed). Expects SERVICE to be set by the caller.
# Loads the project configuration as CFG_* variables (RECSYS_ENV selects conf/<env>.yaml).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${RECSYS_PYTHON:-$ROOT/.venv/bin/python}"
SERVICE="${SERVICE:-services}"

log() { printf '%s %s: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$SERVICE" "$*"; }
die() { printf '%s %s: ERROR: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$SERVICE" "$*" >&2; exit 1; }

[[ -x "$PYTHON" ]] || die "no project virtualenv at $PYTHON; run 'make setup' (or set RECSYS_PYTHON)"
_cfg="$(cd "$ROOT" && "$PYTHON" -m recsys.config --shell)" || die "cannot load configuration (see above)"
eval "$_cfg"
unset _cfg

# Relative paths in the configuration hang off the project root.
abs_path() { if [[ "$1" = /* ]]; then printf '%s\n' "$1"; else printf '%s/%s\n' "$ROOT" "$1"; fi; }
STATE_DIR="$(abs_path "$CFG_SERVICES_STATE_DIR")"

# True when something listens on PORT (any local address).
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Who listens on PORT, for error messages (process names need permission to see).
port_owner() {
  local who=""
  command -v ss >/dev/null 2>&1 && who="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -1)"
  printf '%s\n' "${who:-unknown process}"
}

# wait_for_port PORT TIMEOUT [PID]: until PORT listens; gives up early (rc 2) if PID dies.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
  until port_in_use "$port"; do
    [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null && return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# wait_port_free PORT TIMEOUT
wait_port_free() {
  local deadline=$((SECONDS + $2))
  while port_in_use "$1"; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}

# our_pid PIDFILE PATTERN: print the pid if it is alive and its command line matches PATTERN.
our_pid() {
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  ps -o args= -p "$pid" 2>/dev/null | grep -qE -- "$2" || return 1
  printf '%s\n' "$pid"
}

# wait_pid_gone PID TIMEOUT
wait_pid_gone() {
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do ((SECONDS < deadline)) || return 1; sleep 0.2; done
}

# port_taken_error PORT HINT: the standard failure when another process holds one of our ports.
port_taken_error() {
  die "port $1 is already in use by another process ($(port_owner "$1")). Stop that process, or move" \
      "this service to a free port: $2"
}
