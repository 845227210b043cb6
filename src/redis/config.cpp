// parse_url, redact_url and ClientConfig::endpoint.
//
// The grammar is RFC 3986's generic URI (section 3: scheme "://" authority path [ "?" query ])
// narrowed to the `redis` and `rediss` schemes as IANA's provisional registrations and
// redis-cli -u, redis-py and Lettuce use them. The URL is cut in this order, each step
// working only on what the previous one left:
//   1. scheme: everything before the first "://".
//   2. authority: up to the first '/', '?' or '#' after that. userinfo is what precedes the
//      LAST '@' in the authority (so a raw '@' in a password works) and is split at its
//      FIRST ':' into user and password (so a raw ':' in a password works too).
//   3. An '@' after the authority means a password held a raw '/', '?' or '#', which cut the
//      authority short. The URL is rejected right there, before any check that could quote
//      a piece of the rest, and so a piece of that password.
//   4. host [":" port], then the path "/database", then the query options.
//
// Secrecy rule: an error message may quote the scheme and query option names, nothing else.
// The userinfo, host, port, database and option values are described, never echoed: with
// the host missing, `redis://user:s3cret` reads as host "user" and port "s3cret".

#include "tiercache/redis/config.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tiercache::redis {

namespace {

// Largest database index a URL may select: Redis's `databases` setting is an int.
constexpr std::uint64_t kMaxDatabase = 2'147'483'647;
// Largest timeout a URL may set, in milliseconds: one day.
constexpr std::uint64_t kMaxTimeoutMs = 86'400'000;
// Longest host name (RFC 1035 allows 253 characters in text form; be a little lenient).
constexpr std::size_t kMaxHostLength = 255;
// Longest query option name quoted in an error message.
constexpr std::size_t kMaxQuotedNameLength = 32;

Error invalid(std::string_view problem) {
  std::string message = "redis URL: ";
  message += problem;
  return make_error(Errc::kInvalidArgument, std::move(message));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// A non-empty run of decimal digits whose value is at most `max` (no sign, no spaces).
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');  // value <= max < 2^63 / 10
    if (value > max) return std::nullopt;
  }
  return value;
}

// `text` with every %XX replaced by its byte; nullopt if a '%' is not followed by two hex
// digits. '+' stays '+' (it means a space only in HTML forms).
std::optional<std::string> percent_decode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    decoded += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return decoded;
}

// RFC 3986 scheme syntax: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_scheme_syntax(std::string_view text) {
  if (text.empty() || !is_alpha(text[0])) return false;
  for (const char c : text) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A dotted-quad IPv4 address: four decimal parts 0..255, no leading zeros.
