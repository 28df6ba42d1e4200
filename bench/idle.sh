#!/usr/bin/env bash
# Idle cost of the daemon: CPU seconds and RSS of `vidkeep run` with an empty inbox over SECONDS,
# and the number of inbox scans it made (vidkeep_intake_scans_total). The peer, an `ls` of the
# inbox once a second (as the performance issue's peer does), runs meanwhile; its own CPU (the
# `ls` processes' user + system time) is reported beside vidkeep's.
#   bash bench/idle.sh [BIN] [SECONDS] [DONE_FILES]     BIN defaults to target/release/vidkeep
# DONE_FILES (default 0) puts that many filed specs and reports in inbox/done/ first, as a
# long-running daemon has (issue 14 benchmark 1: idle must not grow with done/).
set -euo pipefail
BIN=${1:-target/release/vidkeep}
SECS=${2:-60}
DONE_FILES=${3:-0}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
sim_port=$(port); http_port=$(port)
"$BIN" simulate --listen "127.0.0.1:$sim_port" >"$dir/sim.log" 2>&1 &
sleep 0.5
mkdir -p "$dir/inbox/done"
python3 - "$dir/inbox/done" "$DONE_FILES" <<'PY'
import sys, os
done, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(done, f"spec-{i}.json"), "w") as f:
        f.write('{"model":"viduq1-text","prompt":"a filed spec %d"}' % i)
PY
write_config "$dir" "$sim_port" "$http_port"
VIDKEEP_BENCH_KEY=unused "$BIN" run --config "$dir/vk.toml" >"$dir/vk.log" 2>&1 &
vk=$!
sleep 3
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
t0=$(cpu "$vk")
peer=$(python3 - "$dir/inbox" "$SECS" <<'PY'
import resource, subprocess, sys, time
inbox, secs = sys.argv[1], int(sys.argv[2])
for _ in range(secs):
    subprocess.run(["ls", inbox], stdout=subprocess.DEVNULL, check=True)
    time.sleep(1)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{ru.ru_utime + ru.ru_stime:.3f}")
PY
)
t1=$(cpu "$vk")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$vk/status")
scans=$(curl -s "127.0.0.1:$http_port/metrics" | awk '/^vidkeep_intake_scans_total/ {print $2}')
python3 - "$t0" "$t1" "$tck" "$SECS" "$rss" "${scans:-nan}" "$DONE_FILES" "$peer" <<'PY'
import sys
t0, t1, tck, secs, rss, scans, done, peer = map(float, sys.argv[1:])
cpu = (t1 - t0) / tck
shown = "n/a" if scans != scans else str(int(scans))
print(f"vidkeep idle ({int(done)} files in done/): {cpu:.2f} CPU-s in {secs:.0f} s = {100 * cpu / secs:.2f} % of a core, RSS {rss / 1024:.1f} MiB, {shown} scans")
print(f"peer, ls of the inbox every second: {peer:.2f} CPU-s = {100 * peer / secs:.2f} % of a core")
PY
