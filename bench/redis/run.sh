#!/usr/bin/env bash
# Benchmarks tiercache's Redis client against redis-benchmark and hiredis on GET, and prints a
# summary table with the ratios the client aims at:
#
#   1. redis-benchmark -c 1 -P 1 -t get              one connection, one request at a time
#   2. tiercache redis-bench --mode sync, 1 client   the blocking API, one thread
#   2'. the same with --spin-us 0                     never polls for the reply before sleeping
#   3. hiredis, sync, 1 client                       (tiercache_hiredis_bench)
#   4. redis-benchmark -c 1 -P 64 -t get             one connection, 64 pipelined
#   5. tiercache redis-bench --mode async, 1 x 64    callbacks keeping 64 requests in flight
#   6. tiercache redis-bench --mode sync, 32 clients 32 threads sharing one Client
#
#   targets: 2/1 >= 0.95, 5/4 >= 0.8, 6/2 >= 3; 2'/1, 2/3 and 2'/3 are printed for reference.
#
# Every run GETs 100-byte values: tiercache and hiredis GET keys they SET first; redis-benchmark
# (without -r) GETs its one key "key:__rand_int__", which this script SETs to 100 bytes.
# redis-benchmark has no duration flag: a short probe measures its rate, and -n is sized from
# it so that the run takes about BENCH_SECONDS.
#
# Usage: bench/redis/run.sh
# Environment:
#   REDIS_URL      redis://host:port of a server to use (plain TCP, no password) instead of a
#                  private redis-server started here on a free 127.0.0.1 port in a temp dir
#   BENCH_SECONDS  seconds per run (default 5)
#   BUILD_DIR      build directory (default: build, at the repository root)
#   BUILD_TYPE     Release (default) or RelWithDebInfo
#   CMAKE_ARGS     extra arguments for the configure step, e.g. "-DTIERCACHE_WERROR=ON"
#   JOBS           parallel build jobs (default: nproc)
#   SKIP_BUILD=1   run what is already built
# Outputs: $BUILD_DIR/bench/redis/*.txt, the output of each run.
#
# The numbers are only as quiet as the machine: the load average is printed before and after.
# On a 2-core machine the client, its I/O thread and redis-server share the two cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
build_type=${BUILD_TYPE:-Release}
jobs=${JOBS:-$(nproc)}
seconds=${BENCH_SECONDS:-5}
# Probe lengths (requests) for sizing redis-benchmark's -n: well under a second each.
readonly PROBE_REQUESTS_P1=20000
readonly PROBE_REQUESTS_P64=400000
readonly VALUE_SIZE=100
readonly KEYS=1000

case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) echo "run.sh: BUILD_TYPE must be Release or RelWithDebInfo, not '$build_type'" >&2; exit 2 ;;
esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "run.sh: BENCH_SECONDS must be a whole number of seconds >= 1, not '$seconds'" >&2
  exit 2
fi
for tool in redis-benchmark redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (scripts/setup.sh)" >&2; exit 1; }
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  # shellcheck disable=SC2086  # CMAKE_ARGS is a list of words on purpose
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
    -DTIERCACHE_BUILD_TOOLS=ON -DTIERCACHE_BUILD_BENCH=ON ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$build_dir" --target tiercache_cli tiercache_hiredis_bench -j "$jobs"
fi

tiercache_bin=$build_dir/tools/tiercache
hiredis_bin=$build_dir/bench/tiercache_hiredis_bench
out_dir=$build_dir/bench/redis
if [[ ! -x "$tiercache_bin" ]]; then
  echo "run.sh: $tiercache_bin was not built" >&2
  exit 1
fi
if [[ ! -x "$hiredis_bin" ]]; then
  echo "run.sh: $hiredis_bin was not built (is libhiredis-dev installed?); skipping hiredis" >&2
  hiredis_bin=
fi
mkdir -p "$out_dir"

