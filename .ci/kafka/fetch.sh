#!/usr/bin/env bash
# Put the jars of a runnable Apache Kafka broker (version pinned in pom.xml)
# into a cache dir, resolving them from Maven Central with Maven.
# Idempotent: does nothing when the cache already matches pom.xml.
# The last line printed on stdout is the libs dir (start.sh relies on that).
#
# Env:
#   RUNBOT_KAFKA_HOME  cache dir (default: $HOME/.cache/runbot/kafka-<version>);
#                      jars go to $RUNBOT_KAFKA_HOME/libs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"

# Single source of truth for the version: the pom's <kafka.version>.
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
[[ -n "$version" ]] || { echo "fetch.sh: cannot read <kafka.version> from $pom" >&2; exit 1; }

kafka_home="${RUNBOT_KAFKA_HOME:-$HOME/.cache/runbot/kafka-$version}"
libs="$kafka_home/libs"
stamp="$kafka_home/.fetched"
# The stamp holds the pom's checksum, so editing the pom (new version, new
# dependency) invalidates the cache even when RUNBOT_KAFKA_HOME is fixed.
want="$(sha256sum "$pom" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$libs" ]]; then
  echo "$libs"
  exit 0
fi

# A fresh Debian 12 box may lack the tools; install them once (needs root).
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "fetch.sh: need 'mvn' and 'java' (17+); install maven openjdk-17-jre-headless" >&2
    exit 1
  fi
  echo "fetch.sh: installing maven and openjdk-17-jre-headless with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends maven openjdk-17-jre-headless >&2
fi

# Kafka 4.x brokers need Java 17+; fail here with a clear message rather than
# later with an UnsupportedClassVersionError buried in the broker log.
java_major="$(java -XshowSettings:properties -version 2>&1 \
  | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
if [[ -z "$java_major" || "$java_major" -lt 17 ]]; then
  echo "fetch.sh: Kafka $version needs Java 17+, found '${java_major:-unknown}'" >&2
  exit 1
fi

echo "fetch.sh: resolving Kafka $version jars with Maven into $libs" >&2
mkdir -p "$kafka_home"
# Copy into a private temp dir and rename at the end, so an interrupted or
# concurrent run never leaves a half-filled libs dir that looks complete.
tmp="$(mktemp -d "$kafka_home/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# -B: no colour/progress noise in CI logs; runtime scope = what the broker loads.
mvn -q -B -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
if [[ ! -f "$tmp/kafka_2.13-$version.jar" ]]; then
  echo "fetch.sh: Maven finished but kafka_2.13-$version.jar is missing" >&2
  exit 1
fi

rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$want" > "$stamp"
echo "fetch.sh: $(find "$libs" -name '*.jar' | wc -l) jars in $libs" >&2
echo "$libs"