bool is_ipv4_literal(std::string_view text) {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    const std::string_view part =
        text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    if (!parse_decimal(part, 255)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

// An IPv6 address in RFC 4291 section 2.2 text form: eight groups of 1-4 hex digits, at most
// one "::" standing for one or more zero groups, the last 32 bits optionally as IPv4.
bool is_ipv6_literal(std::string_view text) {
  constexpr std::size_t kMaxIpv6TextLength = 45;  // "ffff:...:ffff:255.255.255.255"
  if (text.empty() || text.size() > kMaxIpv6TextLength) return false;
  std::size_t groups = 0;
  bool compressed = false;
  std::size_t i = 0;
  if (text.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
  } else if (text[0] == ':') {
    return false;
  }
  while (i < text.size()) {
    std::size_t end = i;
    while (end < text.size() && hex_value(text[end]) >= 0) ++end;
    if (end < text.size() && text[end] == '.') {  // the IPv4 tail: must run to the end
      if (!is_ipv4_literal(text.substr(i))) return false;
      groups += 2;
      break;
    }
    if (end == i || end - i > 4) return false;
    ++groups;
    i = end;
    if (i == text.size()) break;
    if (text[i] != ':') return false;
    ++i;
    if (i < text.size() && text[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
    } else if (i == text.size()) {
      return false;  // a single trailing ':'
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

// A host name or IPv4 address: letters, digits, '-', '.', '_'.
bool is_host_name(std::string_view text) {
  if (text.empty() || text.size() > kMaxHostLength) return false;
  for (const char c : text) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

// "'name'" when the option name is short and plain enough to quote, else a description.
std::string describe_option(std::string_view name) {
  bool plain = !name.empty() && name.size() <= kMaxQuotedNameLength;
  for (const char c : name) {
    plain = plain && (is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.');
  }
  if (!plain) return "with a malformed name";
  std::string quoted = "'";
  quoted += name;
  quoted += '\'';
  return quoted;
}

// Splits host[:port] (the authority without userinfo) into config.host and config.port.
std::optional<Error> parse_host_and_port(std::string_view host_port, ClientConfig& config) {
  std::string_view host;
  std::optional<std::string_view> port;
  if (!host_port.empty() && host_port[0] == '[') {
    const std::size_t close = host_port.find(']');
    if (close == std::string_view::npos) return invalid("IPv6 address has no closing ']'");
    host = host_port.substr(1, close - 1);
    if (!is_ipv6_literal(host)) return invalid("the text in brackets is not an IPv6 address");
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid("unexpected text after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    const std::size_t colon = host_port.find(':');
    host = host_port.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = host_port.substr(colon + 1);
      if (port->find(':') != std::string_view::npos) {
        return invalid("an IPv6 address must be in brackets, as in redis://[::1]:6379");
      }
    }
    if (host.empty()) return invalid("missing host");
    if (!is_host_name(host)) {
      return invalid("the host is not a host name, an IPv4 address or a bracketed IPv6 address");
    }
  }
  config.host = std::string(host);
  if (port) {
    if (port->empty()) return invalid("the port after ':' is empty");
    const std::optional<std::uint64_t> number = parse_decimal(*port, 65535);
    if (!number || *number == 0) return invalid("the port must be a decimal number in 1..65535");
    config.port = static_cast<std::uint16_t>(*number);
  }
  return std::nullopt;
}

// Splits user[:password] (the userinfo, '@' excluded), decodes both, and replaces config's
// username / password with those that are not empty.
std::optional<Error> parse_userinfo(std::string_view userinfo, ClientConfig& config) {
  const std::size_t colon = userinfo.find(':');
  const std::optional<std::string> user = percent_decode(userinfo.substr(0, colon));
  if (!user) return invalid("the user name has a '%' not followed by two hex digits");
  if (colon != std::string_view::npos) {
    std::optional<std::string> password = percent_decode(userinfo.substr(colon + 1));
    if (!password) return invalid("the password has a '%' not followed by two hex digits");
    if (!password->empty()) config.password = std::move(*password);
  }
  if (!user->empty()) config.username = *user;
  return std::nullopt;
}

std::optional<Error> parse_timeout(std::string_view name, std::string_view value,
                                   std::chrono::milliseconds& into) {
  const std::optional<std::uint64_t> ms = parse_decimal(value, kMaxTimeoutMs);
  if (!ms || *ms == 0) {
    return invalid("query option " + describe_option(name) +
                   " must be a number of milliseconds in 1..86400000");
  }
  into = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
  return std::nullopt;
}

// The query options parse_url knows, in the order of kOptionNames.
enum class Option { kTimeout, kConnectTimeout, kClientName, kProtocol, kCount };
constexpr std::string_view kOptionNames[] = {"timeout", "connect_timeout", "client_name",
                                             "protocol"};

std::optional<Option> option_named(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kOptionNames); ++i) {
    if (kOptionNames[i] == name) return static_cast<Option>(i);
  }
  return std::nullopt;
}

// Sets the field of `config` that `option` names from its (decoded) value.
std::optional<Error> apply_option(Option option, std::string_view name, std::string value,
                                  ClientConfig& config) {
  switch (option) {
    case Option::kTimeout:
      return parse_timeout(name, value, config.command_timeout);
    case Option::kConnectTimeout:
      return parse_timeout(name, value, config.connect_timeout);
    case Option::kClientName:
      for (const char c : value) {
        if (c < '!' || c > '~') {
          return invalid("query option 'client_name' may hold only printable ASCII, no spaces");
        }
      }
      config.client_name = std::move(value);
      return std::nullopt;
    case Option::kProtocol:
      if (value == "2") {
        config.protocol = Protocol::kResp2;
      } else if (value == "3") {
        config.protocol = Protocol::kResp3;
      } else {
        return invalid("query option 'protocol' must be 2 or 3");
      }
      return std::nullopt;
    case Option::kCount:
      break;
  }
  return invalid("internal error: unhandled query option");
}

// Applies the options of the query (the text after '?'): name=value pairs joined by '&'.
std::optional<Error> parse_query(std::string_view query, ClientConfig& config) {
  bool seen[static_cast<std::size_t>(Option::kCount)] = {};
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;  // "a=1&&b=2", a trailing '&'

    const std::size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    if (name.empty()) return invalid("a query option has no name");
    const std::optional<Option> option = option_named(name);
    if (!option) {
      return invalid("unknown query option " + describe_option(name) +
                     " (known: timeout, connect_timeout, client_name, protocol)");
    }
    if (eq == std::string_view::npos) {
      return invalid("query option " + describe_option(name) + " has no '=value'");
    }
    bool& seen_before = seen[static_cast<std::size_t>(*option)];
    if (seen_before) return invalid("query option " + describe_option(name) + " is given twice");
    seen_before = true;

    std::optional<std::string> value = percent_decode(item.substr(eq + 1));
    if (!value) {
      return invalid("query option " + describe_option(name) +
                     " has a '%' not followed by two hex digits");
    }
    if (auto error = apply_option(*option, name, std::move(*value), config)) return error;
  }
  return std::nullopt;
}

}  // namespace

std::string ClientConfig::endpoint() const {
  std::string text;
  if (host.find(':') != std::string::npos) {
    text = "[" + host + "]";
  } else {
    text = host;
  }
  text += ':';
  text += std::to_string(port);
  return text;
}

Result<ClientConfig> parse_url(std::string_view url, ClientConfig base) {
  if (!url.empty() && (is_space(url.front()) || is_space(url.back()))) {
    return invalid("the URL has leading or trailing whitespace");
  }

  // 1. The scheme.
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return invalid("the URL must start with redis:// or rediss://");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  ClientConfig config = std::move(base);
  if (equals_ignoring_case(scheme, "redis")) {
    config.use_tls = false;
  } else if (equals_ignoring_case(scheme, "rediss")) {
    config.use_tls = true;
  } else if (is_scheme_syntax(scheme) && scheme.size() <= kMaxQuotedNameLength) {
    return invalid("unknown scheme '" + std::string(scheme) + "' (expected redis or rediss)");
  } else {
    return invalid("the URL must start with redis:// or rediss://");
  }

  // 2. The authority, and 3. nothing that looks like the rest of a userinfo after it.
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view after_authority =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (after_authority.find('@') != std::string_view::npos) {
    return invalid(
        "'@' after the host: percent-encode '/', '?', '#' and '@' in the user name and "
        "password (%2F, %3F, %23, %40)");
  }
  if (after_authority.find('#') != std::string_view::npos) {
    return invalid("a redis URL has no '#fragment'");
  }

  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (auto error = parse_userinfo(authority.substr(0, at), config)) return std::move(*error);
  }

  // 4. host[:port], /database, ?options.
  const std::string_view host_port =
      at == std::string_view::npos ? authority : authority.substr(at + 1);
  if (host_port.empty()) return invalid("missing host");
  if (auto error = parse_host_and_port(host_port, config)) return std::move(*error);

  const std::size_t query_start = after_authority.find('?');
  const std::string_view path = after_authority.substr(0, query_start);
  if (path.size() > 1) {  // "" and "/" select nothing
    const std::optional<std::uint64_t> database = parse_decimal(path.substr(1), kMaxDatabase);
    if (!database) return invalid("the database must be a decimal number in 0..2147483647");
    config.database = static_cast<std::uint32_t>(*database);
  }

  if (query_start != std::string_view::npos) {
    if (auto error = parse_query(after_authority.substr(query_start + 1), config)) {
      return std::move(*error);
    }
  }
  return config;
}

std::string redact_url(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t userinfo_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < userinfo_start) return std::string(url);
  const std::size_t colon = url.find(':', userinfo_start);
  if (colon == std::string_view::npos || colon + 1 >= at) return std::string(url);

  std::string redacted(url.substr(0, colon + 1));
  redacted += "***";
  redacted += url.substr(at);
  return redacted;
}

}  // namespace tiercache::redis
