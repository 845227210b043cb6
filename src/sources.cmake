# The library's source files, relative to the repository root. Maintained by hand.
set(TIERCACHE_SOURCES
  src/local/clock.cpp
  src/local/eviction_policy.cpp
  src/local/frequency_sketch.cpp
  src/local/hash_table.cpp
  src/local/hazards.cpp
  src/local/policy_tuner.cpp
  src/local/readers.cpp
  src/local/timer_wheel.cpp
  src/redis/errors.cpp
)
