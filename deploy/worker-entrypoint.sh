#!/bin/sh
# Entry point of the sleepstream image: puts the InfluxDB token and the Kafka SASL password
# from their Docker secrets into SLEEPSTREAM_INFLUX_TOKEN and SLEEPSTREAM_KAFKA_SASL_PASSWORD
# (the worker reads its settings from the environment only), then runs the command, by
# default the Faust worker.
#
# A value already in the environment wins; a missing or empty secret sets nothing.
# RUN_SECRETS_DIR is for tests.
set -eu

secrets="${RUN_SECRETS_DIR:-/run/secrets}"
secret="$secrets/sleepstream_influx_token"
if [ -z "${SLEEPSTREAM_INFLUX_TOKEN:-}" ] && [ -r "$secret" ]; then
    SLEEPSTREAM_INFLUX_TOKEN="$(cat "$secret")"
    export SLEEPSTREAM_INFLUX_TOKEN
fi
secret="$secrets/sleepstream_kafka_sasl_password"
if [ -z "${SLEEPSTREAM_KAFKA_SASL_PASSWORD:-}" ] && [ -r "$secret" ] && [ -s "$secret" ]; then
    SLEEPSTREAM_KAFKA_SASL_PASSWORD="$(cat "$secret")"
    export SLEEPSTREAM_KAFKA_SASL_PASSWORD
fi
exec "$@"
