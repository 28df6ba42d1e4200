#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for vidkeep's tests: a temp folder, a free loopback port, a
# superuser `vidkeep` whose password is in a 0600 pgpass file (host logins use scram-sha-256, so
# a wrong password really fails), fsync off. With openssl, the server speaks TLS with a
# certificate for 127.0.0.1 from a CA made for it, and the URL asks for sslmode=verify-full with
# that CA as sslrootcert, so the tests go through verified TLS. Nothing outside the temp folder
# is touched.
#
#   pg_env=$(scripts/pg-test-cluster.sh start) && eval "$pg_env"   # exports VIDKEEP_TEST_PG, PGPASSFILE, VIDKEEP_TEST_PG_DIR
#   cargo test --test it postgres
#   scripts/pg-test-cluster.sh stop "$VIDKEEP_TEST_PG_DIR"
#
# Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`, which brings pg_trgm);
# PG_BIN overrides where they are. As root (CI), the server runs as the `postgres` user, since
# PostgreSQL refuses to run as root; otherwise it runs as you.
set -euo pipefail

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  die "no PostgreSQL server binaries (initdb): install postgresql, or set PG_BIN"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $(( 20000 + RANDOM % 40000 ))
}

start() {
  local bin dir port password as_pg=()
  bin=$(find_bin)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/vk-pg.XXXXXX")
  # The server's user must reach the folder; the pgpass file in it stays 0600 and ours.
  chmod 755 "$dir"
  mkdir "$dir/data" "$dir/sock" "$dir/tls"
  password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  ( umask 077; printf '%s\n' "$password" > "$dir/pwfile" )
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, and there is no postgres user to run the server"
    chown postgres "$dir/data" "$dir/sock" "$dir/tls" "$dir/pwfile"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U vidkeep --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pwfile"
  local tls_opts="" url_params=""
  if command -v openssl >/dev/null 2>&1; then
    make_certs "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir/tls/server.key" "$dir/tls/server.crt"; fi
    tls_opts="-c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key"
    url_params="?sslmode=verify-full&sslrootcert=$dir/ca.crt"
  else
    echo "pg-test-cluster: no openssl, so the cluster speaks plain TCP only" >&2
  fi
  port=$(free_port)
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 30 start \
    -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $tls_opts" \
    >/dev/null || { cat "$dir/data/server.log" >&2 || true; die "the server did not start"; }
  local url="postgres://vidkeep@127.0.0.1:$port/postgres$url_params"
  ( umask 077; printf '127.0.0.1:%s:*:vidkeep:%s\n' "$port" "$password" > "$dir/pgpass" )
  # Ready for the tests: a password login over TCP, and pg_trgm installable.
  PGPASSFILE="$dir/pgpass" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" \
    -c 'CREATE DATABASE vk_ready' -c '\c vk_ready' -c 'CREATE EXTENSION pg_trgm' -c '\c postgres' \
    -c 'DROP DATABASE vk_ready' >/dev/null \
    || { stop "$dir"; die "the cluster does not answer a password login, or pg_trgm is missing (install postgresql-contrib)"; }
  cat > "$dir/env" <<EOF
export VIDKEEP_TEST_PG='$url'
export PGPASSFILE=$dir/pgpass
export VIDKEEP_TEST_PG_DIR=$dir
EOF
  cat "$dir/env"
}

# A CA and a server certificate for 127.0.0.1 signed by it (two days, P-256), in DIR/tls; the
# CA's certificate is DIR/ca.crt and its key is deleted.
make_certs() {
  local dir=$1
  (
    cd "$dir/tls"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=vidkeep test CA" -keyout ca.key -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    rm -f ca.key server.csr server.ext ca.srl
    chmod 644 ca.crt server.crt
    mv ca.crt "$dir/ca.crt"
  )
}

stop() {
  local dir=${1:-${VIDKEEP_TEST_PG_DIR:-}} bin as_pg=()
  [ -n "$dir" ] || die "usage: $0 stop DIR"
  case "$dir" in */vk-pg.*) ;; *) die "$dir is not a cluster this script made";; esac
  [ -d "$dir" ] || return 0
  bin=$(find_bin)
  if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) die "usage: $0 start | stop DIR" ;;
esac
