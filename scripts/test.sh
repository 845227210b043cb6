#!/usr/bin/env bash
# Builds tiercache and runs all of its tests; what CI runs (through .ci/run).
#
#   1. scripts/setup.sh                  Debian packages
#   2. build/       RelWithDebInfo, -Werror, everything; all tests (Redis servers running)
#   3. build-asan/  ASan+UBSan; all tests except the `install` one
#   4. build-tsan/  TSan; the tests labelled `concurrency`
#   5. build-fuzz/  clang + libFuzzer + ASan/UBSan; each fuzz target for a bounded time on a
#                   copy of its seed corpus (skipped when clang++ is missing)
#
# Environment:
#   TIERCACHE_SKIP_SANITIZERS=1   skip phases 3, 4 and 5 (quick local runs; CI runs them)
#   TIERCACHE_FUZZ_SECONDS        seconds per fuzz target in phase 5 (default 60; 0 skips them)
#   TIERCACHE_SKIP_SETUP=1        skip phase 1
#   CTEST_PARALLEL_LEVEL          ctest parallelism (default: serial)
#   CMAKE_BUILD_PARALLEL_LEVEL    build parallelism (default: nproc)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

jobs="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
skip_sanitizers="${TIERCACHE_SKIP_SANITIZERS:-0}"
if [[ -n "${CI:-}" && "$skip_sanitizers" == 1 ]]; then
  echo "test.sh: TIERCACHE_SKIP_SANITIZERS is ignored in CI" >&2
  skip_sanitizers=0
fi

# ---- timing ----------------------------------------------------------------------------------
now() { echo "${EPOCHREALTIME//[.,]/}"; }
script_start="$(now)"
timings=()
phase_name=""
phase_start=""

phase_begin() {
  phase_name="$1"
  phase_start="$(now)"
  printf '\n==== test.sh: %s\n' "$phase_name"
}
phase_end() {
  local us=$(($(now) - phase_start))
  local line
  line="$(printf '==== test.sh: %-34s %4d.%01d s' "$phase_name" $((us / 1000000)) $((us % 1000000 / 100000)))"
  echo "$line"
  timings+=("$line")
  phase_name=""
}

# ---- Redis servers: started once, stopped on any exit ----------------------------------------
# A private state directory: this run's servers are its own, whatever else runs on the machine.
redis_state_dir="$(mktemp -d "${TMPDIR:-/tmp}/tiercache-test-redis.XXXXXX")"
export TIERCACHE_REDIS_ENV_DIR="$redis_state_dir"

