#!/usr/bin/env bash
# PostgreSQL for the postgres-marked tests (the team store: `--store postgresql://...`): Debian's
# postgresql, and a cluster of our own, `progenitor`, listening on 127.0.0.1 only, port
# $PROGENITOR_PG_PORT (55432), so a cluster the machine already runs is never touched. Its role
# `progenitor` may create databases (each test makes one and drops it) and logs in from loopback
# without a password (`trust` for that role on 127.0.0.1 only: a throwaway test cluster, holding no
# data of anyone's). Idempotent; needs root (or sudo) for apt and the cluster's start.
#
# The tests find it at PROGENITOR_TEST_POSTGRES (default postgresql://progenitor@127.0.0.1:55432/postgres).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
PORT=${PROGENITOR_PG_PORT:-55432}
NAME=progenitor

if ! command -v pg_createcluster >/dev/null; then
  echo "postgres-setup: installing postgresql"
  $SUDO apt-get update -qq
  # Debian's package makes and starts its own `main` cluster; we leave it as it is.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)

if ! $SUDO pg_lsclusters -h | awk '{print $1 "/" $2}' | grep -qx "$VERSION/$NAME"; then
  echo "postgres-setup: creating cluster $VERSION/$NAME on 127.0.0.1:$PORT"
  $SUDO pg_createcluster "$VERSION" "$NAME" --port "$PORT" >/dev/null
  CONF=/etc/postgresql/$VERSION/$NAME
  echo "listen_addresses = '127.0.0.1'" | $SUDO tee "$CONF/conf.d/progenitor.conf" >/dev/null
  HBA=$CONF/pg_hba.conf
  $SUDO sh -c "{ echo 'host all progenitor 127.0.0.1/32 trust'; cat '$HBA'; } > '$HBA.new' && mv '$HBA.new' '$HBA'"
fi
if ! $SUDO pg_lsclusters -h | awk -v n="$NAME" '$2 == n {print $4}' | grep -qx online; then
  echo "postgres-setup: starting cluster $VERSION/$NAME"
  $SUDO pg_ctlcluster "$VERSION" "$NAME" start
fi
psql_admin() { $SUDO runuser -u postgres -- psql -X -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'progenitor'")" != "1" ]; then
  psql_admin -c "CREATE ROLE progenitor LOGIN CREATEDB"
fi
echo "postgres-setup: $(psql_admin -tAc 'SELECT version()' | cut -d, -f1) answers on 127.0.0.1:$PORT"
