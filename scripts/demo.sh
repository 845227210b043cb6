#!/usr/bin/env bash
# The tiercache demo, or the hit-ratio table of the L1 policy.
#
#   scripts/demo.sh [--no-setup] [--no-build] [--build-dir DIR] [DEMO OPTIONS...]
#   scripts/demo.sh --hit-ratio [--no-setup] [--no-build] [--build-dir DIR] [--traces DIR]
#                   [--no-zipf] [--no-traces]
#
# Default: installs the Debian packages that are missing (scripts/setup.sh), builds the
# `tiercache` program, and runs `tiercache demo` with DEMO OPTIONS (`tiercache demo --help`:
# --redis URL, --pods P, --users N, --seconds S, --report DIR, --db-latency-us U, --seed X,
# --rate R): the user service on SQLite + Redis with 4 pods, through its phases (about 60 s),
# ending with its table and the line
#   reads=R l1_hit_ratio=A l2_hit_ratio=B db_reads=D offload_pct=O p99_us=L stale_serves=S
# The demo starts its own redis-server on a free 127.0.0.1 port (unless --redis URL) and
# stops it at the end, also on failure or Ctrl-C; this script starts nothing else. Without
# --report DIR, the report goes to <build dir>/demo-report (report.html, metrics.prom,
# timeline.csv).
#
# --hit-ratio: the hit-ratio table of LocalCache (policy "tiercache") against LRU and the
# clairvoyant optimum, measured with `tiercache sim`, on synthetic Zipf workloads and -- when
# the repository has ../shared/traces beside it -- on the classic traces listed in
# ../shared/traces/README.md, next to that README's "best practical" reference hit ratio.
# Ends with one machine-readable line:
#   demo=sim rows=N trace_rows=T mean_shortfall=X max_shortfall=Y max_below_lru=Z
# shortfall = best practical - tiercache (percentage points; trace rows only, "na" if none);
# below_lru = LRU - tiercache (all rows).
#
#   --no-setup     do not run scripts/setup.sh (also: TIERCACHE_SKIP_SETUP=1)
#   --no-build     use the existing binary (quick re-runs)
#   --build-dir    build directory (default: build/; configured as Release if new). Only the
#                  `tiercache` program is built (target tiercache_cli).
#   --traces DIR   (--hit-ratio) trace directory (default: <repo>/../shared/traces if present)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode=demo
setup=1
[[ "${TIERCACHE_SKIP_SETUP:-0}" == 1 ]] && setup=0
build=1
build_dir="$repo/build"
traces_dir=""
zipf=1
traces=1
demo_args=()

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($# > 0)); do
  case "$1" in
    --hit-ratio) mode=hit-ratio; shift ;;
    --no-setup) setup=0; shift ;;
    --no-build) build=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *)
      if [[ "$mode" == hit-ratio ]]; then
        case "$1" in
          --traces) traces_dir="$2"; shift 2 ;;
          --no-zipf) zipf=0; shift ;;
          --no-traces) traces=0; shift ;;
          *) echo "demo.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
        esac
      else
        demo_args+=("$1")  # for `tiercache demo`, which checks them
        shift
      fi
      ;;
  esac
done

if [[ "$mode" == hit-ratio && ${#demo_args[@]} -gt 0 ]]; then
  echo "demo.sh: ${demo_args[*]}: not an option of --hit-ratio (put --hit-ratio first)" >&2
  exit 2
fi

# ---- setup and build -------------------------------------------------------------------------
if ((setup)); then
  bash "$repo/scripts/setup.sh"
fi
tool="$build_dir/tools/tiercache"
if ((build)); then
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
  fi
  cmake --build "$build_dir" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" --target tiercache_cli
fi
if [[ ! -x "$tool" ]]; then
  echo "demo.sh: $tool not found (build it, or drop --no-build)" >&2
  exit 1
fi

# ---- the demo --------------------------------------------------------------------------------
if [[ "$mode" == demo ]]; then
  # The report is written unless the caller chose where: <build dir>/demo-report.
  report_given=0
  for a in "${demo_args[@]}"; do
    [[ "$a" == --report || "$a" == --report=* ]] && report_given=1
  done
  if ((!report_given)); then demo_args+=(--report "$build_dir/demo-report"); fi
  # Not exec'd: a Ctrl-C reaches the demo, which stops what it started and exits 130.
  status=0
  "$tool" demo "${demo_args[@]}" || status=$?
  exit "$status"
fi

# ---- --hit-ratio -----------------------------------------------------------------------------
if [[ -z "$traces_dir" && -d "$repo/../shared/traces" ]]; then
  traces_dir="$(cd "$repo/../shared/traces" && pwd)"
fi

# Synthetic workloads: zipf:ALPHA:KEYS:REQUESTS:SEED, and the capacities to try them at.
ZIPF_WORKLOADS=(zipf:0.8:100000:1000000:1 zipf:1.0:100000:1000000:1)
ZIPF_CAPACITIES="1000,10000"

# ---- measuring -------------------------------------------------------------------------------
# sim TRACE CAPACITIES POLICY: prints "capacity hit_ratio_percent" per line.
sim() {
  local out
  if ! out="$("$tool" sim --trace "$1" --capacity "$2" --policy "$3")"; then
    echo "demo.sh: '$tool sim --trace $1 --capacity $2 --policy $3' failed" >&2
    return 1
  fi
  awk '/^policy=/ {
      cap = ""; ratio = ""
      for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "capacity") cap = kv[2]
        if (kv[1] == "hit_ratio") ratio = kv[2]
      }
      if (cap != "" && ratio != "") printf "%s %.2f\n", cap, ratio * 100
    }' <<<"$out"
}

