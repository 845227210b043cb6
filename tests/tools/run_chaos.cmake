# Runs `tiercache chaos` once and checks its verdict. Used by tests/tools/CMakeLists.txt as
# `cmake -D... -P run_chaos.cmake`:
#
#   TOOL  path of the tiercache executable (required)
#   ARGS  the chaos arguments, one string (required), e.g. "--seconds 60 --seed 1"
#
# Skipped (the output says "tiercache-test-skipped") without TIERCACHE_TEST_REDIS_URL, like
# run_demo.cmake: the run starts its own redis-server (and SIGSTOPs, kills and restarts it),
# which the integration environment of scripts/redis-env.sh guarantees is installed; the
# shared test server itself is left alone. Also skipped if redis-server is not in PATH.
#
# Checks: exit status 0, and the last line is the machine line with wrong_values=0, hangs=0,
# lost_writes=0, at least one operation and at least one fault. On failure the output (which
# details every wrong value: key, versions, times, process, faults around it) is in the log.
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/TiercacheTestScript.cmake)

foreach(var TOOL ARGS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_chaos.cmake: ${var} is required")
  endif()
endforeach()
tiercache_skip_without_env(TIERCACHE_TEST_REDIS_URL)
find_program(redis_server redis-server PATHS /usr/bin /usr/sbin /usr/local/bin)
if(NOT redis_server)
  message("tiercache-test-skipped: redis-server is not installed")
  return()
endif()

separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${TOOL}" chaos ${args}
  RESULT_VARIABLE exit_code
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "$ tiercache chaos ${ARGS}\n${out}${err}exit code: ${exit_code}")

set(problems "")
if(NOT exit_code STREQUAL "0")
  list(APPEND problems "exit code ${exit_code}, expected 0")
endif()
set(last_line "\nops=[1-9][0-9]* wrong_values=0 hangs=0 lost_writes=0 max_staleness_ms=[0-9]+ errors=[0-9]+ faults=[1-9][0-9]*\n$")
if(NOT out MATCHES "${last_line}")
  list(APPEND problems "the last line does not match '${last_line}'")
endif()
if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "tiercache chaos:\n  ${text}")
endif()
