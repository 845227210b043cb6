// Uses an installed tiercache the way a user would; built by tests/install/run.sh.
#include <tiercache/local_cache.hpp>

int main() {
  tiercache::LocalCache<int, int> cache(tiercache::LocalCacheOptions{.max_entries = 16});
  cache.put(1, 2);
  auto v = cache.get(1);
  return (v && *v == 2) ? 0 : 1;
}
