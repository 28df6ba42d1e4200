#!/usr/bin/env bash
# Archive one result of each SIZE from a loopback sendfile server (bench/sendfile_server.py over
# sparse files: no disk space, no disk reads) with vidkeep's archiver (`vidkeep archive-url`, the
# daemon's own Archiver::fetch) into the local store and into S3 (moto), beside `curl -o`,
# `curl | sha256sum` and `rclone copyurl` in the same run. Wall time (process start to exit) and
# peak RSS (/usr/bin/time -v) of each; RUNS repeats; min / median / max and ratios at the end.
#
#   bash bench/archive.sh [SIZE_BYTES...]        (default 268435456 1073741824 4294967296)
#
# Environment: VIDKEEP_BIN (default target/release/vidkeep), RUNS (3), TARGETS ("local s3"),
# S3_MAX_SIZE (largest size also archived into moto, default 1073741824; moto keeps objects in
# memory), VIDKEEP_BENCH_STORAGE (lines appended to [storage]), VIDKEEP_BENCH_ENV (environment
# for vidkeep, e.g. MALLOC_ARENA_MAX=2), VIDKEEP_MOTO_SERVER (moto_server; .ci/run installs one
# into target/ci-venv). Needs rclone (Debian: apt-get install rclone) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${VIDKEEP_BIN:-target/release/vidkeep}
RUNS=${RUNS:-3}
TARGETS=${TARGETS:-local s3}
S3_MAX_SIZE=${S3_MAX_SIZE:-1073741824}
[ "$#" -gt 0 ] || set -- 268435456 1073741824 4294967296
MOTO=${VIDKEEP_MOTO_SERVER:-$(command -v moto_server || echo target/ci-venv/bin/moto_server)}
command -v rclone >/dev/null || { echo "no rclone: apt-get install rclone" >&2; exit 2; }

WORK=$(mktemp -d -p "${BENCH_TMP:-/var/tmp}")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/src" "$WORK/out"
for size in "$@"; do truncate -s "$size" "$WORK/src/v$size.mp4"; done
SRC_PORT=$(port)
python3 bench/sendfile_server.py "$WORK/src" "$SRC_PORT" &
PIDS+=($!)
S3_PORT=""
if [[ " $TARGETS " == *" s3 "* ]]; then
  [ -x "$MOTO" ] || { echo "no moto_server: set VIDKEEP_MOTO_SERVER" >&2; exit 2; }
  S3_PORT=$(port)
  "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
fi
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$SRC_PORT/" &&
    { [ -z "$S3_PORT" ] || curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; } && break
  sleep 0.2
done
[ -z "$S3_PORT" ] || curl -sf -X PUT "http://127.0.0.1:$S3_PORT/bench" >/dev/null

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
archive_toml() { # archive_toml FILE STORAGE_LINES...
  local file=$1
  shift
  {
    echo '[archive]'
    echo 'allowed_networks = ["127.0.0.0/8"]'
    echo 'max_bytes = 1099511627776'
    echo '[storage]'
    printf '%s\n' "$@"
    echo "${VIDKEEP_BENCH_STORAGE:-}"
  } >"$file"
}
archive_toml "$WORK/local.toml" "url = \"file://$WORK/out/vidkeep\""
S3_LINES=("url = \"s3://bench/vidkeep\"" "endpoint = \"http://127.0.0.1:$S3_PORT\"" "allow_http = true")
archive_toml "$WORK/s3.toml" "${S3_LINES[@]}"
archive_toml "$WORK/s3-direct.toml" "${S3_LINES[@]}" "sha256_metadata = false"
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other
  RCLONE_CONFIG_MOTO_ENDPOINT="http://127.0.0.1:$S3_PORT" RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=bench
  RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=bench-secret rclone --config /dev/null)