on_exit() {
  local rc=$?
  set +e
  if [[ -n "$phase_name" ]]; then
    echo "==== test.sh: FAILED in phase '$phase_name' (exit $rc)" >&2
  fi
  bash "$repo/scripts/redis-env.sh" stop
  rm -rf "$redis_state_dir"
  if [[ -n "${fuzz_work_dir:-}" ]]; then rm -rf "$fuzz_work_dir"; fi
  if ((${#timings[@]} > 0)); then
    echo
    printf '%s\n' "${timings[@]}"
  fi
  local us=$(($(now) - script_start))
  echo "==== test.sh: total $((us / 1000000)) s, exit $rc"
  exit "$rc"
}
trap on_exit EXIT

# ---- sanitizer runtime check -----------------------------------------------------------------
# gcc 12's ASan/TSan runtimes fail on kernels with high mmap randomisation ("unexpected memory
# mapping", "Shadow memory range interleaves with an existing memory mapping"). Running with
# ASLR disabled (`setarch <arch> -R`, inherited by ctest's children) fixes that. Prints the
# command prefix needed to run binaries built with compiler $1 and sanitizer flags $2.
sanitizer_launcher() {
  local cxx="$1" flags="$2" dir
  dir="$(mktemp -d)"
  cat >"$dir/probe.cpp" <<'EOF'
#include <thread>
int main() {
  int value = 0;
  std::thread thread([&] { value = 1; });
  thread.join();
  return value == 1 ? 0 : 1;
}
EOF
  # shellcheck disable=SC2086  # $flags is a list of compiler flags
  if ! "$cxx" -std=c++20 -g -O1 $flags -pthread "$dir/probe.cpp" -o "$dir/probe" >&2; then
    rm -rf "$dir"
    echo "test.sh: cannot build a program with $flags" >&2
    return 1
  fi
  if "$dir/probe" >"$dir/out" 2>&1; then
    rm -rf "$dir"
    return 0
  fi
  local arch
  arch="$(uname -m)"
  if setarch "$arch" -R "$dir/probe" >/dev/null 2>&1; then
    echo "test.sh: $flags binaries need ASLR off here; running them under 'setarch $arch -R'" \
      "(probe said: $(head -c 200 "$dir/out"))" >&2
    rm -rf "$dir"
    echo "setarch $arch -R"
    return 0
  fi
  echo "test.sh: a $flags probe program fails, even with ASLR off:" >&2
  cat "$dir/out" >&2
  rm -rf "$dir"
  return 1
}

configure_and_build() {
  local dir="$1"
  shift
  cmake -S "$repo" -B "$dir" "$@"
  cmake --build "$dir" -j "$jobs"
}

compiler_of() {
  sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$1/CMakeCache.txt"
}

# ---- phases ----------------------------------------------------------------------------------
if [[ "${TIERCACHE_SKIP_SETUP:-0}" != 1 ]]; then
  phase_begin "setup"
  bash "$repo/scripts/setup.sh"
  phase_end
fi

phase_begin "build (RelWithDebInfo)"
configure_and_build build \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTIERCACHE_WERROR=ON \
  -DTIERCACHE_SANITIZE=
phase_end

phase_begin "redis servers"
bash "$repo/scripts/redis-env.sh" start
# shellcheck source=/dev/null
source "$redis_state_dir/env"
phase_end

phase_begin "tests (RelWithDebInfo)"
ctest --test-dir build --output-on-failure --no-tests=error
phase_end

if [[ "$skip_sanitizers" == 1 ]]; then
  echo "==== test.sh: sanitizer phases skipped (TIERCACHE_SKIP_SANITIZERS=1)"
else
  # Sanitizer builds: -O1 keeps them fast enough; Debug keeps assertions on. -Werror is left to
  # the main build: gcc reports false positives under -fsanitize (e.g. -Wmaybe-uninitialized).
  phase_begin "build (ASan+UBSan)"
  configure_and_build build-asan \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS=-O1 \
    -DTIERCACHE_WERROR=OFF \
    -DTIERCACHE_SANITIZE=address \
    -DTIERCACHE_BUILD_TOOLS=ON \
    -DTIERCACHE_BUILD_BENCH=OFF
  phase_end

  phase_begin "tests (ASan+UBSan)"
  launcher="$(sanitizer_launcher "$(compiler_of build-asan)" "-fsanitize=address,undefined")"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  # shellcheck disable=SC2086  # $launcher is empty or a command prefix
  $launcher ctest --test-dir build-asan --output-on-failure --no-tests=ignore -LE install
  phase_end

  phase_begin "build (TSan)"
  configure_and_build build-tsan \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS=-O1 \
    -DTIERCACHE_WERROR=OFF \
    -DTIERCACHE_SANITIZE=thread \
    -DTIERCACHE_BUILD_TOOLS=OFF \
    -DTIERCACHE_BUILD_BENCH=OFF \
    -DTIERCACHE_BUILD_EXAMPLES=OFF
  phase_end

  phase_begin "tests (TSan, label concurrency)"
  launcher="$(sanitizer_launcher "$(compiler_of build-tsan)" "-fsanitize=thread")"
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
  # shellcheck disable=SC2086
  $launcher ctest --test-dir build-tsan --output-on-failure --no-tests=ignore -L concurrency
  phase_end
fi

# ---- fuzzing: libFuzzer targets of fuzz/, each for a bounded time ----------------------------
# Runs fuzzer $1 (tiercache_fuzz_$1) on a copy of fuzz/corpus/$1 with dictionary $2 (optional)
# in a temporary directory, so that the corpus it grows and any crash input stay out of the
# repository. A crash, leak, sanitizer report or timeout fails the script; the input that
# caused it is printed (hex) since the directory is removed on exit.
run_fuzzer() {
  local name="$1" dict="${2:-}" dir="$fuzz_work_dir/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "$repo/fuzz/corpus/$name/." "$dir/corpus/"
  local args=(-max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/")
  if [[ -n "$dict" ]]; then args+=(-dict="$repo/$dict"); fi
  # libFuzzer's progress goes to a log; its summary, or the whole report on failure, is shown.
  # shellcheck disable=SC2086  # $launcher is empty or a command prefix
  if ! (cd "$dir" && $launcher "$repo/build-fuzz/fuzz/tiercache_fuzz_$name" "${args[@]}" corpus \
    >"$dir/log" 2>&1); then
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)[[:space:]]' "$dir/log" | tail -n 150 >&2
    echo "test.sh: fuzzer $name failed; the inputs it saved:" >&2
    local artifact
    for artifact in "$dir"/artifacts/*; do
      [[ -e "$artifact" ]] || continue
      echo "--- $(basename "$artifact") ($(wc -c <"$artifact") bytes):" >&2
      od -A d -t x1z -v "$artifact" | head -n 64 >&2
    done
    return 1
  fi
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)[[:space:]]|Done |stat::)' "$dir/log"
}

fuzz_seconds="${TIERCACHE_FUZZ_SECONDS:-60}"
if [[ "$skip_sanitizers" == 1 || "$fuzz_seconds" == 0 ]]; then
  echo "==== test.sh: fuzz phases skipped"
elif ! command -v clang++ >/dev/null; then
  echo "==== test.sh: fuzz phases skipped: clang++ is not installed (scripts/setup.sh installs it)"
else
  phase_begin "build (libFuzzer)"
  # Only the fuzz targets: they compile the library sources they exercise themselves.
  cmake -S "$repo" -B build-fuzz \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTIERCACHE_WERROR=ON \
    -DTIERCACHE_SANITIZE= \
    -DTIERCACHE_BUILD_FUZZ=ON \
    -DTIERCACHE_BUILD_TESTS=OFF \
    -DTIERCACHE_BUILD_TOOLS=OFF \
    -DTIERCACHE_BUILD_BENCH=OFF \
    -DTIERCACHE_BUILD_EXAMPLES=OFF \
    -DTIERCACHE_INSTALL=OFF
  cmake --build build-fuzz -j "$jobs" --target tiercache_fuzz_resp_parser tiercache_fuzz_url \
    tiercache_fuzz_envelope
  phase_end

  phase_begin "fuzz (libFuzzer, ${fuzz_seconds} s per target)"
  launcher="$(sanitizer_launcher clang++ "-fsanitize=address,undefined")"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  fuzz_work_dir="$(mktemp -d "${TMPDIR:-/tmp}/tiercache-fuzz.XXXXXX")"
  run_fuzzer resp_parser fuzz/resp.dict
  run_fuzzer url fuzz/url.dict
  run_fuzzer envelope fuzz/envelope.dict
  phase_end
fi

echo "==== test.sh: all phases passed"
