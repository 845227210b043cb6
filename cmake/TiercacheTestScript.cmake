# Shared by the test driver scripts run with `cmake -P` (tests/tools/run_redis_cli.cmake,
# tests/tools/run_demo.cmake, examples/run_example.cmake).

# tiercache_skip_without_env(<names>): for each ','-separated environment variable name, if it
# is unset or empty, prints "tiercache-test-skipped: ..." (ctest's SKIP_REGULAR_EXPRESSION)
# and returns from the calling script (a macro: return() leaves the caller).
macro(tiercache_skip_without_env names)
  string(REPLACE "," ";" _tiercache_required "${names}")
  foreach(_tiercache_name IN LISTS _tiercache_required)
    if("$ENV{${_tiercache_name}}" STREQUAL "")
      message("tiercache-test-skipped: ${_tiercache_name} is not set (start the test servers "
              "with scripts/redis-env.sh start, then source its env file; scripts/test.sh does "
              "both)")
      return()
    endif()
  endforeach()
endmacro()

# tiercache_run_id(<var>): a random 12-character [a-z0-9] id, unique to this run.
function(tiercache_run_id var)
  string(RANDOM LENGTH 12 ALPHABET "abcdefghijklmnopqrstuvwxyz0123456789" id)
  set(${var} "${id}" PARENT_SCOPE)
endfunction()

# tiercache_expand_env(<text> <var>): <text> with every @ENV:NAME@ replaced by the environment
# variable NAME, into <var>. (Log <text>, not the result: values may hold passwords.)
function(tiercache_expand_env text var)
  string(REGEX MATCHALL "@ENV:[A-Za-z_][A-Za-z0-9_]*@" placeholders "${text}")
  foreach(placeholder IN LISTS placeholders)
    string(REGEX REPLACE "^@ENV:(.*)@$" "\\1" name "${placeholder}")
    string(REPLACE "${placeholder}" "$ENV{${name}}" text "${text}")
  endforeach()
  set(${var} "${text}" PARENT_SCOPE)
endfunction()
