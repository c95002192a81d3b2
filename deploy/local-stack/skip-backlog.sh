#!/usr/bin/env bash
# Move a Kafka consumer group's committed offsets to the end of every topic it reads, so that its
# next subscriber starts with what is published from now on and skips what is already there.
#
# Why: the local stack keeps Kafka's data between runs, and the topics are shared. `just bench`
# (row 5) publishes tens of thousands of events into task-events under its own group; the e2e
# suite's group (`taskhost`, daprd's app id) would then wade through all of them before reaching
# the events its tests publish, and time out. The e2e suite calls this before its first test; it
# is also the tool for a developer who wants a fresh start without wiping the stack's data.
#
# Kafka's own consumer-group command (kafka-tools, fetched with the broker by fetch-kafka.sh).
# The group must have no live member: stop daprd first (daprd.sh stop). A group that has no
# committed offsets yet has nothing to skip: a new group starts where the component's
# initialOffset says.
#
# Usage: deploy/local-stack/skip-backlog.sh GROUP
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

(($# == 1)) || stack_die "usage: $0 GROUP (a Kafka consumer group: daprd's app id, e.g. taskhost)"
group=$1
[[ -f $KAFKA_LIBS/kafka-tools-$KAFKA_VERSION.jar ]] ||
    stack_die "kafka-tools-$KAFKA_VERSION.jar is not in $KAFKA_LIBS: run deploy/local-stack/fetch-kafka.sh"

groups() {
    java -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2-tools.properties" -Xmx128m -XX:TieredStopAtLevel=1 \
        -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "127.0.0.1:$KAFKA_PORT" "$@"
}

# A member that just left (daprd stopped) can take a moment to leave the group: the command
# refuses to reset a group that is not empty, so try for a while before giving up.
t0=$(now_ms)
for attempt in $(seq 1 20); do
    if out=$(groups --group "$group" --reset-offsets --to-latest --all-topics --execute 2>&1); then
        # rows "GROUP TOPIC PARTITION NEW-OFFSET", one per line in Kafka 4.4 (3.9 printed them
        # without line breaks): count matches, not lines
        moved=$(grep -oE "$group +[^ ]+ +[0-9]+ +[0-9]+" <<<"$out" | wc -l || true)
        stack_say "kafka: consumer group $group now starts at the end of its topics ($moved partitions, $((($(now_ms) - t0) / 1000)) s)"
        exit 0
    fi
    if grep -qiE 'inactive|not empty|is not empty|active members' <<<"$out"; then
        sleep 1
        continue
    fi
    printf '%s\n' "$out" >&2
    stack_die "kafka: could not reset the offsets of consumer group $group (output above)"
done
printf '%s\n' "$out" >&2
stack_die "kafka: consumer group $group still has live members after 20 tries: is a daprd with app id $group running?"
