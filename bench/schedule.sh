#!/usr/bin/env bash
# The scheduler under a per-model limit (issue 14, benchmark 4): N specs of one model dropped at
# once, the platform (the simulator) allowing LIMIT tasks of that model at a time, each finishing
# after exactly LATENCY. The ideal schedule is ceil(N / LIMIT) waves of LATENCY each. Measured:
# wall from the drop to the last job archived (vidkeep) or the last video downloaded (peer), its
# ratio to the ideal, polls per task, and the delay from a task's success to the first request of
# its video (p50 / p90 / max, as the simulator saw it). Both clients poll every POLL.
# The peer, bench/poller_minimal.py, is the least a client can do: submit up to LIMIT, poll each
# task every POLL, download the video and cover with SHA-256 on success, submit the next.
#   bash bench/schedule.sh [BIN] [N] [REPEATS] [LIMIT] [LATENCY_S] [POLL_MS]
set -euo pipefail
BIN=${1:-target/release/vidkeep}
N=${2:-200}
REPEATS=${3:-3}
LIMIT=${4:-5}
LATENCY=${5:-2}
POLL_MS=${6:-50}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# start_sim DIR: a simulator with a fixed latency and the per-model limit; prints its port.
start_sim() {
  local dir=$1 port
  port=$(port)
  printf 'latency_min = "%ss"\nlatency_max = "%ss"\nmodel_limit = %s\n' "$LATENCY" "$LATENCY" "$LIMIT" >"$dir/sim.toml"
  "$BIN" simulate --listen "127.0.0.1:$port" --config "$dir/sim.toml" >"$dir/sim.log" 2>&1 &
  echo $! >"$dir/sim.pid"
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/_sim/stats" >/dev/null && break; sleep 0.05; done
  echo "$port"
}

# report WHO WALL SIM_PORT: the line of one run, from the wall time and the simulator's counters.
report() {
  curl -sf "127.0.0.1:$3/_sim/stats" | python3 -c '
import json, math, statistics, sys
who, wall, n, limit, latency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = json.load(sys.stdin)
ideal = math.ceil(n / limit) * latency
d = sorted(s["ready_to_download_ms"])
q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1000 if d else float("nan")
peak = max(s["max_in_flight_by_model"].values() or [0])
accepted, refused = s["accepted"], s["refused"]
polls = s["polls"] / max(1, accepted)
print(f"{who}: {n} tasks in {wall:.2f} s = {wall / ideal:.3f}x the ideal {ideal:.0f} s; "
      f"{polls:.1f} polls per task; ready->download p50 {q(0.5):.3f} s, "
      f"p90 {q(0.9):.3f} s, max {q(1.0):.3f} s; accepted {accepted}, refused {refused}, "
      f"peak in flight {peak}")
' "$1" "$2" "$N" "$LIMIT" "$LATENCY"
}

vidkeep_run() {
  local dir=$1 sim_port http_port
  sim_port=$(start_sim "$dir"); http_port=$(port)
  mkdir -p "$dir/inbox" "$dir/stage"
  write_config "$dir" "$sim_port" "$http_port"
  python3 - "$dir/vk.toml" "$LIMIT" "$POLL_MS" <<'PY'
import sys
path, limit, poll = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read().replace(
    '[api]\n',
    f'[api]\npoll_interval = "{poll}ms"\nmax_in_flight = {limit}\n'
    f'max_in_flight_per_model = {{ "viduq1-text" = {limit} }}\n', 1)
text += '[archive]\nallowed_networks = ["127.0.0.0/8"]\n'
open(path, "w").write(text)
PY
  write_specs "$dir/stage" "$N" "scheduler benchmark: a lantern on a quay, number"
  local vk
  start_daemon "$dir" "$http_port"
  local wall
  wall=$(python3 - "$dir" "$N" <<'PY'
import os, sqlite3, sys, time
d, n = sys.argv[1], int(sys.argv[2])
stage, inbox = os.path.join(d, "stage"), os.path.join(d, "inbox")
t0 = time.monotonic()
for name in sorted(os.listdir(stage)):
    os.rename(os.path.join(stage, name), os.path.join(inbox, name))
db = sqlite3.connect(os.path.join(d, "catalog.sqlite"), timeout=30)
while db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'archived'").fetchone()[0] < n:
    if time.monotonic() - t0 > 3600:
        sys.exit("not archived within an hour")
    time.sleep(0.01)
print(f"{time.monotonic() - t0:.3f}")
PY
)
  report vidkeep "$wall" "$sim_port"
  kill "$vk" "$(cat "$dir/sim.pid")" 2>/dev/null || true
  wait "$vk" 2>/dev/null || true
}

peer_run() {
  local dir=$1 sim_port wall
  sim_port=$(start_sim "$dir")
  wall=$(python3 "$here/poller_minimal.py" "127.0.0.1:$sim_port" "$dir/out" "$N" "$LIMIT" "$POLL_MS")
  report "minimal poller" "$wall" "$sim_port"
  kill "$(cat "$dir/sim.pid")" 2>/dev/null || true
}

for r in $(seq "$REPEATS"); do
  echo "-- run $r"
  dir=$(mktemp -d); vidkeep_run "$dir"; rm -rf "$dir"
  dir=$(mktemp -d); peer_run "$dir"; rm -rf "$dir"
done
