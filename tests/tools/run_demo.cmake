# Runs `tiercache demo` once, short, with --report, and checks what a user of it relies on.
# Used by tests/tools/CMakeLists.txt as `cmake -D... -P run_demo.cmake`:
#
#   TOOL        path of the tiercache executable (required)
#   CHECKER     path of prometheus_check (required): validates metrics.prom
#   REPORT_DIR  where the report goes (emptied first) (required)
#   ARGS        the demo's arguments besides --report, one string (required)
#
# Skipped (the output says "tiercache-test-skipped") without TIERCACHE_TEST_REDIS_URL: the demo
# starts its own redis-server, which the integration environment of scripts/redis-env.sh
# guarantees is installed; the shared test server itself is left alone (the demo's Redis outage
# would pause it for every other test).
#
# Checks: exit status 0; the last line's shape, with stale serves > 0 (the db-down phase);
# "errors 0" (no read failed that fail-safe should have served); exactly one DB load of the
# hot key when it expired under load; every phase announced; the three report files, the page
# self-contained, metrics.prom valid Prometheus text.
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/TiercacheTestScript.cmake)

foreach(var TOOL CHECKER REPORT_DIR ARGS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_demo.cmake: ${var} is required")
  endif()
endforeach()
tiercache_skip_without_env(TIERCACHE_TEST_REDIS_URL)

file(REMOVE_RECURSE "${REPORT_DIR}")
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${TOOL}" demo ${args} --report "${REPORT_DIR}"
  RESULT_VARIABLE exit_code
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "$ tiercache demo ${ARGS} --report ${REPORT_DIR}\n${out}${err}exit code: ${exit_code}")

set(problems "")
if(NOT exit_code STREQUAL "0")
  list(APPEND problems "exit code ${exit_code}, expected 0")
endif()
set(last_line "\nreads=[1-9][0-9]* l1_hit_ratio=0\\.[0-9][0-9][0-9][0-9] l2_hit_ratio=0\\.[0-9][0-9][0-9][0-9] db_reads=[1-9][0-9]* offload_pct=[0-9]+\\.[0-9][0-9] p99_us=[0-9]+\\.[0-9] stale_serves=[1-9][0-9]*\n$")
foreach(regex
    "${last_line}"
    "\n# fail-safe: [0-9]+ stale serves [^\n]*; errors 0;"
    "\n# stampede: 1 DB load of user:1 when it expired under load"
    "\n# == 9/9 redis-back")
  if(NOT out MATCHES "${regex}")
    list(APPEND problems "the output does not match '${regex}'")
  endif()
endforeach()
foreach(name metrics.prom timeline.csv report.html)
  if(NOT EXISTS "${REPORT_DIR}/${name}")
    list(APPEND problems "${REPORT_DIR}/${name} was not written")
  endif()
endforeach()
if(EXISTS "${REPORT_DIR}/report.html")
  file(READ "${REPORT_DIR}/report.html" html)
  if(NOT html MATCHES "<svg" OR html MATCHES "<script" OR html MATCHES "https?:")
    list(APPEND problems "report.html: no chart, or not self-contained")
  endif()
endif()
if(EXISTS "${REPORT_DIR}/metrics.prom")
  execute_process(COMMAND "${CHECKER}" "${REPORT_DIR}/metrics.prom"
    RESULT_VARIABLE check_code
    ERROR_VARIABLE check_err)
  if(NOT check_code STREQUAL "0")
    list(APPEND problems "metrics.prom is not valid Prometheus text:\n${check_err}")
  endif()
endif()
if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "tiercache demo:\n  ${text}")
endif()
