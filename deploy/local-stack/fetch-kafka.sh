#!/usr/bin/env bash
# Fetch the Kafka broker's jars from Maven Central (through `mvn`, so ~/.m2 is used as Maven's cache).
# Cached: does nothing when the jars of this pom.xml are already in $KAFKA_LIBS (the stamp holds
# the pom's hash, so adding a dependency refetches).
# Usage: deploy/local-stack/fetch-kafka.sh [--force]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force=0
case ${1:-} in
    --force) force=1 ;;
    "") ;;
    *) stack_die "usage: $0 [--force]" ;;
esac
stamp=$KAFKA_LIBS/.complete
pom_hash=$(sha256sum "$STACK_DIR/kafka/pom.xml" | cut -d' ' -f1)
if ((!force)) && [[ -f $stamp && $(cat "$stamp") == "$pom_hash" && -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    stack_say "kafka $KAFKA_VERSION: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars cached in $KAFKA_LIBS"
    exit 0
fi
command -v mvn >/dev/null || stack_die "mvn is not on PATH: apt-get install maven (and a JDK >= 17: openjdk-17-jdk-headless)"
command -v java >/dev/null || stack_die "java is not on PATH: apt-get install openjdk-17-jre-headless"

stack_say "fetching Kafka $KAFKA_VERSION broker jars from Maven Central into $KAFKA_LIBS"
t0=$(now_ms)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$STACK_DIR/kafka/pom.xml" "$work/"
rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
(cd "$work" && mvn -q -B -Dstyle.color=never -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS") ||
    stack_die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable? is the version served?)"
[[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || stack_die "kafka_2.13-$KAFKA_VERSION.jar missing in $KAFKA_LIBS after mvn"
echo "$pom_hash" >"$stamp"
stack_say "fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$KAFKA_LIBS" | cut -f1)) in $((($(now_ms) - t0) / 1000)) s"
