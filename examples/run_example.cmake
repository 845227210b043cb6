# Runs one example program for its ctest test (examples/CMakeLists.txt, example_test()):
#
#   cmake -DPROGRAM=<path> -DARGS=<args> [-DEXPECT_REGEX=<re>] -DREQUIRE_ENV=<VAR,...> -P run_example.cmake
#
#   PROGRAM       the example's executable
#   ARGS          its arguments, one string split like a Unix shell would; @ENV:NAME@ is the
#                 value of environment variable NAME, @RUN_ID@ a string unique to this run (for
#                 cache names, so that runs sharing a Redis server never meet)
#   EXPECT_REGEX  a regular expression its output (stdout + stderr) must match (optional)
#   REQUIRE_ENV   environment variables the example needs, ','-separated. If one is unset, the
#                 script prints "tiercache-test-skipped: ..." and stops; ctest reports the test
#                 as skipped (SKIP_REGULAR_EXPRESSION).
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/TiercacheTestScript.cmake)

foreach(var PROGRAM REQUIRE_ENV)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_example.cmake: ${var} is required")
  endif()
endforeach()

tiercache_skip_without_env("${REQUIRE_ENV}")

tiercache_run_id(run_id)
string(REPLACE "@RUN_ID@" "${run_id}" args_text "${ARGS}")
set(shown "${args_text}")  # logged with the placeholders: values may hold passwords
tiercache_expand_env("${args_text}" args_text)
separate_arguments(args UNIX_COMMAND "${args_text}")

execute_process(COMMAND "${PROGRAM}" ${args}
  RESULT_VARIABLE exit_code
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  TIMEOUT 50)
get_filename_component(program_name "${PROGRAM}" NAME)
message("$ ${program_name} ${shown}\n${out}${err}exit code: ${exit_code}")

if(NOT exit_code STREQUAL "0")
  message(FATAL_ERROR "${program_name}: expected exit code 0, got ${exit_code}")
endif()
if(NOT "${EXPECT_REGEX}" STREQUAL "" AND NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "${program_name}: the output does not match '${EXPECT_REGEX}'")
endif()
