#!/usr/bin/env bash
# N results of SIZE archived at once by the daemon: `vidkeep run` with `download_concurrency = N`
# on a `vidkeep simulate` whose tasks all finish after 1 s with videos padded to SIZE (generated
# as they are sent), N specs dropped at once; timed until all N are archived, peak RSS of the
# daemon (VmHWM). In the same run, the peers fetch N files of SIZE from a loopback sendfile server
# into the same kind of store: `rclone copy --transfers N` and `curl -Z` (parallel).
#
#   bash bench/archive_many.sh [N] [SIZE_BYTES] [RUNS]    (default 30 104857600 3)
#
# PEERS=0 skips the peers (for the CPU per job: `PEERS=0 bash bench/archive_many.sh 500 1048576`).
#
# Environment: VIDKEEP_BIN (default target/release/vidkeep), TARGET (local or s3; s3 needs
# VIDKEEP_MOTO_SERVER), VIDKEEP_BENCH_STORAGE (lines appended to [storage]), VIDKEEP_BENCH_ENV.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${VIDKEEP_BIN:-target/release/vidkeep}
N=${1:-30}
SIZE=${2:-104857600}
RUNS=${3:-3}
TARGET=${TARGET:-local}
MOTO=${VIDKEEP_MOTO_SERVER:-$(command -v moto_server || echo target/ci-venv/bin/moto_server)}
WORK=$(mktemp -d -p "${BENCH_TMP:-/var/tmp}")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/src"
for i in $(seq "$N"); do truncate -s "$SIZE" "$WORK/src/v$i.mp4"; done
SRC_PORT=$(port)
python3 bench/sendfile_server.py "$WORK/src" "$SRC_PORT" &
PIDS+=($!)
S3_PORT=$(port)
if [ "$TARGET" = s3 ]; then
  "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.2; done
  curl -sf -X PUT "http://127.0.0.1:$S3_PORT/bench" >/dev/null
fi
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other
  RCLONE_CONFIG_MOTO_ENDPOINT="http://127.0.0.1:$S3_PORT" RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=bench
  RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=bench-secret
  RCLONE_CONFIG_SRC_TYPE=http RCLONE_CONFIG_SRC_URL="http://127.0.0.1:$SRC_PORT/" rclone --config /dev/null)

daemon_run() {
  local dir=$1 sim_port http_port
  sim_port=$(port)
  http_port=$(port)
  printf 'latency_min = "1s"\nlatency_max = "1s"\nmodel_limit = %s\nvideo_bytes = %s\n' "$N" "$SIZE" >"$dir/sim.toml"
  "$BIN" simulate --listen "127.0.0.1:$sim_port" --config "$dir/sim.toml" >"$dir/sim.log" 2>&1 &
  local sim=$!
  mkdir -p "$dir/inbox" "$dir/stage"
  write_config "$dir" "$sim_port" "$http_port"
  if [ "$TARGET" = s3 ]; then
    sed -i "s|^url = .*archive\"|url = \"s3://bench/vk\"\nendpoint = \"http://127.0.0.1:$S3_PORT\"\nallow_http = true|" "$dir/vk.toml"
  fi
  sed -i "s|^\[storage\]|[storage]\n${VIDKEEP_BENCH_STORAGE:-}|" "$dir/vk.toml"
  sed -i "s|^\[api\]|[api]\npoll_interval = \"200ms\"\nmax_in_flight = $N|" "$dir/vk.toml"
  printf '[jobs]\ndownload_concurrency = %s\n[archive]\nallowed_networks = ["127.0.0.0/8"]\nmax_bytes = 1099511627776\n[probe]\nenabled = false\n' "$N" >>"$dir/vk.toml"
  for i in $(seq "$N"); do
    printf '{"model": "viduq1-text", "prompt": "benchmark result %s"}' "$i" >"$dir/stage/spec-$i.json"
  done
  env ${VIDKEEP_BENCH_ENV:-} VIDKEEP_BENCH_KEY=sim-key.sim-secret "$BIN" run --config "$dir/vk.toml" >"$dir/vk.log" 2>&1 &
  local vk=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$http_port/readyz" >/dev/null && break; sleep 0.1; done
  python3 - "$dir" "$N" "$vk" <<'PY'
import os, sqlite3, sys, time
d, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stage, inbox = os.path.join(d, "stage"), os.path.join(d, "inbox")
cpu = lambda: sum(map(int, open(f"/proc/{pid}/stat").read().split(")")[1].split()[11:13])) / os.sysconf("SC_CLK_TCK")
cpu0, t0 = cpu(), time.monotonic()
for name in sorted(os.listdir(stage)):
    os.rename(os.path.join(stage, name), os.path.join(inbox, name))
db = sqlite3.connect(os.path.join(d, "catalog.sqlite"), timeout=30)
while True:
    try:
        done = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'archived'").fetchone()[0]
        bad = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'failed'").fetchone()[0]
    except sqlite3.OperationalError:
        done, bad = 0, 0
    if bad:
        sys.exit(f"{bad} jobs failed; see {d}/vk.log")
    if done >= n:
        break
    if time.monotonic() - t0 > 600:
        sys.exit("not all archived in 600 s")
    time.sleep(0.05)
wall = time.monotonic() - t0
hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
print(f"vidkeep\t{wall:.2f}\t{hwm}\t{cpu() - cpu0:.2f}")
PY
  kill "$vk" "$sim" 2>/dev/null || true
  wait "$vk" "$sim" 2>/dev/null || true
}

