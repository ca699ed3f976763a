#!/usr/bin/env bash
# Installs what runbot needs to build and run on Debian 12, and builds it (release preset).
# Idempotent; run as root on a fresh machine. Used by both commands at the top of the README.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev libssl-dev nlohmann-json3-dev librdkafka-dev libspdlog-dev
  libgtest-dev libgmock-dev libyaml-cpp-dev libcli11-dev libjemalloc-dev
  kcat curl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

preset=${RUNBOT_PRESET:-release}
cmake --preset "$preset" >/dev/null
if [[ "$preset" == release ]]; then
  # The demo needs only the runbot binary; the tests and benchmarks are built by the test command
  # (ci preset) or on demand (e.g. --target slack_bench).
  cmake --build --preset "$preset" -j2 --target runbot
else
  cmake --build --preset "$preset" -j2
fi
echo "setup: built build/$preset/bot/app/runbot" >&2
