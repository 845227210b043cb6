// libFuzzer target for parse_url and redact_url.
//
// Invariants checked on every input (a violation aborts, which libFuzzer reports):
//   - neither function crashes, leaks or reads out of bounds (ASan/UBSan do the checking);
//   - a rejection is Errc::kInvalidArgument, and its message echoes nothing of what could be
//     a password: the text after the first ':' past "://" (up to the last '@' if there is
//     one). Messages may legitimately quote a scheme or an option name, which are made of
//     "plain" characters, so the check looks at every 4-byte piece of that text holding a
//     character that is not plain (like '!' or a byte >= 0x80) and requires that no such
//     piece appears in the message;
//   - an accepted URL gives a non-empty host, a port in 1..65535 and a database <= 2^31-1;
//   - with a non-empty password, redact_url's output parses to the same config except that
//     the password is "***" (so exactly the password was hidden), and a password of 4 or
//     more characters (decoded, and as written in the URL) occurs in the redacted URL no
//     more often than in the parts of the URL that are not the password (the host may
//     legitimately be spelled like the password).
//
// Build and run by hand (fuzz/CMakeLists.txt builds it as part of TIERCACHE_BUILD_FUZZ):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
//       src/redis/config.cpp src/redis/errors.cpp fuzz/url_fuzz.cpp -o url_fuzz
//   ./url_fuzz -max_total_time=180 corpus/

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tiercache/redis/config.hpp"

namespace {

using tiercache::redis::ClientConfig;
using tiercache::redis::Errc;
using tiercache::redis::Result;

void check(bool condition, const char* what, std::string_view input) {
  if (condition) return;
  std::fprintf(stderr, "url_fuzz: invariant violated: %s\ninput (%zu bytes): %.*s\n", what,
               input.size(), static_cast<int>(input.size()), input.data());
  std::abort();
}

// Occurrences of `needle` in `text`, overlapping ones included.
std::size_t count(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// For a URL parse_url accepted with a non-empty password: the password as written, and the
// URL's text before and after it. By the grammar the userinfo starts after the first "://",
// the password after the first ':' of the userinfo, and it ends at the last '@' of the URL.
struct PasswordSpan {
  std::string_view before;
  std::string_view raw;
  std::string_view after;
};

PasswordSpan password_span(std::string_view url) {
  const std::size_t userinfo = url.find("://") + 3;
  const std::size_t colon = url.find(':', userinfo);
  const std::size_t at = url.rfind('@');
  return {url.substr(0, colon + 1), url.substr(colon + 1, at - colon - 1), url.substr(at)};
}

// The password occurs no more often in `redacted` than in the non-password parts of `url`.
void check_not_leaked(std::string_view password, const PasswordSpan& span,
                      std::string_view redacted, std::string_view url) {
  if (password.size() < 4 || password.find('*') != std::string_view::npos) return;
  check(count(redacted, password) <= count(span.before, password) + count(span.after, password),
        "redact_url left the password in", url);
}

// Characters error messages are made of (their fixed text, schemes, option names).
bool is_plain(char c) {
  const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || std::string_view(" :'/(),.?#@%=[]-_+").find(c) != std::string_view::npos;
}

// What a rejected URL might hold as a password: after the first ':' past "://", up to the last
// '@' if there is one after that ':' (else to the end: "redis://user:password" without host).
std::string_view secret_candidate(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const std::size_t colon = url.find(':', start);
  if (colon == std::string_view::npos) return {};
  const std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < colon) return url.substr(colon + 1);
  return url.substr(colon + 1, at - colon - 1);
}

void check_rejected(const tiercache::redis::Error& error, std::string_view url) {
  check(error.code == tiercache::redis::make_error_code(Errc::kInvalidArgument),
        "rejected with another code than kInvalidArgument", url);
  const std::string message = error.to_string();
  const std::string_view secret = secret_candidate(url);
  constexpr std::size_t kPiece = 4;
  for (std::size_t i = 0; i + kPiece <= secret.size(); ++i) {
    const std::string_view piece = secret.substr(i, kPiece);
    bool special = false;
    for (const char c : piece) special = special || !is_plain(c);
    if (special) {
      check(message.find(piece) == std::string::npos, "an error message echoes a secret", url);
    }
  }
}

void check_accepted(const ClientConfig& config, std::string_view url) {
  check(!config.host.empty(), "empty host", url);
  check(config.port >= 1, "port 0", url);  // <= 65535 by its type
  check(config.database <= 2147483647u, "database out of range", url);
  if (config.password.empty()) return;

  const std::string redacted = tiercache::redis::redact_url(url);
  const Result<ClientConfig> reparsed = tiercache::redis::parse_url(redacted);
  check(reparsed.ok(), "the redacted URL does not parse", url);
  check(reparsed->password == "***", "the redacted URL has another password", url);
  check(reparsed->username == config.username && reparsed->host == config.host &&
            reparsed->port == config.port && reparsed->database == config.database &&
            reparsed->use_tls == config.use_tls && reparsed->protocol == config.protocol &&
            reparsed->client_name == config.client_name &&
            reparsed->command_timeout == config.command_timeout &&
            reparsed->connect_timeout == config.connect_timeout,
        "redact_url changed more than the password", url);

  const PasswordSpan span = password_span(url);
  check_not_leaked(config.password, span, redacted, url);
  check_not_leaked(span.raw, span, redacted, url);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  const Result<ClientConfig> config = tiercache::redis::parse_url(url);
  if (config) {
    check_accepted(*config, url);
  } else {
    check_rejected(config.error(), url);
  }
  (void)tiercache::redis::redact_url(url);  // must not crash on anything
  return 0;
}
