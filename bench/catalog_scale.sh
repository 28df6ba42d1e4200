#!/usr/bin/env bash
# The catalogue at scale (issue 14, benchmark 5), on the catalogue `benches/catalog.rs` filled and
# keeps in target/bench-catalog/: `vidkeep export` of every job (wall time, peak RSS, rows) and
# daemon start-up (time from exec to the "vidkeep running" log line, peak RSS then and 3 s later).
#   VIDKEEP_BENCH_JOBS=1000000 cargo bench --bench catalog     # fills the catalogue once
#   bash bench/catalog_scale.sh [BIN] [JOBS] [RUNS]             # defaults: release build, 1000000, 3
set -euo pipefail
BIN=${1:-target/release/vidkeep}
JOBS=${2:-1000000}
RUNS=${3:-3}
cat="target/bench-catalog/jobs-$JOBS-v1.sqlite"
[ -f "$cat" ] || { echo "no $cat: run VIDKEEP_BENCH_JOBS=$JOBS cargo bench --bench catalog first" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
sim_port=$(port); http_port=$(port)
"$BIN" simulate --listen "127.0.0.1:$sim_port" >"$dir/sim.log" 2>&1 &
mkdir -p "$dir/inbox"
write_config "$dir" "$sim_port" "$http_port"
cp "$cat" "$dir/catalog.sqlite"
now() { date +%s.%N; }
# EXPORT=0 skips the exports (start-up only).
for format in $([ "${EXPORT:-1}" = 0 ] || echo csv json); do
  for run in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$dir/time" "$BIN" export --config "$dir/vk.toml" --format "$format" >"$dir/out"
    read -r wall rss <"$dir/time"
    echo "export --format $format, run $run: ${wall} s, peak RSS $((rss / 1024)) MiB, $(wc -c <"$dir/out") bytes, sha256 $(sha256sum <"$dir/out" | cut -c1-16)"
  done
done
for run in $(seq "$RUNS"); do
  start=$(now)
  # A log of its own per run: with one shared file, the first check could read the line the
  # previous run wrote before this run's shell truncated it (a start-up of "0.00 s").
  log="$dir/vk-$run.log"
  VIDKEEP_BENCH_KEY=unused "$BIN" run --config "$dir/vk.toml" >"$log" 2>&1 &
  vk=$!
  until grep -q "vidkeep running" "$log" 2>/dev/null; do
    kill -0 "$vk" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.01
  done
  up=$(python3 -c "print(f'{$(now) - $start:.2f}')")
  at_up=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$vk/status")
  sleep 3
  later=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$vk/status")
  kill -INT "$vk"; wait "$vk" || true
  echo "daemon start-up at $JOBS jobs, run $run: running after ${up} s, peak RSS ${at_up} MiB then, ${later} MiB 3 s later"
done
