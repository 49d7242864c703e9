#!/bin/bash
# Run once by the influxdb:2 image, right after its first setup (DOCKER_INFLUXDB_INIT_MODE=setup),
# with the influx CLI already logged in as the admin.
#
# 1. Maps the InfluxQL database V1_DATABASE (retention policy autogen) to the bucket, so the
#    InfluxQL dashboards can query what the worker writes through the v2 API.
# 2. Creates the v1 user V1_READ_USER with read access to that bucket only, for Grafana;
#    its password is the secret grafana_influx_password.
set -euo pipefail

db="${V1_DATABASE:-sleepstream}"
user="${V1_READ_USER:-grafana}"
password_file="${RUN_SECRETS_DIR:-/run/secrets}/grafana_influx_password"  # RUN_SECRETS_DIR: tests

influx v1 dbrp create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --db "$db" --rp autogen --default

if [ ! -s "$password_file" ]; then
    echo "secret grafana_influx_password is missing or empty ($password_file):" \
         "create deploy/secrets/grafana_influx_password (README.md, 'Run it')" >&2
    exit 1
fi
influx v1 auth create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --username "$user" \
    --password "$(cat "$password_file")" \
    --read-bucket "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --description "grafana: InfluxQL, read-only"
