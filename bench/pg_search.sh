#!/usr/bin/env bash
# Search on each catalogue backend at scale (issue 12): the catalogue `benches/catalog.rs` filled
# and keeps in target/bench-catalog/ is copied into a PostgreSQL database with the product's own
# `vidkeep catalog copy` (timed; skipped when that database already exists), then the same
# searches are timed on both: the CLI (`search`, `jobs --tag`; a new process each run, so the
# open and the connection count, as they do for a user) and the web UI's grid and JSON API
# (`vidkeep serve`, a new HTTP connection per request). p50 / p95 / max ms of RUNS runs each,
# after one unmeasured warm-up run; the backends alternate query by query.
#
#   VIDKEEP_BENCH_JOBS=1000000 cargo bench --bench catalog     # fills the SQLite catalogue once
#   pg_env=$(scripts/pg-test-cluster.sh start) && eval "$pg_env"
#   bash bench/pg_search.sh [BIN] [JOBS] [RUNS]                 # defaults: release build, 1000000, 20
#
# Environment: VIDKEEP_TEST_PG and PGPASSFILE as the cluster script exports them; PG_DB, the
# database to copy into (default vk_search_JOBS); LIMIT, the CLI's --limit (default 50: a screen
# of results, not a dump of a third of the catalogue).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${1:-target/release/vidkeep}
JOBS=${2:-1000000}
RUNS=${3:-20}
LIMIT=${LIMIT:-50}
PG_DB=${PG_DB:-vk_search_$JOBS}
: "${VIDKEEP_TEST_PG:?set it: pg_env=\$(scripts/pg-test-cluster.sh start) && eval \"\$pg_env\"}"
cat="target/bench-catalog/jobs-$JOBS-v1.sqlite"
[ -f "$cat" ] || { echo "no $cat: run VIDKEEP_BENCH_JOBS=$JOBS cargo bench --bench catalog first" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

exists=$(psql -X -A -t -d "$VIDKEEP_TEST_PG" -c "SELECT COUNT(*) FROM pg_database WHERE datname = '$PG_DB'")
if [ "$exists" = 0 ]; then
  url=$(pg_db "$VIDKEEP_TEST_PG" "$PG_DB")
  echo "load average before the copy: $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f "%e %M %U %S" -o "$dir/time" "$BIN" catalog copy --from "sqlite:$cat" --to "$url" >"$dir/copy.log" 2>&1 \
    || { cat "$dir/copy.log" >&2; exit 1; }
  read -r wall rss user sys <"$dir/time"
  echo "catalog copy of $JOBS jobs: ${wall} s, peak RSS $((rss / 1024)) MiB, CPU ${user} s user + ${sys} s sys (vidkeep)"
  # What autovacuum would do on a live database soon after (a fresh copy has no statistics and no
  # visibility map yet); timed apart from the copy.
  t0=$(date +%s.%N)
  psql -X -q -d "$url" -c 'VACUUM (ANALYZE)' >/dev/null
  echo "VACUUM (ANALYZE) after the copy: $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s"
else
  url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$VIDKEEP_TEST_PG" "$PG_DB")
  echo "reusing the database $PG_DB"
fi
[ "${COPY_ONLY:-0}" = 1 ] && { echo "COPY_ONLY=1: no searches"; exit 0; }
echo "database size: $(psql -X -A -t -d "$url" -c "SELECT pg_size_pretty(pg_database_size(current_database()))"), SQLite file: $(du -h "$cat" | cut -f1)"

# Two configs; the reading commands take no lock and write nothing, so the SQLite one reads the
# cached file in place.
sim_port=$(port)
mkdir -p "$dir/sqlite/inbox" "$dir/pg/inbox"
write_config "$dir/sqlite" "$sim_port" "$(port)"
sed -i "s|^path = .*|path = \"$PWD/$cat\"|" "$dir/sqlite/vk.toml"
write_config_pg "$dir/pg" "$sim_port" "$(port)" "$url"
origins=()
for b in sqlite pg; do
  "$BIN" serve --config "$dir/$b/vk.toml" >"$dir/$b/serve.log" 2>&1 &
  listen=$(sed -n 's/^listen = "\(.*\)"/\1/p' "$dir/$b/vk.toml")
  for _ in $(seq 300); do curl -sf "$listen/api/stamp" >/dev/null && break; sleep 0.1; done
  curl -sf "$listen/api/stamp" >/dev/null || { cat "$dir/$b/serve.log" >&2; exit 1; }
  origins+=("http://$listen")
done

echo "load average before the searches: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$BIN" "$RUNS" "$LIMIT" "$dir/sqlite/vk.toml" "$dir/pg/vk.toml" "${origins[@]}" <<'PY'
import math, re, subprocess, sys, time, urllib.request
binary, runs, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
configs = {"sqlite": sys.argv[4], "pg": sys.argv[5]}
origins = {"sqlite": sys.argv[6], "pg": sys.argv[7]}
cli = [
    ("vidkeep search fox", ["search", "fox"]),
    ("vidkeep search snow river", ["search", "snow", "river"]),
    ("vidkeep search 灯笼", ["search", "灯笼"]),
    ("vidkeep jobs --tag t3", ["jobs", "--tag", "t3"]),
]
web = [
    ("GET /?q=fox (grid)", "/?q=fox"),
    ("GET /?q=snow+river (grid)", "/?q=snow+river"),
    ("GET /?q=灯笼 (grid)", "/?q=%E7%81%AF%E7%AC%BC"),
    ("GET /?tag=t3 (grid)", "/?tag=t3"),
    ("GET /api/jobs?q=dragon (JSON)", "/api/jobs?q=dragon"),
]

def run_cli(backend, args):
    out = subprocess.run([binary, *args, "--config", configs[backend], "--limit", limit],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{args} on {backend}: exit {out.returncode}: {out.stderr[-500:]}")
    return f"{len(out.stdout.splitlines())} lines"

def run_web(backend, path):
    with urllib.request.urlopen(origins[backend] + path, timeout=600) as r:
        body = r.read().decode()
    m = re.search(r">\s*([\d,]+)\s+job\(s\)", body) or re.search(r'"total":\s*(\d+)', body)
    return (m.group(1) + " jobs") if m else f"{len(body)} bytes"

def timed(call):
    t = time.monotonic()
    shown = call()
    return (time.monotonic() - t) * 1000, shown

def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]

print(f"{'query':<32} {'backend':<7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  found")
cases = [(name, lambda b, a=args: run_cli(b, a)) for name, args in cli] + \
        [(name, lambda b, p=path: run_web(b, p)) for name, path in web]
for name, call in cases:
    for backend in ("sqlite", "pg"):
        timed(lambda: call(backend))  # warm-up, not counted
        times, shown = [], ""
        for _ in range(runs):
            ms, shown = timed(lambda: call(backend))
            times.append(ms)
        print(f"{name:<32} {backend:<7} {pct(times, 50):>9.1f} {pct(times, 95):>9.1f} {max(times):>9.1f}  {shown}",
              flush=True)
PY
echo "load average after the searches: $(cut -d' ' -f1-3 /proc/loadavg)"
