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
