#!/bin/sh
# Create Outbound's own role and database beside Temporal's. The postgres
# image runs this once, when its data volume is empty. The compose file sets
# POSTGRES_OUTBOUND_PASSWORD.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=password="$POSTGRES_OUTBOUND_PASSWORD" <<'SQL'
CREATE ROLE outbound LOGIN PASSWORD :'password';
CREATE DATABASE outbound OWNER outbound;
SQL
