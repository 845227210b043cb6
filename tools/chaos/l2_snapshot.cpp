// What Redis holds for one key of a cache (l2_snapshot.hpp).

#include "chaos/l2_snapshot.hpp"

#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <vector>

#include "chaos/row_db.hpp"
#include "tiercache/envelope.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli::chaos {
namespace {

// More keys than this for one row would be a runaway namespace: stop listing.
constexpr std::size_t kMaxKeys = 16;

std::string describe_value(const std::string& bytes) {
  DecodedEnvelope envelope;
  const EnvelopeStatus status = decode_envelope(bytes, EnvelopeOptions{}, envelope);
  if (status != EnvelopeStatus::kOk) return std::string("undecodable (") + to_string(status) + ")";
  std::string out = "created_ms=" + std::to_string(envelope.meta.created_ms) +
                    " fresh_until_ms=" + std::to_string(envelope.meta.fresh_until_ms);
  if (envelope.meta.negative) return out + " not-found";
  try {
    const Row row = nlohmann::json::parse(envelope.payload).get<Row>();
    out += " version=" + std::to_string(row.version) + " origin=" + row.origin + "@" +
           std::to_string(row.origin_us);
  } catch (const std::exception&) {
    out += " payload-not-a-row";
  }
  return out;
}

}  // namespace

std::string l2_snapshot(redis::Client& client, const std::string& cache_name,
                        const std::string& key) {
  const auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  std::string out = "L2 at unix_ms=" + std::to_string(unix_ms) + ":";
  redis::Result<redis::Reply> version = client.command("GET", cache_name + ":version");
  if (!version.ok()) return out + " GET version failed: " + version.error().to_string();
  out += " " + cache_name + ":version=" + (version->is_string() ? version->string : "(nil)");
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    redis::Result<redis::Reply> page =
        client.command("SCAN", cursor, "MATCH", cache_name + ":*{" + key + "}", "COUNT", 10'000);
    if (!page.ok() || page->elements.size() != 2) return out + " SCAN failed";
    cursor = page->elements[0].string;
    for (const redis::Reply& k : page->elements[1].elements) keys.push_back(k.string);
  } while (cursor != "0" && keys.size() < kMaxKeys);
  if (keys.empty()) return out + " no key of " + key;
  for (const std::string& k : keys) {
    redis::Result<redis::Reply> value = client.command("GET", k);
    redis::Result<redis::Reply> ttl = client.command("PTTL", k);
    out += " | " + k + ": ";
    if (!value.ok() || !value->is_string()) {
      out += "(gone)";
      continue;
    }
    const bool lock = k.find(":lock:") != std::string::npos;
    out += lock ? "lock token=" + value->string : describe_value(value->string);
    if (ttl.ok()) out += " pttl=" + std::to_string(ttl->integer);
  }
  return out;
}

}  // namespace tiercache::cli::chaos
