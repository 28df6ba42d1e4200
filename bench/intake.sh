#!/usr/bin/env bash
# Intake throughput: N specs moved into the inbox at once (renames, as the README asks writers to
# do), timed until every one is recorded in the catalogue and none is left in the inbox; peak RSS
# of the daemon (VmHWM). Then the peer: bench/intake_naive.py doing the same durable work
# (read, parse, SHA-256, insert into SQLite WAL + synchronous=FULL, rename, record the move),
# naive (2 commits per file) and batched (2 commits per 1,000 files), in the same run.
#   bash bench/intake.sh [BIN] [N] [REPEATS]     BIN defaults to target/release/vidkeep
set -euo pipefail
BIN=${1:-target/release/vidkeep}
N=${2:-10000}
REPEATS=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/lib.sh"

one_run() {
  local dir=$1
  local sim_port http_port
  sim_port=$(port); http_port=$(port)
  # A slow platform: submissions go on during intake, as they would, without finishing any job.
  printf 'latency_min = "600s"\nlatency_max = "600s"\n' >"$dir/sim.toml"
  "$BIN" simulate --listen "127.0.0.1:$sim_port" --config "$dir/sim.toml" >"$dir/sim.log" 2>&1 &
  local sim=$!
  mkdir -p "$dir/inbox" "$dir/stage"
  write_config "$dir" "$sim_port" "$http_port"
  write_specs "$dir/stage" "$N" "benchmark spec: a harbour at dawn, number"
  local vk
  start_daemon "$dir" "$http_port"
  python3 - "$dir" "$N" "$vk" <<'PY'
import os, sqlite3, sys, time
d, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stage, inbox = os.path.join(d, "stage"), os.path.join(d, "inbox")
cpu0 = sum(map(int, open(f"/proc/{pid}/stat").read().split(")")[1].split()[11:13]))
t0 = time.monotonic()
for name in sorted(os.listdir(stage)):
    os.rename(os.path.join(stage, name), os.path.join(inbox, name))
db = sqlite3.connect(os.path.join(d, "catalog.sqlite"), timeout=30)
while True:
    left = sum(1 for e in os.scandir(inbox) if e.is_file())
    jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    if left == 0 and jobs >= n:
        break
    time.sleep(0.02)
wall = time.monotonic() - t0
cpu = (sum(map(int, open(f"/proc/{pid}/stat").read().split(")")[1].split()[11:13])) - cpu0) / os.sysconf("SC_CLK_TCK")
hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
print(f"vidkeep: {n} specs recorded and moved in {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {hwm / 1024:.1f} MiB")
PY
  kill "$vk" "$sim" 2>/dev/null || true
  wait "$vk" "$sim" 2>/dev/null || true
}

for r in $(seq "$REPEATS"); do
  dir=$(mktemp -d)
  echo "-- run $r"
  one_run "$dir"
  rm -rf "$dir"
  for batch in 1 1000; do
    dir=$(mktemp -d)
    python3 "$here/intake_naive.py" "$dir" "$N" "$batch"
    rm -rf "$dir"
  done
done