# ---- the server ------------------------------------------------------------------------------
tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/tiercache-redis-bench.XXXXXX")
server_started=0
host=127.0.0.1
port=

stop_server() {
  if [[ "$server_started" == 1 ]]; then
    redis-cli -h "$host" -p "$port" shutdown nosave >/dev/null 2>&1 || true
    local pid
    pid=$(cat "$tmp_dir/redis.pid" 2>/dev/null || true)
    # Wait (a few seconds at most) for it to go, so the temp dir can be removed.
    if [[ -n "$pid" ]]; then
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  rm -rf "$tmp_dir"
}
trap stop_server EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -n "${REDIS_URL:-}" ]]; then
  if ! [[ "$REDIS_URL" =~ ^redis://([^:/@]+)(:([0-9]+))?/?$ ]]; then
    echo "run.sh: REDIS_URL must be redis://host[:port] (redis-benchmark gets host and port)" >&2
    exit 2
  fi
  host=${BASH_REMATCH[1]}
  port=${BASH_REMATCH[3]:-6379}
else
  command -v redis-server >/dev/null || { echo "run.sh: redis-server not found" >&2; exit 1; }
  for _ in $(seq 100); do
    candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! port_in_use "$candidate"; then port=$candidate; break; fi
  done
  [[ -n "$port" ]] || { echo "run.sh: no free port found" >&2; exit 1; }
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --dir "$tmp_dir" --pidfile "$tmp_dir/redis.pid" --logfile "$tmp_dir/redis.log"
  server_started=1
  for _ in $(seq 100); do
    redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  redis-cli -h "$host" -p "$port" ping >/dev/null || {
    echo "run.sh: redis-server did not start; log:" >&2
    cat "$tmp_dir/redis.log" >&2
    exit 1
  }
fi
url="redis://$host:$port"
echo "== server: $url ($(redis-cli -h "$host" -p "$port" info server | tr -d '\r' |
  sed -n 's/^redis_version:/redis /p'))"
redis-cli -h "$host" -p "$port" set key:__rand_int__ "$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' v)" >/dev/null

# ---- the runs --------------------------------------------------------------------------------
# Each run leaves its output in $out_dir/<name>.txt; the summary parses them.

# redis_benchmark NAME PIPELINE PROBE_REQUESTS
redis_benchmark() {
  local name=$1 pipeline=$2 probe=$3 rate requests
  rate=$(redis-benchmark -h "$host" -p "$port" -c 1 -P "$pipeline" -t get -n "$probe" --csv |
    python3 -c 'import csv,sys; rows=list(csv.DictReader(sys.stdin)); print(rows[0]["rps"])')
  requests=$(python3 -c "import math; print(max(1000, math.ceil(float('$rate') * $seconds)))")
  echo "-- $name: redis-benchmark -c 1 -P $pipeline -t get -n $requests (probe: $rate/s)"
  redis-benchmark -h "$host" -p "$port" -c 1 -P "$pipeline" -t get -n "$requests" --csv |
    tee "$out_dir/$name.txt"
}

# tiercache_bench NAME ARGS...
tiercache_bench() {
  local name=$1
  shift
  echo "-- $name: tiercache redis-bench $*"
  "$tiercache_bin" redis-bench --url "$url" --seconds "$seconds" --value-size "$VALUE_SIZE" \
    --keys "$KEYS" "$@" | tee "$out_dir/$name.txt"
}

echo "== load before: $(uptime)"
redis_benchmark rb_p1 1 "$PROBE_REQUESTS_P1"
tiercache_bench tc_sync1 --mode sync --clients 1
tiercache_bench tc_sync1_nospin --mode sync --clients 1 --spin-us 0
if [[ -n "$hiredis_bin" ]]; then
  echo "-- hiredis_sync1: tiercache_hiredis_bench"
  "$hiredis_bin" --host "$host" --port "$port" --seconds "$seconds" --value-size "$VALUE_SIZE" \
    --keys "$KEYS" | tee "$out_dir/hiredis_sync1.txt"
