# Test helper for tiercache's tests.
#
#   tiercache_add_test(NAME <name>
#                      SOURCES <file>...
#                      [LABELS <label>...]      unit | concurrency | integration | install
#                      [LIBRARIES <lib>...]     extra libraries, linked PRIVATE
#                      [ARGS <arg>...]          extra command-line arguments for the test
#                      [TIMEOUT <seconds>])     default 300
#
# Builds executable <name> from SOURCES, linked to tiercache::tiercache, GTest::gtest_main and
# GTest::gmock, with tiercache's warning flags, and registers exactly ONE ctest test named
# <name> that runs the whole executable (no per-TEST() discovery: cheap to configure and build,
# and `ctest -L <label>` selects whole executables).
#
# Labels in use: unit (fast, no network), concurrency (run under TSan by scripts/test.sh),
# integration (needs TIERCACHE_TEST_REDIS_URL, see scripts/redis-env.sh), install.
include_guard(GLOBAL)

find_package(GTest REQUIRED)
include(TiercacheWarnings)

function(tiercache_add_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;TIMEOUT" "SOURCES;LABELS;LIBRARIES;ARGS")
  if(NOT arg_NAME)
    message(FATAL_ERROR "tiercache_add_test: NAME is required")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "tiercache_add_test(${arg_NAME}): SOURCES is required")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "tiercache_add_test(${arg_NAME}): unexpected arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 300)
  endif()

  add_executable(${arg_NAME} ${arg_SOURCES})
  target_link_libraries(${arg_NAME} PRIVATE
    tiercache::tiercache GTest::gtest_main GTest::gmock ${arg_LIBRARIES})
  tiercache_target_warnings(${arg_NAME})

  add_test(NAME ${arg_NAME} COMMAND ${arg_NAME} ${arg_ARGS}
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(${arg_NAME} PROPERTIES TIMEOUT ${arg_TIMEOUT})
  if(arg_LABELS)
    set_tests_properties(${arg_NAME} PROPERTIES LABELS "${arg_LABELS}")
  endif()
endfunction()