RESULTS="$WORK/results.tsv"
# measure NAME SIZE RUN CMD...: one line "name size run seconds peak_rss_kib" in RESULTS.
measure() {
  local name=$1 size=$2 run=$3
  shift 3
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" ||
    { echo "$name failed:" >&2; cat "$WORK/cmd.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  local rss
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$WORK/time.txt")
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$run" "$(echo "$t1 - $t0" | bc)" "$rss" | tee -a "$RESULTS"
}
read -r -a BENCH_ENV <<<"${VIDKEEP_BENCH_ENV:-}"
VK=(env "${BENCH_ENV[@]}" RUST_LOG=warn "$BIN" archive-url)
sha_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$1"; }
s3_clear() { "${RCLONE[@]}" purge moto:bench/"$1" >/dev/null 2>&1 || true; }

for size in "$@"; do
  url="http://127.0.0.1:$SRC_PORT/v$size.mp4"
  want=$(head -c "$size" /dev/zero | sha256sum | cut -d' ' -f1)
  for run in $(seq "$RUNS"); do
    if [[ " $TARGETS " == *" local "* ]]; then
      measure vidkeep-local "$size" "$run" "${VK[@]}" --config "$WORK/local.toml" "$url" bench/video.mp4
      [ "$(sha_of "$WORK/cmd.out")" = "$want" ] || { echo "vidkeep stored the wrong bytes" >&2; exit 1; }
      rm -rf "$WORK/out/vidkeep"
      measure curl-o "$size" "$run" curl -sf -o "$WORK/out/curl.mp4" "$url"
      rm -f "$WORK/out/curl.mp4"
      measure curl-sha256sum "$size" "$run" sh -c "curl -sf '$url' | sha256sum"
      [ "$(cut -d' ' -f1 "$WORK/cmd.out")" = "$want" ] || { echo "curl | sha256sum disagrees" >&2; exit 1; }
      measure rclone-local "$size" "$run" rclone --config /dev/null copyurl "$url" "$WORK/out/rclone/video.mp4"
      rm -rf "$WORK/out/rclone"
    fi
    if [[ " $TARGETS " == *" s3 "* ]] && [ "$size" -le "$S3_MAX_SIZE" ]; then
      measure vidkeep-s3 "$size" "$run" "${VK[@]}" --config "$WORK/s3.toml" "$url" bench/video.mp4
      [ "$(sha_of "$WORK/cmd.out")" = "$want" ] || { echo "vidkeep (s3) stored the wrong bytes" >&2; exit 1; }
      s3_clear vidkeep
      measure vidkeep-s3-nometa "$size" "$run" "${VK[@]}" --config "$WORK/s3-direct.toml" "$url" bench/video.mp4
      s3_clear vidkeep
      measure rclone-s3 "$size" "$run" "${RCLONE[@]}" copyurl --s3-no-head "$url" moto:bench/rclone/video.mp4
      s3_clear rclone
    fi
  done
done

python3 - "$RESULTS" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, size, run, secs, rss = line.split("\t")
    rows[(int(size), name)].append((float(secs), int(rss) / 1024))
def mmm(xs):
    xs = sorted(xs)
    return f"{xs[0]:.2f} / {statistics.median(xs):.2f} / {xs[-1]:.2f}"
print("\nsize MiB | tool | wall s min/med/max | MiB/s (median) | peak RSS MiB min/med/max")
for (size, name), v in sorted(rows.items()):
    secs = [s for s, _ in v]
    print(f"{size >> 20} | {name} | {mmm(secs)} | {size / 1048576 / statistics.median(secs):.0f} | {mmm([r for _, r in v])}")
print("\nratios (peer wall / vidkeep wall, per run: > 1 means vidkeep is faster)")
for (size, name) in sorted(rows):
    for vk, peers in (("vidkeep-local", ("curl-o", "curl-sha256sum", "rclone-local")),
                      ("vidkeep-s3", ("rclone-s3",)), ("vidkeep-s3-nometa", ("rclone-s3",))):
        if name != vk:
            continue
        for peer in peers:
            if (size, peer) in rows:
                r = [p[0] / m[0] for p, m in zip(rows[(size, peer)], rows[(size, vk)])]
                print(f"{size >> 20} MiB  {peer}/{vk}: {mmm(r)}")
PY
