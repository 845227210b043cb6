#!/usr/bin/env bash
# soak.sh [minutes] [-- chaos arguments...]: a long `tiercache chaos` run (default 30 minutes)
# that also watches for leaks.
#
# Runs `tiercache chaos --seconds <minutes * 60>` and, every SOAK_INTERVAL seconds (default 5),
# samples from /proc the resident memory (VmRSS), open descriptors and threads of the
# coordinator and of each worker process (`tiercache chaos-worker`; a restarted worker is
# another process: growth is measured per process, over the time it lived). At the end it
# prints, for the coordinator and each worker: first and last sample, and the growth per hour
# (a least-squares slope over the samples after the first SOAK_WARMUP seconds, default 60, so
# that filling the caches is not counted as a leak). Samples go to <dir>/samples.tsv.
#
# Environment: TIERCACHE (the program; default build/tools/tiercache), SOAK_DIR (where the
# samples and the chaos output go; default a new temporary directory, kept), SOAK_INTERVAL,
# SOAK_WARMUP.
#
# Exit status: 0 if the chaos run ended with its machine line and wrong_values=0 hangs=0
# lost_writes=0; 1 otherwise (its own exit status is shown); 2 usage.
set -euo pipefail

minutes=30
if [[ $# -gt 0 && $1 != "--" ]]; then
  minutes=$1
  shift
fi
if [[ $# -gt 0 && $1 == "--" ]]; then shift; fi
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $minutes == 0 ]]; then
  echo "usage: scripts/soak.sh [minutes] [-- chaos arguments...]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
tool=${TIERCACHE:-$root/build/tools/tiercache}
interval=${SOAK_INTERVAL:-5}
warmup=${SOAK_WARMUP:-60}
dir=${SOAK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tiercache-soak-XXXXXX")}
mkdir -p "$dir"
if [[ ! -x $tool ]]; then
  echo "soak.sh: $tool not found: build it (cmake --build build --target tiercache_cli)" >&2
  exit 2
fi
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

echo "# soak: tiercache chaos --seconds $seconds $*; samples every ${interval} s in $dir"
"$tool" chaos --seconds "$seconds" "$@" >"$dir/chaos.out" 2>&1 &
coordinator=$!

# One sample line per process: time role pid rss_kb fds threads.
sample() {
  local now=$1 pid=$2 role=$3 rss threads fds
  [[ -r /proc/$pid/status ]] || return 0
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 0
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || return 0
  [[ -n $rss && -n $threads ]] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$now" "$role" "$pid" "$rss" "$fds" "$threads" >>"$dir/samples.tsv"
}

printf 'seconds\trole\tpid\trss_kb\tfds\tthreads\n' >"$dir/samples.tsv"
start=$(date +%s)
while kill -0 "$coordinator" 2>/dev/null; do
  now=$(($(date +%s) - start))
  sample "$now" "$coordinator" coordinator
  children=$(cat "/proc/$coordinator/task/"*/children 2>/dev/null || true)
  for child in $children; do
    if tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null | grep -q ' chaos-worker '; then
      slot=$(tr '\0' '\n' <"/proc/$child/cmdline" | awk 'prev == "--index" { print; exit } { prev = $0 }')
      sample "$now" "$child" "worker$slot"
    fi
  done
  # Progress: the chaos tool's latest progress line, when there is a new one.
  line=$(grep '^# +' "$dir/chaos.out" | tail -1 || true)
  if [[ -n $line && $line != "${shown:-}" ]]; then
    echo "$line"
    shown=$line
  fi
  sleep "$interval" &
  wait $! || true
done
set +e
wait "$coordinator"
status=$?
set -e

echo "# chaos exit status $status; its last lines:"
tail -8 "$dir/chaos.out"

echo "# growth per hour (least squares after the first ${warmup} s; per process):"
awk -F'\t' -v warmup="$warmup" '
  NR == 1 { next }
  {
    key = $2 " pid " $3
    if (!(key in first_t)) { first_t[key] = $1; first_rss[key] = $4; first_fd[key] = $5; first_th[key] = $6; order[++n] = key }
    last_t[key] = $1; last_rss[key] = $4; last_fd[key] = $5; last_th[key] = $6
    if ($1 - first_t[key] < warmup) next
    c[key]++; sx[key] += $1; sxx[key] += $1 * $1
    sr[key] += $4; sxr[key] += $1 * $4
    sf[key] += $5; sxf[key] += $1 * $5
    st[key] += $6; sxt[key] += $1 * $6
  }
  function slope(cnt, sx, sxx, sy, sxy,   d) {
    d = cnt * sxx - sx * sx
    return d > 0 ? (cnt * sxy - sx * sy) / d * 3600 : 0
  }
  END {
    printf "# %-26s %8s %22s %16s %16s\n", "process", "lived_s", "rss_kb first->last", "fds first->last", "threads f->l"
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "# %-26s %8d %10d->%-10d %7d->%-7d %7d->%-7d", k, last_t[k] - first_t[k], first_rss[k], last_rss[k], first_fd[k], last_fd[k], first_th[k], last_th[k]
      if (c[k] >= 3) {
        printf "  per hour: rss %+.0f kB, fds %+.1f, threads %+.1f\n", slope(c[k], sx[k], sxx[k], sr[k], sxr[k]), slope(c[k], sx[k], sxx[k], sf[k], sxf[k]), slope(c[k], sx[k], sxx[k], st[k], sxt[k])
      } else {
        printf "  (lived too short for a slope)\n"
      }
    }
  }' "$dir/samples.tsv"

last=$(tail -1 "$dir/chaos.out")
echo "$last"
if [[ $last =~ ^ops=[0-9]+\ wrong_values=0\ hangs=0\ lost_writes=0\  ]]; then
  echo "# soak: clean (samples and output kept in $dir)"
  exit 0
fi
echo "# soak: NOT clean (chaos exit status $status; samples and output kept in $dir)"
exit 1
