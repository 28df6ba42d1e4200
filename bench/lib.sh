# Shared by the bench scripts: a free loopback port, and a daemon config on a simulator.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_config DIR SIM_PORT HTTP_PORT: DIR/vk.toml with its inbox, archive and catalogue in DIR.
write_config() {
  cat >"$1/vk.toml" <<TOML
[api]
base_url = "http://127.0.0.1:$2/api/paas/v4"
api_key_env = "VIDKEEP_BENCH_KEY"
[watch]
dir = "$1/inbox"
[storage]
url = "$1/archive"
[catalog]
path = "$1/catalog.sqlite"
[http]
listen = "127.0.0.1:$3"
TOML
}

# write_specs DIR N PROMPT: N viduq1-text specs DIR/spec-NNNNNN.json, prompt "PROMPT <i>".
write_specs() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys
stage, n, prompt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    with open(os.path.join(stage, f"spec-{i:06d}.json"), "w") as f:
        json.dump({"model": "viduq1-text", "prompt": f"{prompt} {i}"}, f)
PY
}

# start_daemon DIR HTTP_PORT: `vidkeep run` on DIR/vk.toml (log in DIR/vk.log), waiting until it
# is ready; its pid is in $vk.
start_daemon() {
  VIDKEEP_BENCH_KEY=sim-key.sim-secret "$BIN" run --config "$1/vk.toml" >"$1/vk.log" 2>&1 &
  vk=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$2/readyz" >/dev/null && break; sleep 0.1; done
}

# write_config_pg DIR SIM_PORT HTTP_PORT URL [STORAGE]: DIR/vk.toml as write_config makes it, but
# with its catalogue in the PostgreSQL database at URL (`[catalog] url`; the password comes from
# PGPASSFILE or PGPASSWORD) and its storage at STORAGE (default DIR/archive), so several daemons
# can share one database and one storage root, each with its own inbox DIR/inbox.
write_config_pg() {
  write_config "$1" "$2" "$3"
  local url=${4//&/\\&} storage=${5:-$1/archive}
  sed -i "s|^path = \"$1/catalog.sqlite\"|url = \"${url//|/\\|}\"|; s|^url = \"$1/archive\"|url = \"$storage\"|" "$1/vk.toml"
}

# pg_db URL NAME: creates the database NAME on the server of URL (a URL to any of its databases,
# as scripts/pg-test-cluster.sh exports it) and prints the URL of NAME, query string kept.
pg_db() {
  psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "CREATE DATABASE \"$2\"" >/dev/null
  python3 - "$1" "$2" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))
PY
}