# Rows of the result table, tab-separated: trace size tiercache lru optimal best.
rows_file="$(mktemp)"
trap 'rm -f "$rows_file"' EXIT

# measure NAME TRACE CAPACITIES [BEST_BY_CAPACITY...]: one sim run per policy for all sizes.
measure() {
  local name="$1" trace="$2" capacities="$3"
  shift 3
  local -A best=() tc=() lru=() opt=()
  local entry cap pct out_tc out_lru out_opt
  for entry in "$@"; do best[${entry%%=*}]="${entry#*=}"; done
  out_tc="$(sim "$trace" "$capacities" tiercache)"
  out_lru="$(sim "$trace" "$capacities" lru)"
  out_opt="$(sim "$trace" "$capacities" optimal)"
  while read -r cap pct; do tc[$cap]="$pct"; done <<<"$out_tc"
  while read -r cap pct; do lru[$cap]="$pct"; done <<<"$out_lru"
  while read -r cap pct; do opt[$cap]="$pct"; done <<<"$out_opt"
  local IFS=,
  for cap in $capacities; do
    if [[ -z "${tc[$cap]:-}" ]]; then
      echo "demo.sh: no tiercache result for $name at capacity $cap" >&2
      return 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$cap" "${tc[$cap]}" "${lru[$cap]:-na}" \
      "${opt[$cap]:-na}" "${best[$cap]:-na}" >>"$rows_file"
  done
}

if ((zipf)); then
  for workload in "${ZIPF_WORKLOADS[@]}"; do
    echo "demo.sh: $workload ..." >&2
    measure "$workload" "$workload" "$ZIPF_CAPACITIES"
  done
fi

if ((traces)) && [[ -n "$traces_dir" && -f "$traces_dir/README.md" ]]; then
  # The README's table: | trace | size | LRU | ... | best practical | (which) | OPT |
  # Columns are found by header name (defaults: size 2, best practical 9).
  reference="$(awk -F'|' '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    !header && /^\|[ \t]*trace[ \t]*\|/ {
      header = 1; size_col = 3; best_col = 10
      for (i = 2; i <= NF; i++) {
        h = trim($i)
        if (h == "size") size_col = i
        if (h == "best practical") best_col = i
      }
      next
    }
    header && /^\|/ {
      name = trim($2); size = trim($size_col); best = trim($best_col)
      if (name ~ /^-+$/ || size !~ /^[0-9]+$/) next
      print name, size, best
    }' "$traces_dir/README.md")"
  mapfile -t trace_names < <(awk '{print $1}' <<<"$reference" | awk '!seen[$0]++')
  for name in "${trace_names[@]}"; do
    [[ -n "$name" ]] || continue
    file="$traces_dir/$name.keys"
    if [[ ! -f "$file" ]]; then
      echo "demo.sh: $file missing; skipping $name" >&2
      continue
    fi
    capacities="$(awk -v n="$name" '$1 == n {print $2}' <<<"$reference" | paste -sd, -)"
    mapfile -t bests < <(awk -v n="$name" '$1 == n {print $2 "=" $3}' <<<"$reference")
    echo "demo.sh: $name at $capacities ..." >&2
    measure "$name" "$file" "$capacities" "${bests[@]}"
  done
elif ((traces)); then
  echo "demo.sh: no traces directory (../shared/traces); Zipf workloads only" >&2
fi

# ---- the table -------------------------------------------------------------------------------
awk -F'\t' '
  function num(s) { return s ~ /^-?[0-9.]+$/ }
  BEGIN {
    fmt = "%-34s %8s %10s %8s %8s %8s %10s\n"
    printf fmt, "trace", "size", "tiercache%", "LRU%", "optimal%", "best%", "shortfall"
    rows = 0; trace_rows = 0; sum = 0; max_short = "na"; max_below = "na"
  }
  {
    rows++
    short = "-"
    if (num($6)) {
      short = sprintf("%.2f", $6 - $3)
      trace_rows++; sum += $6 - $3
      if (max_short == "na" || $6 - $3 > max_short) max_short = $6 - $3
    }
    if (num($4)) {
      if (max_below == "na" || $4 - $3 > max_below) max_below = $4 - $3
    }
    printf fmt, $1, $2, $3, $4, $5, ($6 == "na" ? "-" : $6), short
  }
  END {
    mean = (trace_rows > 0) ? sprintf("%.2f", sum / trace_rows) : "na"
    if (max_short != "na") max_short = sprintf("%.2f", max_short)
    if (max_below != "na") max_below = sprintf("%.2f", max_below)
    printf "\nsummary: %d rows (%d with a reference): mean shortfall %s, max shortfall %s, " \
      "max (LRU - tiercache) %s (percentage points)\n", rows, trace_rows, mean, max_short, max_below
    printf "demo=sim rows=%d trace_rows=%d mean_shortfall=%s max_shortfall=%s max_below_lru=%s\n",
      rows, trace_rows, mean, max_short, max_below
  }' "$rows_file"
