#!/usr/bin/env bash
# Makes sure a local PostgreSQL (Debian's postgresql package, installed by setup.sh) runs, with a
# role and a database for the enrolment store's tests, and prints the URL to use:
#   export EID_TEST_POSTGRES_URL=$(./scripts/start-postgres.sh)
# Each test creates and drops its own schema in that database, so tests run in parallel.
# CI containers have no systemd: the cluster is started with pg_ctlcluster.
set -euo pipefail

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
if [ -z "${version:-}" ]; then
  echo "start-postgres: no PostgreSQL cluster (is the postgresql package installed?)" >&2
  exit 1
fi
if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $4}' | grep -q online; then
  $sudo pg_ctlcluster "$version" "$cluster" start >&2
fi
for _ in $(seq 100); do
  as_postgres psql -tAc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
as_postgres psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'eid'" | grep -q 1 ||
  as_postgres psql -q -c "CREATE ROLE eid LOGIN PASSWORD 'eid' CREATEDB" >&2
as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'eid_test'" | grep -q 1 ||
  as_postgres psql -q -c "CREATE DATABASE eid_test OWNER eid" >&2
echo "postgres://eid:eid@127.0.0.1/eid_test"
