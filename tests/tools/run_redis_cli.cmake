# Runs `tiercache redis` / `redis-bench` / `stampede` against the test servers of
# scripts/redis-env.sh, one or more steps in order, checking each step's exit code and output.
# Used by tests/tools/CMakeLists.txt as `cmake -D... -P run_redis_cli.cmake`:
#
#   TOOL           path of the tiercache executable (required)
#   REQUIRE_ENV    environment variables the test needs, ','-separated (required). If one is
#                  unset, the test prints "tiercache-test-skipped: ..." and stops; ctest reports
#                  it as skipped (SKIP_REGULAR_EXPRESSION).
#   STEPS          number of steps (required); for each step N (1-based):
#     ARGS_<N>       its arguments, one string, split like a Unix shell would. Placeholders:
#                    @ENV:NAME@ is the value of environment variable NAME, @KEY@ a key unique to
#                    this run (so that tests may share a server).
#     EXIT_<N>       expected exit code (default 0)
#     REGEX_<N>      a regular expression the output (stdout + stderr) must match
#     NOT_REGEX_<N>  a regular expression the output must NOT match
#     LINES_<N>      the exact number of lines stderr must have (e.g. 1: a one-line reason)
#
# Arguments may carry secrets (passwords from the environment): the log shows the arguments
# with @ENV:...@ placeholders, never their values.
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/TiercacheTestScript.cmake)

foreach(var TOOL REQUIRE_ENV STEPS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_redis_cli.cmake: ${var} is required")
  endif()
endforeach()

tiercache_skip_without_env("${REQUIRE_ENV}")

tiercache_run_id(run_id)
set(key "tc:tools-test:${run_id}")

foreach(step RANGE 1 ${STEPS})
  set(args_text "${ARGS_${step}}")
  string(REPLACE "@KEY@" "${key}" args_text "${args_text}")
  set(shown "${args_text}")
  tiercache_expand_env("${args_text}" args_text)

  separate_arguments(args UNIX_COMMAND "${args_text}")
  execute_process(COMMAND "${TOOL}" ${args}
    RESULT_VARIABLE exit_code
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err
    TIMEOUT 30)
  message(STATUS "step ${step}: $ tiercache ${shown}\n${out}${err}exit code: ${exit_code}")

  set(expected_exit 0)
  if(DEFINED EXIT_${step})
    set(expected_exit ${EXIT_${step}})
  endif()
  if(NOT exit_code STREQUAL "${expected_exit}")
    message(FATAL_ERROR "step ${step}: expected exit code ${expected_exit}, got ${exit_code}")
  endif()
  if(DEFINED REGEX_${step} AND NOT "${out}${err}" MATCHES "${REGEX_${step}}")
    message(FATAL_ERROR "step ${step}: the output does not match '${REGEX_${step}}'")
  endif()
  if(DEFINED NOT_REGEX_${step} AND "${out}${err}" MATCHES "${NOT_REGEX_${step}}")
    message(FATAL_ERROR "step ${step}: the output matches '${NOT_REGEX_${step}}', it must not")
  endif()
  if(DEFINED LINES_${step})
    string(REGEX MATCHALL "\n" newlines "${err}")
    list(LENGTH newlines line_count)
    if(NOT line_count EQUAL LINES_${step})
      message(FATAL_ERROR "step ${step}: stderr has ${line_count} lines, expected ${LINES_${step}}")
    endif()
  endif()
endforeach()
