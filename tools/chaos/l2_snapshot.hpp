// l2_snapshot(): what Redis holds for one key of a cache, in every namespace version, as one
// line of text -- taken by a chaos worker the moment it reads back an older value than its
// own acknowledged write, so that the finding says where the old value lives (docs/chaos.md).
//
// Reads (SCAN, GET, PTTL) only: "<name>:version", then every key "<name>:*{<key>}" -- the
// value under each namespace version, decoded (row version, provenance, created_ms,
// fresh_until_ms), and the stampede locks (token, remaining time). Relies on the key layout of
// docs/FORMAT.md. Never throws: a failure is described in the text.

#pragma once

#include <string>

namespace tiercache::redis {
class Client;
}

namespace tiercache::cli::chaos {

std::string l2_snapshot(redis::Client& client, const std::string& cache_name,
                        const std::string& key);

}  // namespace tiercache::cli::chaos
