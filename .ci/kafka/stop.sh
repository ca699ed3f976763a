#!/usr/bin/env bash
# Stop the broker started by start.sh: SIGTERM (Kafka's controlled shutdown
# flushes logs and writes a clean-shutdown marker, so --keep-data restarts skip
# log recovery), wait, then SIGKILL. Idempotent: no broker is not an error.
#
# Env: RUNBOT_KAFKA_DATA          data dir holding kafka.pid (default /tmp/runbot-kafka)
#      RUNBOT_KAFKA_STOP_TIMEOUT  seconds to wait after SIGTERM (default 30)
set -euo pipefail

data="${RUNBOT_KAFKA_DATA:-/tmp/runbot-kafka}"
grace="${RUNBOT_KAFKA_STOP_TIMEOUT:-30}"
pidfile="$data/kafka.pid"

say() { echo "stop.sh: $*" >&2; }

# Only signal the pid if it is still our broker: after a reboot or a crash the
# number may belong to an unrelated process.
is_broker() {
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka '
}

[[ -f "$pidfile" ]] || { say "no pid file ($pidfile), nothing to stop"; exit 0; }
pid="$(cat "$pidfile")"
if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! is_broker "$pid"; then
  say "broker (pid '${pid}') is not running"
  rm -f "$pidfile"
  exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
for ((i = 0; i < grace * 10; i++)); do
  is_broker "$pid" || break
  sleep 0.1
done
if is_broker "$pid"; then
  say "broker $pid still running after ${grace}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  # A SIGKILLed process disappears almost at once; wait so the ports are free.
  for ((i = 0; i < 50; i++)); do is_broker "$pid" || break; sleep 0.1; done
fi
rm -f "$pidfile"
say "stopped broker $pid"
