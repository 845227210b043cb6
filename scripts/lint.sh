#!/usr/bin/env bash
# Static checks: clang-format (all our C++ files) and clang-tidy (src/ and tools/ .cpp files).
#
#   scripts/lint.sh [--fix] [--format-only | --tidy-only] [--build-dir DIR] [FILE...]
#
#   --fix          rewrite files with clang-format (and apply clang-tidy fixes) instead of failing
#   --build-dir    where compile_commands.json is (default build/; configured if missing)
#   FILE...        only these files (default: every file of include src tools tests bench fuzz
#                  examples for clang-format; src/ and tools/ .cpp files for clang-tidy)
# Exits non-zero on any formatting difference or clang-tidy diagnostic.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

fix=0
run_format=1
run_tidy=1
build_dir="build"
files=()
while (($# > 0)); do
  case "$1" in
    --fix) fix=1; shift ;;
    --format-only) run_tidy=0; shift ;;
    --tidy-only) run_format=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "lint.sh: unknown option '$1'" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done

CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
CLANG_TIDY="${CLANG_TIDY:-clang-tidy}"
jobs="$(nproc)"
status=0

# NUL-separated list of the C++ files under the given directories.
cxx_files() {
  local dirs=() d
  for d in "$@"; do
    if [[ -d "$d" ]]; then dirs+=("$d"); fi
  done
  ((${#dirs[@]} > 0)) || return 0
  find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \
    -o -name '*.ipp' -o -name '*.inl' \) -print0 | sort -z
}

if ((run_format)); then
  if ((${#files[@]} > 0)); then
    format_files=("${files[@]}")
  else
    mapfile -d '' -t format_files < <(cxx_files include src tools tests bench fuzz examples)
  fi
  if ((${#format_files[@]} > 0)); then
    echo "lint.sh: clang-format on ${#format_files[@]} files"
    if ((fix)); then
      "$CLANG_FORMAT" -i "${format_files[@]}"
    elif ! "$CLANG_FORMAT" --dry-run --Werror "${format_files[@]}"; then
      echo "lint.sh: clang-format: differences found (fix with: scripts/lint.sh --fix --format-only)" >&2
      status=1
    fi
  fi
fi

if ((run_tidy)); then
  if [[ ! -f "$build_dir/compile_commands.json" ]]; then
    echo "lint.sh: configuring $build_dir for compile_commands.json"
    cmake -S "$repo" -B "$build_dir" >/dev/null
  fi
  if ((${#files[@]} > 0)); then
    tidy_files=()
    for f in "${files[@]}"; do
      if [[ "$f" == *.cpp || "$f" == *.cc ]]; then tidy_files+=("$f"); fi
    done
  else
    mapfile -d '' -t tidy_files < <(cxx_files src tools | grep -zE '\.(cpp|cc)$' || true)
  fi
  if ((${#tidy_files[@]} > 0)); then
    echo "lint.sh: clang-tidy on ${#tidy_files[@]} files ($jobs in parallel)"
    tidy_args=(-p "$build_dir" --quiet
      # compile_commands.json has gcc's flags; clang need not know all of them.
      --extra-arg=-Wno-unknown-warning-option
      --extra-arg=-Wno-ignored-optimization-argument)
    # Fixes to a shared header must not be applied by two processes at once.
    if ((fix)); then tidy_args+=(--fix); jobs=1; fi
    # (grep drops clang-tidy's "N warnings generated." chatter about suppressed system headers.)
    if ! printf '%s\0' "${tidy_files[@]}" |
      xargs -0 -n 1 -P "$jobs" "$CLANG_TIDY" "${tidy_args[@]}" \
        2> >(grep -vE '^[0-9]+ warnings? generated\.$' >&2); then
      echo "lint.sh: clang-tidy reported problems" >&2
      status=1
    fi
  fi
fi

if ((status == 0)); then echo "lint.sh: clean"; fi
exit "$status"
