# Runs the `tiercache` program once (or twice) and checks its exit code and output.
# Used by tests/tools/CMakeLists.txt as `cmake -D... -P run_cli.cmake`:
#
#   TOOL          path of the tiercache executable (required)
#   ARGS          its arguments, one string, split like a Unix shell would (required)
#   TRACE_FILE    if set, this file is written first with TRACE_LINES ...
#   TRACE_LINES   ... one line per space-separated word (so "1 2 3" gives three lines)
#   EXPECT_EXIT   expected exit code (default 0)
#   EXPECT_REGEX  a regular expression the output (stdout + stderr) must match
#   RUN_TWICE     if true, runs the program twice and requires identical stdout
cmake_minimum_required(VERSION 3.25)

foreach(var TOOL ARGS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_cli.cmake: ${var} is required")
  endif()
endforeach()
if(NOT DEFINED EXPECT_EXIT)
  set(EXPECT_EXIT 0)
endif()

if(DEFINED TRACE_FILE)
  string(REPLACE " " "\n" trace_text "${TRACE_LINES}")
  file(WRITE "${TRACE_FILE}" "${trace_text}\n")
endif()

separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${TOOL}" ${args}
  RESULT_VARIABLE exit_code
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "$ tiercache ${ARGS}\n${out}${err}exit code: ${exit_code}")

if(NOT exit_code STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit code ${EXPECT_EXIT}, got ${exit_code}")
endif()
if(DEFINED EXPECT_REGEX AND NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "the output does not match '${EXPECT_REGEX}'")
endif()
if(RUN_TWICE)
  execute_process(COMMAND "${TOOL}" ${args} RESULT_VARIABLE exit_code2 OUTPUT_VARIABLE out2)
  # Timings differ from run to run; compare everything else.
  string(REGEX REPLACE "[0-9.]+ s" "<time>" out "${out}")
  string(REGEX REPLACE "[0-9.]+ s" "<time>" out2 "${out2}")
  if(NOT exit_code2 STREQUAL exit_code OR NOT out STREQUAL out2)
    message(FATAL_ERROR "the second run differs:\n${out2}")
  endif()
endif()
