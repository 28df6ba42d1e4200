#!/usr/bin/env bash
# Benchmark: archive one 1 GiB result into a local S3 server (moto) with vidkeep's archiver, then
# `rclone copyurl` the same URL into the same server; print throughput and peak RSS of each.
#
#   bash bench/s3.sh [SIZE_BYTES]        (default 1073741824)
#
# Needs: moto_server ($VIDKEEP_MOTO_SERVER or on PATH; .ci/run installs one into target/ci-venv),
# rclone (Debian: apt-get install rclone), /usr/bin/time (Debian: time). Builds vidkeep in release
# mode unless VIDKEEP_BIN points at a binary. Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1073741824}
MOTO=${VIDKEEP_MOTO_SERVER:-$(command -v moto_server || true)}
[ -x "${MOTO:-}" ] || { echo "no moto_server: set VIDKEEP_MOTO_SERVER" >&2; exit 2; }
command -v rclone >/dev/null || { echo "no rclone: apt-get install rclone" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "no /usr/bin/time: apt-get install time" >&2; exit 2; }
if [ -z "${VIDKEEP_BIN:-}" ]; then
  cargo build --release --locked --quiet
  VIDKEEP_BIN=target/release/vidkeep
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

S3_PORT=$(free_port)
"$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
SIM_PORT=$(free_port)
cat >"$WORK/sim.toml" <<EOF
latency_min = "100ms"
latency_max = "200ms"
video_bytes = $SIZE
EOF
"$VIDKEEP_BIN" simulate --listen "127.0.0.1:$SIM_PORT" --config "$WORK/sim.toml" >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && curl -s -o /dev/null "http://127.0.0.1:$SIM_PORT/_sim/stats" && break
  sleep 0.2
done
curl -sf -X PUT "http://127.0.0.1:$S3_PORT/vidkeep-bench" >/dev/null

# One task on the simulator, for a result URL that serves SIZE bytes.
API="http://127.0.0.1:$SIM_PORT/api/paas/v4"
AUTH="Authorization: Bearer sim-key.sim-secret"
TASK=$(curl -sf -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"model":"viduq1-text","prompt":"benchmark"}' "$API/videos/generations" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
URL=""
for _ in $(seq 100); do
  URL=$(curl -sf -H "$AUTH" "$API/async-result/$TASK" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["video_result"][0]["url"] if r.get("task_status") == "SUCCESS" else "")')
  [ -n "$URL" ] && break
  sleep 0.2
done
[ -n "$URL" ] || { echo "the simulator did not finish the task" >&2; exit 1; }
WANT=$(curl -sf "http://127.0.0.1:$SIM_PORT/_sim/tasks/$TASK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["video_sha256"])')

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
cat >"$WORK/vidkeep.toml" <<EOF
[storage]
url = "s3://vidkeep-bench/vidkeep"
endpoint = "http://127.0.0.1:$S3_PORT"
allow_http = true
${VIDKEEP_BENCH_STORAGE:-}
EOF

now() { date +%s.%N; }
# vidkeep: the daemon's archiver (stream, SHA-256, multipart to staging, copy with metadata).
T0=$(now)
RUST_LOG=${RUST_LOG:-warn,vidkeep::archive=debug} /usr/bin/time -v -o "$WORK/vidkeep.time" "$VIDKEEP_BIN" archive-url --config "$WORK/vidkeep.toml" "$URL" bench/video.mp4 \
  >"$WORK/vidkeep.json"
T1=$(now)
GOT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$WORK/vidkeep.json")
[ "$GOT" = "$WANT" ] || { echo "vidkeep stored sha256 $GOT, the simulator served $WANT" >&2; exit 1; }

# rclone copyurl into the same server (AWS_CA_BUNDLE breaks rclone's S3 remotes; moto needs --s3-no-head).
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other
  RCLONE_CONFIG_MOTO_ENDPOINT="http://127.0.0.1:$S3_PORT" RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=bench
  RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=bench-secret rclone --config /dev/null)
T2=$(now)
/usr/bin/time -v -o "$WORK/rclone.time" "${RCLONE[@]}" copyurl --s3-no-head "$URL" moto:vidkeep-bench/rclone/video.mp4
T3=$(now)
RCLONE_SIZE=$("${RCLONE[@]}" size --json moto:vidkeep-bench/rclone/ | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
[ "$RCLONE_SIZE" = "$SIZE" ] || { echo "rclone stored $RCLONE_SIZE bytes, expected $SIZE" >&2; exit 1; }

rss() { awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$1"; }
python3 - "$SIZE" "$T0" "$T1" "$T2" "$T3" "$(rss "$WORK/vidkeep.time")" "$(rss "$WORK/rclone.time")" <<'EOF'
import sys
size, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:6])
vk_rss, rc_rss = sys.argv[6], sys.argv[7]
mib = size / 1048576
vk, rc = t1 - t0, t3 - t2
print(f"size: {mib:.0f} MiB")
print(f"vidkeep archive-url: {vk:.2f} s, {mib / vk:.1f} MiB/s, peak RSS {vk_rss} MiB")
print(f"rclone copyurl:      {rc:.2f} s, {mib / rc:.1f} MiB/s, peak RSS {rc_rss} MiB")
print(f"throughput ratio vidkeep/rclone: {rc / vk:.2f}x")
EOF
