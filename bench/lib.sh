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
