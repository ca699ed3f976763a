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
  local cmd
  # shellcheck disable=SC2002  # cat: a '<' redirect error could not be silenced
  cmd="$(cat "/proc/$1/cmdline" 2>/dev/null | tr '\0' ' ')" || true
  [[ "$cmd" == *"kafka.Kafka "* ]]
}
# Gone = no such process or a zombie. A process that is still exiting (e.g.
# right after a SIGKILL) has an empty cmdline but may still hold its ports,
# so is_broker alone is not enough to wait on.
alive() {
  local st
  st="$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$st" && "$st" != Z ]]
}
wait_gone() { # pid tenths-of-seconds
  local i
  for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done
  ! alive "$1"
}

[[ -f "$pidfile" ]] || { say "no pid file ($pidfile), nothing to stop"; exit 0; }
pid="$(cat "$pidfile")"
if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! is_broker "$pid"; then
  # Possibly killed moments ago and still exiting (its comm is still "java"):
  # let it release its ports.
  if [[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == java ]]; then
    wait_gone "$pid" 100 || true
  fi
  say "broker (pid '${pid}') is not running"
  rm -f "$pidfile"
  exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
if ! wait_gone "$pid" $((grace * 10)); then
  say "broker $pid still running after ${grace}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 100 || { say "broker $pid survived SIGKILL for 10s"; exit 1; }
fi
rm -f "$pidfile"
say "stopped broker $pid"
