#!/bin/sh
# Entry point of the sleepstream image: puts the InfluxDB token from its Docker secret into
# SLEEPSTREAM_INFLUX_TOKEN (the worker reads its settings from the environment only), then
# runs the command, by default the Faust worker.
#
# A token already in the environment wins. RUN_SECRETS_DIR is for tests.
set -eu

secret="${RUN_SECRETS_DIR:-/run/secrets}/sleepstream_influx_token"
if [ -z "${SLEEPSTREAM_INFLUX_TOKEN:-}" ] && [ -r "$secret" ]; then
    SLEEPSTREAM_INFLUX_TOKEN="$(cat "$secret")"
    export SLEEPSTREAM_INFLUX_TOKEN
fi
exec "$@"
