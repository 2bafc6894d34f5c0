#!/bin/sh
# Create Temporal's two databases and bring their schemas up to the version
# that this admin-tools image ships. Each step is safe to run again, because
# create fails harmlessly on an existing database, setup-schema leaves a newer
# schema version alone, and update-schema applies only what is missing.
set -eu

sql_tool() {
    temporal-sql-tool --plugin postgres12 --endpoint "$POSTGRES_SEEDS" \
        --port "$DB_PORT" --user "$POSTGRES_USER" --password "$POSTGRES_PWD" "$@"
}

schema_root=/etc/temporal/schema/postgresql/v12
for database in temporal temporal_visibility; do
    case "$database" in
        temporal) versioned="$schema_root/temporal/versioned" ;;
        *) versioned="$schema_root/visibility/versioned" ;;
    esac
    sql_tool --database "$database" create || echo "database $database exists"
    sql_tool --database "$database" setup-schema --version 0.0
    sql_tool --database "$database" update-schema --schema-dir "$versioned"
done
echo "Temporal schemas are up to date"
