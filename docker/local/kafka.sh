#!/usr/bin/env bash
# Local single-node KRaft Kafka (broker+controller) from the jars in .local/kafka/libs; state under
# <state_dir>/kafka. `up` also creates the project topics (recsys.kafka.topics).
# Usage: docker/local/kafka.sh {up|down|status}     Env: KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m)
set -euo pipefail
SERVICE=kafka
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LIBS="${KAFKA_LIBS:-$ROOT/.local/kafka/libs}"
PORT="$CFG_SERVICES_KAFKA_PORT"
CPORT="$CFG_SERVICES_KAFKA_CONTROLLER_PORT"
DIR="$STATE_DIR/kafka"
DATA="$DIR/data"
PIDFILE="$DIR/kafka.pid"
PROPS="$DIR/server.properties"
LOG4J="$DIR/log4j2.properties"
HINT="RECSYS__SERVICES__KAFKA_PORT=<port> RECSYS__KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:<port> (controller: RECSYS__SERVICES__KAFKA_CONTROLLER_PORT)"
JAVA=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true
      "-Dlog4j2.configurationFile=$LOG4J" -cp "$LIBS/*")

running_pid() { our_pid "$PIDFILE" "kafka\.Kafka $PROPS"; }

topics() { (cd "$ROOT" && "$PYTHON" -m recsys.kafka.topics "$@"); }

write_config() {
  mkdir -p "$DATA"
  cat >"$PROPS" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.num.partitions=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
CONF
  cat >"$LOG4J" <<CONF
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $DIR/broker.log
appender.file.filePattern = $DIR/broker.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.channel.name = kafka.network.RequestChannel\$
logger.channel.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.log.name = kafka.log
logger.log.level = WARN
logger.storage.name = org.apache.kafka.storage
logger.storage.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
CONF
}

up() {
  local pid t0=$SECONDS rc=0
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "broker jars missing in $LIBS; run 'make setup'"
  if pid="$(running_pid)"; then
    log "already running (pid $pid) on 127.0.0.1:$PORT"
    wait_for_port "$PORT" 60 "$pid" || die "pid $pid is not listening on port $PORT; see $DIR/broker.log"
    topics --timeout 60 || die "broker not usable; see $DIR/broker.log"
    return 0
  fi
  for p in "$PORT" "$CPORT"; do port_in_use "$p" && port_taken_error "$p" "$HINT"; done
  command -v java >/dev/null || die "java not found; install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  [[ "$CFG_KAFKA_BOOTSTRAP_SERVERS" == *":$PORT"* ]] ||
    log "warning: kafka.bootstrap_servers ($CFG_KAFKA_BOOTSTRAP_SERVERS) does not use port $PORT"
  write_config
  if [[ ! -f "$DATA/meta.properties" ]]; then
    local cid
    cid="$("$PYTHON" -c 'import base64, uuid
while (c := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(c)')"
    log "formatting storage in $DATA (cluster id $cid)"
    "${JAVA[@]}" kafka.tools.StorageTool format -t "$cid" -c "$PROPS" >"$DIR/format.out" 2>&1 ||
      { cat "$DIR/format.out" >&2; die "storage format failed"; }
  fi
  local seen; seen="$(wc -l 2>/dev/null <"$DIR/broker.log" || echo 0)"  # show only this run's log on failure
  setsid "${JAVA[@]}" kafka.Kafka "$PROPS" >"$DIR/broker.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"
  log "starting (pid $pid), log $DIR/broker.log"
  wait_for_port "$PORT" 90 "$pid" || rc=$?
  if ((rc != 0)); then
    { cat "$DIR/broker.out"; tail -n "+$((seen + 1))" "$DIR/broker.log" 2>/dev/null | tail -n 20 || true; } >&2
    rm -f "$PIDFILE"
    ((rc == 2)) && die "broker exited during startup (see above)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    die "port $PORT not listening after 90s; broker stopped"
  fi
  topics --timeout 60 || die "broker listens but is not usable; see $DIR/broker.log"
  log "ready on 127.0.0.1:$PORT in $((SECONDS - t0))s"
}

down() {
  local pid
  if ! pid="$(running_pid)"; then
    for p in "$PORT" "$CPORT"; do
      port_in_use "$p" && log "not ours: port $p is held by another process ($(port_owner "$p")); left alone"
    done
    log "not running"; rm -f "$PIDFILE"; return 0
  fi
  # setsid made the broker its own process-group leader: stop the whole group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  wait_pid_gone "$pid" 30 || { log "still alive after 30s, killing"; kill -KILL -- "-$pid" 2>/dev/null || true; }
  wait_port_free "$PORT" 10 && wait_port_free "$CPORT" 10 || die "ports $PORT/$CPORT still in use after stopping"
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)" && port_in_use "$PORT"; then
    log "running (pid $pid) on 127.0.0.1:$PORT (controller $CPORT), env $CFG_ENV"
    local rc=0
    topics --check --timeout 10 || rc=$?
    ((rc == 1)) && log "warning: topics of env $CFG_ENV missing; create them with: RECSYS_ENV=$CFG_ENV $0 up"
    ((rc < 2)) || { log "process runs but the broker does not answer; see $DIR/broker.log"; return 1; }
    return 0
  fi
  if port_in_use "$PORT"; then log "not running; port $PORT is held by another process"; else log "not running"; fi
  return 1
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
