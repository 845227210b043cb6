#!/usr/bin/env bash
# The `install` ctest test (registered by tests/install/CMakeLists.txt).
#
# 1. `cmake --install <build-dir> --prefix <work-dir>/prefix`
# 2. configures, builds and runs examples/consumer (the example project users copy) against
#    that prefix with find_package(tiercache CONFIG REQUIRED);
# 3. compiles and runs the same main.cpp with `pkg-config --cflags --libs tiercache`.
# The consumer uses Cache<V> on the standalone test server when TIERCACHE_TEST_REDIS_URL is set
# (scripts/redis-env.sh), L1-only otherwise.
#
# Usage: run.sh --build-dir DIR --work-dir DIR [--cmake CMAKE] [--cxx CXX] [--config CONFIG]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir=""
work_dir=""
cmake_bin="cmake"
cxx="${CXX:-c++}"
config=""

while (($# > 0)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    --cmake) cmake_bin="$2"; shift 2 ;;
    --cxx) cxx="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    *) echo "install test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z "$build_dir" || -z "$work_dir" ]]; then
  echo "usage: $0 --build-dir DIR --work-dir DIR [--cmake CMAKE] [--cxx CXX] [--config C]" >&2
  exit 2
fi

step() { printf '\n== install test: %s\n' "$*"; }

rm -rf "$work_dir"
mkdir -p "$work_dir"
prefix="$work_dir/prefix"
consumer_src="$(cd "$here/../../examples/consumer" && pwd)"
# Its argument: the Redis URL, if there is one.
consumer_args=()
if [[ -n "${TIERCACHE_TEST_REDIS_URL:-}" ]]; then consumer_args=("$TIERCACHE_TEST_REDIS_URL"); fi

step "cmake --install into $prefix"
config_args=()
if [[ -n "$config" ]]; then config_args=(--config "$config"); fi
"$cmake_bin" --install "$build_dir" --prefix "$prefix" "${config_args[@]}"

step "checking the installed files"
status=0
for f in include/tiercache tiercache.pc tiercacheConfig.cmake tiercacheConfigVersion.cmake \
  tiercacheTargets.cmake; do
  if [[ -z "$(find "$prefix" -name "$(basename "$f")" -print -quit)" ]]; then
    echo "missing from the install tree: $f" >&2
    status=1
  fi
done
if ((status != 0)); then
  find "$prefix" >&2
  exit 1
fi
pc_file="$(find "$prefix" -name tiercache.pc -print -quit)"
lib_dir="$(dirname "$(dirname "$pc_file")")"
# A shared libtiercache is found at run time through LD_LIBRARY_PATH (no RPATH is installed).
export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "consumer through find_package(tiercache CONFIG REQUIRED)"
"$cmake_bin" -S "$consumer_src" -B "$work_dir/consumer-build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
"$cmake_bin" --build "$work_dir/consumer-build"
"$work_dir/consumer-build/consumer" "${consumer_args[@]}"
echo "find_package consumer: exit 0"

step "consumer through pkg-config"
PKG_CONFIG_PATH="$(dirname "$pc_file")"
export PKG_CONFIG_PATH
pkg-config --print-errors --exists tiercache
pc_flags="$(pkg-config --cflags --libs tiercache)"
echo "pkg-config --cflags --libs tiercache: $pc_flags"
# Word splitting of the flags is intended.
# shellcheck disable=SC2086
"$cxx" -std=c++20 -o "$work_dir/consumer-pkg-config" "$consumer_src/main.cpp" $pc_flags
"$work_dir/consumer-pkg-config" "${consumer_args[@]}"
echo "pkg-config consumer: exit 0"

step "passed"