else
  : >"$out_dir/hiredis_sync1.txt"
fi
redis_benchmark rb_p64 64 "$PROBE_REQUESTS_P64"
tiercache_bench tc_async64 --mode async --clients 1 --inflight 64
tiercache_bench tc_sync32 --mode sync --clients 32
echo "== load after: $(uptime)"

python3 - "$out_dir" "$seconds" <<'PY'
import csv
import os
import sys

out_dir, seconds = sys.argv[1], sys.argv[2]

def key_values(name):
    """The last line of key=value pairs of a tiercache/hiredis run."""
    path = os.path.join(out_dir, name + ".txt")
    lines = [l for l in open(path).read().splitlines() if "ops_per_s=" in l and not l.startswith("#")]
    if not lines:
        return None
    fields = dict(kv.split("=", 1) for kv in lines[-1].split())
    return float(fields["ops_per_s"]), float(fields["p50_us"]), float(fields["p99_us"])

def redis_benchmark(name):
    with open(os.path.join(out_dir, name + ".txt")) as f:
        row = next(csv.DictReader(f))
    return (float(row["rps"]), 1000 * float(row["p50_latency_ms"]),
            1000 * float(row["p99_latency_ms"]))

runs = [
    ("rb_p1", "redis-benchmark -c 1 -P 1", redis_benchmark),
    ("tc_sync1", "tiercache sync, 1 client", key_values),
    ("tc_sync1_nospin", "tiercache sync, 1 client, no spin", key_values),
    ("hiredis_sync1", "hiredis sync, 1 client", key_values),
    ("rb_p64", "redis-benchmark -c 1 -P 64", redis_benchmark),
    ("tc_async64", "tiercache async, 1 x 64 in flight", key_values),
    ("tc_sync32", "tiercache sync, 32 clients", key_values),
]
results = {}
print()
print(f"Summary (GET of {100} B values, {seconds} s per run; single runs, noisy)")
header = f"{'run':<36} {'ops/s':>11} {'p50 us':>8} {'p99 us':>8}"
print(header)
print("-" * len(header))
for name, label, parse in runs:
    try:
        results[name] = parse(name)
    except (OSError, StopIteration, KeyError, ValueError):
        results[name] = None
    r = results[name]
    if r is None:
        print(f"{label:<36} {'-':>11} {'-':>8} {'-':>8}")
    else:
        print(f"{label:<36} {r[0]:>11,.0f} {r[1]:>8.1f} {r[2]:>8.1f}")

print()
header = f"{'ratio (ops/s)':<50} {'value':>6} {'target':>8}  verdict"
print(header)
print("-" * len(header))
ratios = [
    ("tiercache sync-1 / redis-benchmark -P 1", "tc_sync1", "rb_p1", 0.95),
    ("tiercache async-64 / redis-benchmark -P 64", "tc_async64", "rb_p64", 0.8),
    ("tiercache sync-32 / tiercache sync-1", "tc_sync32", "tc_sync1", 3.0),
    ("tiercache sync-1 / hiredis sync-1", "tc_sync1", "hiredis_sync1", None),
    ("tiercache sync-1 no spin / redis-benchmark -P 1", "tc_sync1_nospin", "rb_p1", None),
    ("tiercache sync-1 no spin / hiredis sync-1", "tc_sync1_nospin", "hiredis_sync1", None),
]
for label, a, b, target in ratios:
    if results.get(a) is None or results.get(b) is None or results[b][0] == 0:
        print(f"{label:<50} {'-':>6}")
        continue
    value = results[a][0] / results[b][0]
    goal = f">= {target:g}" if target is not None else "-"
    verdict = ("ok" if value >= target else "BELOW") if target is not None else "(reference)"
    print(f"{label:<50} {value:>6.2f} {goal:>8}  {verdict}")
PY
