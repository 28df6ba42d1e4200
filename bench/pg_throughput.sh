#!/usr/bin/env bash
# Throughput from intake to archived on each catalogue backend (issue 12): N specs renamed into
# the inbox(es) at once, timed until the catalogue holds N archived jobs (state archived or
# archived_with_warnings), on a `vidkeep simulate`
# with zero latency (a task is done at its first poll), three setups:
#   sqlite  1 daemon, SQLite catalogue (write_config)
#   pg1     1 daemon, a fresh PostgreSQL database
#   pg3     3 daemons, one fresh PostgreSQL database (the same [catalog] url), the same storage
#           root and simulator, each its own inbox; the specs dealt out over the three inboxes
# Every daemon has the same settings (below); the platform account's limit (the simulator's
# model_limit and [api] max_in_flight) is the same in all setups. Prints one line per run and a
# summary (median jobs/s, ratio to SQLite's median). The load average is printed at each run.
#
#   pg_env=$(scripts/pg-test-cluster.sh start) && eval "$pg_env"
#   bash bench/pg_throughput.sh [N] [RUNS]          defaults 600 3
#   scripts/pg-test-cluster.sh stop "$VIDKEEP_TEST_PG_DIR"
# The cluster script runs the server with fsync, synchronous_commit and full_page_writes off; for
# a fair comparison with SQLite's synchronous=FULL, restart it with them on (pg_ctl restart -o
# with the options in DATA/postmaster.opts, those three set to on), as BENCHMARKS.md says.
#
# Environment: VIDKEEP_BIN (default target/release/vidkeep), VIDKEEP_TEST_PG (a URL to the
# cluster, needed for pg1/pg3) and PGPASSFILE as the cluster script exports them, SETUPS (default
# "sqlite pg1 pg3"), POLL (the daemons' [api] poll_interval, default 200ms), IN_FLIGHT (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${VIDKEEP_BIN:-target/release/vidkeep}
N=${1:-600}
RUNS=${2:-3}
SETUPS=${SETUPS:-sqlite pg1 pg3}
POLL=${POLL:-200ms}
IN_FLIGHT=${IN_FLIGHT:-60}
WORK=$(mktemp -d -p "${BENCH_TMP:-/var/tmp}")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

