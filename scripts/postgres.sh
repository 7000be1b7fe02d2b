#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (docs/durability.md, "On PostgreSQL").
#
#   scripts/postgres.sh start [DIR]   starts one (installing Debian's package when
#                                     initdb is missing) and prints its URL
#   scripts/postgres.sh url [DIR]     prints the URL of the running one
#   scripts/postgres.sh stop [DIR]    stops it and removes DIR
#   scripts/postgres.sh halt [DIR]    stops it, keeping its data (the outage tests)
#   scripts/postgres.sh resume [DIR]  starts a halted one again, on the same port
#
# DIR defaults to $PG_TEST_DIR or /tmp/worker-runtime-pg; the port to
# $PG_TEST_PORT or 55432. Trust authentication on 127.0.0.1 only (a test
# server), but for the role `password_user`, which must give its password
# (the wrong-credentials test).
set -euo pipefail

cmd="${1:-}"
dir="${2:-${PG_TEST_DIR:-/tmp/worker-runtime-pg}}"
port="${PG_TEST_PORT:-$(cat "$dir/port" 2>/dev/null || echo 55432)}"
data="$dir/data"
# initdb and postgres refuse to run as root.
user="${PG_TEST_USER:-postgres}"

find_bin() {
  local name="$1" candidate
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  # Debian keeps the binaries in a versioned directory, not on PATH; the newest wins.
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/$name" ]; then echo "$candidate/$name"; return 0; fi
  done
  return 1
}

as_user() {
  if [ "$(id -u)" = "0" ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

url() { echo "postgres://$user@127.0.0.1:$port/postgres"; }

server_start() {
  as_user "$(find_bin pg_ctl)" -w -t 60 -D "$data" -l "$dir/server.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=400" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

case "$cmd" in
  start)
    if ! find_bin initdb >/dev/null; then
      echo "postgres.sh: installing postgresql (initdb not found)" >&2
      apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 || true
      find_bin initdb >/dev/null ||
        { echo "postgres.sh: initdb still missing: install Debian's postgresql package (as root)" >&2; exit 1; }
    fi
    initdb="$(find_bin initdb)"
    pg_ctl="$(find_bin pg_ctl)"
    if [ "$(id -u)" = "0" ] && ! id "$user" >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    fi
    if [ -f "$data/postmaster.pid" ] && as_user "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
      url; exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = "0" ] && chown "$user" "$dir"
    as_user "$initdb" -D "$data" --auth=trust --username="$user" --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # First match wins: this role alone must give a password.
    { echo "host all password_user 127.0.0.1/32 scram-sha-256"; cat "$data/pg_hba.conf"; } >"$data/pg_hba.new"
    mv "$data/pg_hba.new" "$data/pg_hba.conf"
    [ "$(id -u)" = "0" ] && chown "$user" "$data/pg_hba.conf"
    echo "$port" >"$dir/port"
    # fsync stays on: the tests check durability, and it costs little here.
    server_start
    url
    ;;
  url)
    url
    ;;
  halt)
    as_user "$(find_bin pg_ctl)" -w -D "$data" -m fast stop >/dev/null
    ;;
  resume)
    as_user "$(find_bin pg_ctl)" -D "$data" status >/dev/null 2>&1 || server_start
    ;;
  stop)
    if [ -d "$data" ]; then
      pg_ctl="$(find_bin pg_ctl)"
      as_user "$pg_ctl" -w -D "$data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: scripts/postgres.sh start|url|stop|halt|resume [DIR]" >&2
    exit 2
    ;;
esac