timed() { # timed NAME CMD...: "NAME wall rss_kib"
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/err.txt" || { cat "$WORK/err.txt" >&2; exit 1; }
  t1=$(date +%s.%N)
  printf '%s\t%s\t%s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(awk -F': ' '/Maximum resident set size/{print $2}' "$WORK/time.txt")"
}

RESULTS="$WORK/results.tsv"
for run in $(seq "$RUNS"); do
  dir=$(mktemp -d -p "$WORK")
  daemon_run "$dir" | tee -a "$RESULTS"
  rm -rf "$dir"
  [ "$TARGET" = s3 ] && { "${RCLONE[@]}" purge moto:bench/vk >/dev/null 2>&1 || true; }
  if [ "${PEERS:-1}" = 0 ]; then
    continue
  elif [ "$TARGET" = s3 ]; then
    timed "rclone-copy-transfers-$N" "${RCLONE[@]}" copy --transfers "$N" --s3-no-head src: moto:bench/rclone | tee -a "$RESULTS"
    "${RCLONE[@]}" purge moto:bench/rclone >/dev/null 2>&1 || true
  else
    timed "rclone-copy-transfers-$N" "${RCLONE[@]}" copy --transfers "$N" src: "$WORK/rclone" | tee -a "$RESULTS"
    rm -rf "$WORK/rclone"
    args=()
    for i in $(seq "$N"); do args+=(-o "$WORK/curl/v$i.mp4" "http://127.0.0.1:$SRC_PORT/v$i.mp4"); done
    mkdir -p "$WORK/curl"
    timed curl-Z curl -s -Z --parallel-max "$N" "${args[@]}" | tee -a "$RESULTS"
    rm -rf "$WORK/curl"
  fi
done
python3 - "$RESULTS" "$N" <<'PY'
import collections, statistics, sys
rows, cpu = collections.defaultdict(list), []
n = int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows[f[0]].append((float(f[1]), int(f[2]) / 1024))
    if len(f) > 3:
        cpu.append(float(f[3]) * 1000 / n)
mmm = lambda xs: "{:.2f} / {:.2f} / {:.2f}".format(min(xs), statistics.median(xs), max(xs))
print("\ntool | wall s min/med/max | peak RSS MiB min/med/max")
for name, v in rows.items():
    print(f"{name} | {mmm([w for w, _ in v])} | {mmm([r for _, r in v])}")
if cpu:
    print(f"vidkeep CPU (user+sys) per result, ms: {mmm(cpu)}")
PY
