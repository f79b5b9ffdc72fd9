#!/usr/bin/env bash
# Start a throwaway PostgreSQL on a Unix socket in a temporary folder, as the postgres user.
# Prints the DSN on stdout; `.ci/postgres.sh stop DIR` stops it and removes DIR.
set -euo pipefail
if [[ ${1:-} == stop ]]; then
  dir=$2
  bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
id postgres >/dev/null 2>&1 || useradd --system postgres
dir=$(mktemp -d /tmp/poolbench-pg.XXXXXX)
chown postgres "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-k $dir -c listen_addresses='' -c max_connections=200 -c fsync=off" start >/dev/null
echo "postgresql://postgres@/postgres?host=$dir"
