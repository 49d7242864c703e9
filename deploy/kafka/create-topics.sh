#!/usr/bin/env bash
# One-shot topic set-up of the compose stack (service topic-init), safe to run again.
#
# Creates the five sleepstream topics with TOPIC_PARTITIONS partitions, and stops with an
# error when one already exists with another count: the partition of a subject is its key's
# hash modulo the count, so changing the count moves subjects away from their table state.
# The workers create their changelog topics themselves, with the same count.
set -euo pipefail

bootstrap="${BOOTSTRAP:-kafka:9092}"
prefix="${TOPIC_PREFIX:-sleep.}"
partitions="${TOPIC_PARTITIONS:-8}"
replicas="${TOPIC_REPLICATION_FACTOR:-1}"
kafka_topics="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

for name in sessions samples stages summaries deadletter; do
    topic="${prefix}${name}"
    "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$topic" --partitions "$partitions" --replication-factor "$replicas"
    have="$("$kafka_topics" --bootstrap-server "$bootstrap" --describe --topic "$topic" \
        | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)"
    if [ "$have" != "$partitions" ]; then
        echo "topic $topic has ${have:-no} partitions, expected $partitions" \
             "(SLEEPSTREAM_PARTITIONS). Set SLEEPSTREAM_PARTITIONS=${have:-?} in .env, or" \
             "move to new topics (README.md, 'Changing the partition count')." >&2
        exit 1
    fi
    echo "topic $topic: $partitions partitions"
done
