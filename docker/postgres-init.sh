#!/bin/sh
# One PostgreSQL server, two databases: MLflow's backend store and Prefect's database.
# The postgres image runs this once, on an empty data folder (/docker-entrypoint-initdb.d);
# tests/integration/test_stack.py runs it against a server it started, with the same env.
set -eu
: "${POSTGRES_USER:?set POSTGRES_USER}"
for db in ${NNPIPE_DATABASES:-mlflow prefect}; do
  if [ -z "$(psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$db\""
    echo "postgres-init: created database $db"
  fi
done