one_run() { # one_run SETUP RUN: prints "SETUP<TAB>RUN<TAB>wall<TAB>jobs/s<TAB>daemon CPU s<TAB>load"
  local setup=$1 run=$2 root="$WORK/$1-$2" daemons=1 url="" sim_port
  [ "$setup" = pg3 ] && daemons=3
  mkdir -p "$root/stage"
  sim_port=$(port)
  printf 'latency_min = "0s"\nlatency_max = "0s"\nmodel_limit = %s\n' "$IN_FLIGHT" >"$root/sim.toml"
  "$BIN" simulate --listen "127.0.0.1:$sim_port" --config "$root/sim.toml" >"$root/sim.log" 2>&1 &
  local sim=$!
  PIDS+=("$sim")
  if [ "$setup" != sqlite ]; then
    : "${VIDKEEP_TEST_PG:?set it: pg_env=\$(scripts/pg-test-cluster.sh start) && eval \"\$pg_env\"}"
    url=$(pg_db "$VIDKEEP_TEST_PG" "vk_tp_${setup}_${run}_$$")
  fi
  local inboxes=() vks=() i dir http_port vk
  for i in $(seq "$daemons"); do
    dir="$root/d$i"
    mkdir -p "$dir/inbox"
    http_port=$(port)
    if [ -z "$url" ]; then
      write_config "$dir" "$sim_port" "$http_port"
    else
      write_config_pg "$dir" "$sim_port" "$http_port" "$url" "$root/archive"
    fi
    sed -i "s|^\[api\]|[api]\npoll_interval = \"$POLL\"\nmax_in_flight = $IN_FLIGHT|" "$dir/vk.toml"
    printf '[jobs]\ndownload_concurrency = 8\n[archive]\nallowed_networks = ["127.0.0.0/8"]\n[probe]\nenabled = false\n' >>"$dir/vk.toml"
    start_daemon "$dir" "$http_port"
    curl -sf "127.0.0.1:$http_port/readyz" >/dev/null || { cat "$dir/vk.log" >&2; exit 1; }
    PIDS+=("$vk")
    vks+=("$vk")
    inboxes+=("$dir/inbox")
  done
  write_specs "$root/stage" "$N" "throughput spec: a lantern on the river at night, number"
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  python3 - "$root/stage" "$N" "${url:-sqlite:$root/d1/catalog.sqlite}" "$(IFS=,; echo "${vks[*]}")" "${inboxes[@]}" <<'PY' |
import os, sqlite3, subprocess, sys, time
stage, n, where, pids, inboxes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(","), sys.argv[5:]
tick = os.sysconf("SC_CLK_TCK")
cpu = lambda: sum(sum(map(int, open(f"/proc/{p}/stat").read().split(")")[1].split()[11:13])) for p in pids) / tick
query = "SELECT SUM(CASE WHEN state IN ('archived', 'archived_with_warnings') THEN 1 ELSE 0 END), SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) FROM jobs"
if where.startswith("sqlite:"):
    db = sqlite3.connect(where[7:], timeout=30)
    def count():
        try:
            a, f = db.execute(query).fetchone()
            return a or 0, f or 0
        except sqlite3.OperationalError:
            return 0, 0
else:
    # One psql session for the whole run: a connection per poll would cost more CPU than the poll.
    psql = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", "-F", " ", "-d", where],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    def count():
        psql.stdin.write(query + ";\n")
        psql.stdin.flush()
        a, f = (psql.stdout.readline().split() + ["", ""])[:2]
        return int(a or 0), int(f or 0)
cpu0, t0 = cpu(), time.monotonic()
for i, name in enumerate(sorted(os.listdir(stage))):
    os.rename(os.path.join(stage, name), os.path.join(inboxes[i % len(inboxes)], name))
while True:
    done, bad = count()
    if bad:
        sys.exit(f"{bad} jobs failed; see the daemons' logs")
    if done >= n:
        break
    if time.monotonic() - t0 > 900:
        sys.exit(f"only {done} of {n} archived in 900 s")
    time.sleep(0.1)
wall = time.monotonic() - t0
if not where.startswith("sqlite:"):
    # Which daemon archived how many (the owner column), to stderr: all three must have worked.
    psql.stdin.write("SELECT string_agg(coalesce(owner, '-') || ': ' || c, ', ') FROM "
                     "(SELECT owner, COUNT(*) AS c FROM jobs GROUP BY owner ORDER BY owner) o;\n")
    psql.stdin.flush()
    print("  jobs by owner:", psql.stdout.readline().strip(), file=sys.stderr)
print(f"{wall:.2f}\t{n / wall:.2f}\t{cpu() - cpu0:.2f}")
PY
    while IFS=$'\t' read -r wall rate cpu; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$setup" "$run" "$wall" "$rate" "$cpu" "$load"
    done
  for vk in "${vks[@]}" "$sim"; do kill "$vk" 2>/dev/null || true; done
  for vk in "${vks[@]}" "$sim"; do wait "$vk" 2>/dev/null || true; done
  if [ -n "$url" ]; then
    psql -X -q -d "$VIDKEEP_TEST_PG" -c "DROP DATABASE \"vk_tp_${setup}_${run}_$$\"" >/dev/null
  fi
  rm -rf "$root"
}

RESULTS="$WORK/results.tsv"
if [ -n "${VIDKEEP_TEST_PG:-}" ]; then
  # scripts/pg-test-cluster.sh starts the server with fsync and synchronous_commit off: say which.
  echo "PostgreSQL: $(psql -X -A -t -d "$VIDKEEP_TEST_PG" -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) \
    FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers')")"
fi
printf 'setup\trun\twall s\tjobs/s\tdaemon CPU s\tload average at the drop\n'
# Runs interleaved (sqlite, pg1, pg3, sqlite, ...), so a change in the machine's load falls on
# every setup alike.
for run in $(seq "$RUNS"); do
  for setup in $SETUPS; do
    # Not in a pipeline: one_run's PIDS must reach this shell's cleanup.
    one_run "$setup" "$run" >"$WORK/row"
    tee -a "$RESULTS" <"$WORK/row"
  done
done
python3 - "$RESULTS" "$N" <<'PY'
import collections, statistics, sys
rates, cpus = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rates[f[0]].append(float(f[3]))
    cpus[f[0]].append(float(f[4]) * 1000 / int(sys.argv[2]))
base = statistics.median(rates["sqlite"]) if rates.get("sqlite") else None
print("\nsetup | jobs/s min / median / max | vs sqlite (median) | daemon CPU ms per job (median)")
for name, v in rates.items():
    ratio = f"{statistics.median(v) / base:.2f}x" if base else "-"
    print(f"{name} | {min(v):.1f} / {statistics.median(v):.1f} / {max(v):.1f} | {ratio} | {statistics.median(cpus[name]):.1f}")
PY
