#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages tiercache needs to build, test and run its
# demo -- only those that are missing, so running it again is cheap. Must run as root (or
# with sudo available). Nothing is downloaded outside Debian's package archive.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config git
  # library dependencies (see DESIGN.md)
  libasio-dev libssl-dev nlohmann-json3-dev libmsgpack-cxx-dev libzstd-dev
  # examples, demo, tests
  libsqlite3-dev sqlite3 libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  redis-server redis-tools openssl
  # examples/user_service.cpp: its HTTP endpoints (GET /metrics, GET /users/ID). Debian's
  # cpp-httplib is small (a 64 KB header and a 0.6 MB shared library, found with pkg-config)
  # and security-maintained (deb12u1); a hand-written HTTP server in an example would be
  # copied into services. Used by the examples only, never by the library.
  libcpp-httplib-dev
  # benchmarks: the hiredis baseline of the Redis client
  libhiredis-dev
  # lint, fuzzing, sanitizers
  clang clang-format clang-tidy libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
