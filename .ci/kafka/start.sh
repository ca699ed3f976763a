#!/usr/bin/env bash
# Start a real single-node Apache Kafka broker (KRaft: combined broker +
# controller) on loopback for the test suite, and wait until it serves metadata.
#
# Usage: start.sh [--keep-data]
#   (default)    wipe the storage, format it with a fresh random cluster id
#   --keep-data  reuse the already formatted storage (topics, offsets, committed
#                group offsets survive); formats only if nothing is there yet.
#                Keep the same ports across such restarts: the controller's
#                address is recorded in the metadata log.
#
# If a broker started by these scripts (same data dir) is still running, it is
# stopped first (via stop.sh) and a new one started: the caller always gets a
# broker that matches the config and data mode it asked for.
#
# stdout: only the bootstrap address, as the last line (addr=$(start.sh));
# progress goes to stderr.
#
# Env (all optional):
#   RUNBOT_KAFKA_PORT             PLAINTEXT broker port       (default 19092)
#   RUNBOT_KAFKA_CONTROLLER_PORT  KRaft controller port       (default 19093)
#   RUNBOT_KAFKA_DATA             data dir: storage, config, log, pid (default /tmp/runbot-kafka)
#   RUNBOT_KAFKA_HOME             jar cache, see fetch.sh
#   RUNBOT_KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   RUNBOT_KAFKA_HEAP_OPTS        JVM heap flags              (default -Xmx512m)
#   RUNBOT_KAFKA_EXTRA_PROPS      extra server.properties lines, appended last (wins)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

keep_data=0
for arg in "$@"; do
  case "$arg" in
    --keep-data) keep_data=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "start.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

port="${RUNBOT_KAFKA_PORT:-19092}"
cport="${RUNBOT_KAFKA_CONTROLLER_PORT:-19093}"
data="${RUNBOT_KAFKA_DATA:-/tmp/runbot-kafka}"
timeout_s="${RUNBOT_KAFKA_START_TIMEOUT:-90}"
heap="${RUNBOT_KAFKA_HEAP_OPTS:--Xmx512m}"
bootstrap="127.0.0.1:$port"

storage="$data/kraft-combined-logs"   # log.dirs: topic data + metadata log
config="$data/server.properties"
log4j_cfg="$data/log4j2.properties"
log="$data/broker.log"                # JVM stdout/stderr + all broker logging
pidfile="$data/kafka.pid"

say() { echo "start.sh: $*" >&2; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Jars (fetches on first use; idempotent). Its last stdout line is the libs dir.
libs="$("$here/fetch.sh" | tail -n1)"

# kcat is the readiness probe (and librdkafka is what the project's clients use).
if ! command -v kcat >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    say "kcat is missing; install it (apt-get install kcat)"; exit 1
  fi
  say "installing kcat with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends kcat >&2
fi

# An earlier broker of ours (same data dir) is stopped rather than reused, so
# the result never depends on what a previous run left behind.
"$here/stop.sh" >&2

for p in "$port" "$cport"; do
  # A few seconds of grace: a process killed just before may still be exiting.
  for _ in 1 2 3 4 5 6 7 8 9 10; do port_open "$p" || break; sleep 0.5; done
  if port_open "$p"; then
    say "port $p on 127.0.0.1 is already in use by a process these scripts did not start"
    say "(another broker with a different RUNBOT_KAFKA_DATA?); set RUNBOT_KAFKA_PORT / RUNBOT_KAFKA_CONTROLLER_PORT or stop it"
    exit 1
  fi
done

mkdir -p "$data"
if [[ "$keep_data" == 0 ]]; then
  # Delete only what these scripts create, never the whole (env-chosen) dir.
  rm -rf "$storage" "$data/cluster.id" "$log"
elif [[ ! -f "$storage/meta.properties" ]]; then
  say "--keep-data: no formatted storage in $storage yet, formatting a new one"
fi

# Settings chosen for a one-node test cluster: every internal topic at
# replication factor 1 (the defaults of 3 cannot be met and block groups and
# transactions), no initial rebalance delay (groups form at once), few
# partitions for internal topics (faster first group/transaction use), quick
# re-registration after a crash.
cat > "$config" <<EOF
# Written by .ci/kafka/start.sh; regenerated on every start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$storage

auto.create.topics.enable=true
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted node must wait out the dead incarnation's
# session (DUPLICATE_BROKER_REGISTRATION) before serving: 9 s by default.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
${RUNBOT_KAFKA_EXTRA_PROPS:-}
EOF

# log4j2 to stdout, which is redirected into $log: one file holds everything,
# including JVM errors that never reach log4j.
cat > "$log4j_cfg" <<'EOF'
status = warn
# Keep logging alive until the JVM exits: otherwise log4j's own hook races
# Kafka's and the end of the shutdown sequence is lost.
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF

jvm=(java -cp "$libs/*" "-Dlog4j2.configurationFile=$log4j_cfg" "-Dkafka.logs.dir=$data"
     -Djava.awt.headless=true)

if [[ ! -f "$storage/meta.properties" ]]; then
  # Console logging shares stdout with the id: keep only the 22-char base64 id.
  cluster_id="$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$log" \
                | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1)"
  [[ -n "$cluster_id" ]] || { say "StorageTool random-uuid printed no id; see $log"; exit 1; }
  echo "$cluster_id" > "$data/cluster.id"
  # --standalone: this node alone forms the (dynamic) KRaft controller quorum.
  if ! "${jvm[@]}" kafka.tools.StorageTool format --standalone \
       -t "$cluster_id" -c "$config" >>"$log" 2>&1; then
    say "formatting $storage failed; tail of $log:"; tail -n 30 "$log" >&2; exit 1
  fi
  say "formatted $storage (cluster id $cluster_id)"
fi

echo "===== start.sh $(date -u +%FT%TZ) keep_data=$keep_data =====" >>"$log"
# Same GC flags as Kafka's own kafka-run-class.sh; heap kept small for tests.
# setsid + nohup + all fds redirected: the broker outlives this script, ignores
# the caller's Ctrl-C, and holds no pipe open (so addr=$(start.sh) returns).
# shellcheck disable=SC2086  # $heap is a list of flags
setsid nohup "${jvm[@]}" $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
  -XX:+ExitOnOutOfMemoryError \
  kafka.Kafka "$config" </dev/null >>"$log" 2>&1 &
pid=$!
launched=$SECONDS
echo "$pid" > "$pidfile"
say "broker pid $pid, log $log; waiting up to ${timeout_s}s for $bootstrap"

fail() {
  say "$*"
  say "tail of $log:"
  tail -n 40 "$log" >&2 || true
  "$here/stop.sh" >&2 || true
  exit 1
}

deadline=$((SECONDS + timeout_s))
while :; do
  kill -0 "$pid" 2>/dev/null || fail "broker process $pid exited during startup"
  # Ready = the port accepts connections AND the broker answers a metadata
  # request listing itself (the listener opens slightly before that).
  # (Output captured, not piped to grep -q: with pipefail an early grep exit
  # would SIGPIPE kcat once there are many topics and look like "not ready".)
  if port_open "$port"; then
    md="$(timeout 10 kcat -b "$bootstrap" -L -m 5 2>/dev/null)" || true
    [[ "$md" == *"broker 1 at $bootstrap"* ]] && break
  fi
  (( SECONDS < deadline )) || fail "broker not ready on $bootstrap after ${timeout_s}s"
  sleep 0.5
done

say "ready $((SECONDS - launched))s after launch"
echo "$bootstrap"
