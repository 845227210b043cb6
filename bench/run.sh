#!/usr/bin/env bash
# Builds and runs tiercache's benchmarks (LocalCache against the MutexLru baseline) and the
# memory-overhead program, then prints a summary: per benchmark, items/s of each cache and
# their ratio (LocalCache / MutexLru: above 1 means LocalCache is faster), and the
# per-entry memory overhead.
#
# Usage: bench/run.sh [Google Benchmark flags...]
#   bench/run.sh                                      # everything, default min time
#   bench/run.sh --benchmark_filter=read_zipf         # one workload
#   bench/run.sh --benchmark_repetitions=5            # the summary then uses the medians
# Environment:
#   BUILD_DIR   build directory (default: build, at the repository root)
#   BUILD_TYPE  Release (default) or RelWithDebInfo
#   CMAKE_ARGS  extra arguments for the configure step, e.g. "-DTIERCACHE_WERROR=ON"
#   JOBS        parallel build jobs (default: nproc)
#   SKIP_BUILD=1   run what is already built;  SKIP_MEMORY=1   skip the memory program
# Outputs (in $BUILD_DIR/bench/): results.json (Google Benchmark JSON), memory.txt.
#
# The numbers are only as quiet as the machine: the load average is printed before and
# after; on a 2-core machine, the 2-thread results need both cores idle.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
build_type=${BUILD_TYPE:-Release}
jobs=${JOBS:-$(nproc)}

case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) echo "run.sh: BUILD_TYPE must be Release or RelWithDebInfo, not '$build_type'" >&2; exit 2 ;;
esac

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  # shellcheck disable=SC2086  # CMAKE_ARGS is a list of words on purpose
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
    -DTIERCACHE_BUILD_BENCH=ON ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$build_dir" --target tiercache_bench tiercache_memory_overhead -j "$jobs"
fi

bench_bin=$build_dir/bench/tiercache_bench
memory_bin=$build_dir/bench/tiercache_memory_overhead
results=$build_dir/bench/results.json
memory=$build_dir/bench/memory.txt
if [[ ! -x "$bench_bin" ]]; then
  echo "run.sh: $bench_bin was not built (is libbenchmark-dev installed?)" >&2
  exit 1
fi

echo "== load before: $(uptime)"
"$bench_bin" --benchmark_out="$results" --benchmark_out_format=json "$@"
if [[ "${SKIP_MEMORY:-0}" != 1 ]]; then
  echo
  "$memory_bin" | tee "$memory"
else
  : >"$memory"
fi
echo "== load after: $(uptime)"

python3 - "$results" "$memory" <<'PY'
import json
import re
import sys

results_path, memory_path = sys.argv[1], sys.argv[2]
with open(results_path) as f:
    data = json.load(f)

# name: <workload>/<cache>[/real_time][/threads:N]
rows = {}  # (workload, threads) -> cache -> (items/s, hit ratio)
have_medians = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
for b in data["benchmarks"]:
    if have_medians and b.get("aggregate_name") != "median":
        continue
    if not have_medians and b.get("run_type") != "iteration":
        continue
    if b.get("error_occurred"):
        continue
    parts = b["run_name"].split("/")
    workload, cache = parts[0], parts[1]
    threads = b.get("threads", 1)
    rows.setdefault((workload, threads), {})[cache] = (
        b.get("items_per_second", 0.0), b.get("hit_ratio"))

def rate(x):
    return f"{x / 1e6:8.2f}M" if x else "        -"

def hit(x):
    return f"{x:.3f}" if x is not None else "-"

print()
print("Summary (%s; items/s aggregate over threads; ratio = tiercache / mutex_lru)"
      % ("medians of repetitions" if have_medians else "single runs"))
header = (f"{'benchmark':<12} {'thr':>3} {'tiercache':>10} {'mutex_lru':>10} {'ratio':>6}"
          f" {'hit(tc)':>8} {'hit(lru)':>8}")
print(header)
print("-" * len(header))
order = ["get_hit", "get_miss", "put_new", "put_replace", "mix", "read_zipf"]
for key in sorted(rows, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
    tc = rows[key].get("tiercache", (0.0, None))
    lru = rows[key].get("mutex_lru", (0.0, None))
    ratio = f"{tc[0] / lru[0]:6.2f}" if tc[0] and lru[0] else "     -"
    hits = key[0] in ("get_hit", "get_miss", "mix", "read_zipf")
    print(f"{key[0]:<12} {key[1]:>3} {rate(tc[0]):>10} {rate(lru[0]):>10} {ratio}"
          f" {hit(tc[1]) if hits else '-':>8} {hit(lru[1]) if hits else '-':>8}")

memory = []
with open(memory_path) as f:
    for line in f:
        if line.startswith("memory "):
            memory.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
if memory:
    print()
    print("Memory per entry beyond the 16 B of key + value (B/entry)")
    print(f"{'cache':<12} {'entries':>9} {'requested':>10} {'footprint':>10} {'allocs':>7}")
    for m in memory:
        print(f"{m['policy']:<12} {m['entries']:>9} {m['overhead_bytes_per_entry']:>10}"
              f" {m['footprint_bytes_per_entry']:>10} {m.get('allocs_per_entry', '-'):>7}")
PY
