// ClientConfig's defaults, parse_url and redact_url: what a URL sets, what it keeps from the
// base config, what it rejects, and that a password never reaches an error message or a log.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/redis/config.hpp"

namespace tiercache::redis {
namespace {

using namespace std::chrono_literals;

// The config `url` describes; a test failure (with the error) if parse_url rejects it.
ClientConfig parsed(std::string_view url, ClientConfig base = {}) {
  Result<ClientConfig> result = parse_url(url, std::move(base));
  if (!result) {
    ADD_FAILURE() << "parse_url(\"" << url << "\"): " << result.error().to_string();
    return ClientConfig{};
  }
  return std::move(result).value();
}

// The error parse_url gives for `url`; a test failure if it accepts it.
Error rejection(std::string_view url) {
  Result<ClientConfig> result = parse_url(url);
  if (result) {
    ADD_FAILURE() << "parse_url(\"" << url << "\") accepted a malformed URL";
    return Error{};
  }
  EXPECT_EQ(result.error().code, make_error_code(Errc::kInvalidArgument)) << url;
  return result.error();
}

bool rejected(std::string_view url) { return !parse_url(url).ok(); }

// ---- ClientConfig ---------------------------------------------------------------------------

TEST(ClientConfig, DefaultsToALocalRedisOverOneConnection) {
  const ClientConfig config;

  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.port, 6379);
  EXPECT_EQ(config.database, 0u);
  EXPECT_EQ(config.username, "");
  EXPECT_EQ(config.password, "");
  EXPECT_FALSE(config.credentials_provider);
  EXPECT_EQ(config.client_name, "tiercache");
  EXPECT_FALSE(config.use_tls);
  EXPECT_EQ(config.protocol, Protocol::kResp3WithFallback);
  EXPECT_EQ(config.connections, 1u);
}

TEST(ClientConfig, DefaultsToVerifiedTls12WithTheSystemTrustStore) {
  const TlsOptions tls;

  EXPECT_TRUE(tls.verify_peer);
  EXPECT_EQ(tls.min_version, TlsVersion::kTls12);
  EXPECT_EQ(tls.ca_file, "");
  EXPECT_EQ(tls.ca_dir, "");
  EXPECT_EQ(tls.cert_file, "");
  EXPECT_EQ(tls.key_file, "");
  EXPECT_EQ(tls.server_name, "");
}

TEST(ClientConfig, DefaultsToBoundedTimeoutsAndBackoff) {
  const ClientConfig config;

  EXPECT_EQ(config.connect_timeout, 2s);
  EXPECT_EQ(config.command_timeout, 1s);
  EXPECT_EQ(config.health_check_interval, 5s);
  EXPECT_EQ(config.reconnect_min_delay, 50ms);
  EXPECT_EQ(config.reconnect_max_delay, 5s);
  EXPECT_DOUBLE_EQ(config.reconnect_jitter, 0.2);
}

TEST(ClientConfig, DefaultsToBoundedQueuesAndRedisOwnReplyLimits) {
  const ClientConfig config;

  EXPECT_EQ(config.max_pending_requests, 65536u);
  EXPECT_EQ(config.max_write_batch_bytes, 1024u * 1024u);
  EXPECT_EQ(config.limits.max_depth, 32u);
  EXPECT_EQ(config.limits.max_bulk_length, 512u * 1024u * 1024u);
  EXPECT_EQ(config.limits.max_aggregate_length, 1u << 24);
  EXPECT_EQ(config.limits.max_reply_bytes, 1024u * 1024u * 1024u);
  EXPECT_EQ(config.limits.max_line_length, 64u * 1024u);
}

TEST(ClientConfig, EndpointJoinsHostAndPort) {
  ClientConfig config;
  config.host = "cache.internal";
  config.port = 6380;

  EXPECT_EQ(config.endpoint(), "cache.internal:6380");
  EXPECT_EQ(ClientConfig{}.endpoint(), "127.0.0.1:6379");
}

TEST(ClientConfig, EndpointPutsAnIpv6HostInBrackets) {
  ClientConfig config;
  config.host = "::1";
  config.port = 6380;

  EXPECT_EQ(config.endpoint(), "[::1]:6380");
}

// ---- parse_url: what a URL sets -------------------------------------------------------------

TEST(ParseUrl, ReadsAHostAloneAndKeepsTheDefaults) {
  const ClientConfig config = parsed("redis://cache.internal");

  EXPECT_EQ(config.host, "cache.internal");
  EXPECT_EQ(config.port, 6379);
  EXPECT_EQ(config.database, 0u);
  EXPECT_EQ(config.username, "");
  EXPECT_EQ(config.password, "");
  EXPECT_FALSE(config.use_tls);
}

TEST(ParseUrl, ReadsUserPasswordHostPortAndDatabase) {
  const ClientConfig config = parsed("redis://app:s3cret@cache.internal:6380/2");

  EXPECT_EQ(config.username, "app");
  EXPECT_EQ(config.password, "s3cret");
  EXPECT_EQ(config.host, "cache.internal");
  EXPECT_EQ(config.port, 6380);
  EXPECT_EQ(config.database, 2u);
}

TEST(ParseUrl, ReadsAPasswordWithoutAUser) {
  const ClientConfig config = parsed("redis://:s3cret@10.0.0.7");

  EXPECT_EQ(config.username, "");
  EXPECT_EQ(config.password, "s3cret");
  EXPECT_EQ(config.host, "10.0.0.7");
}

TEST(ParseUrl, ReadsAUserWithoutAPassword) {
  const ClientConfig config = parsed("redis://app@cache");

  EXPECT_EQ(config.username, "app");
  EXPECT_EQ(config.password, "");
}

TEST(ParseUrl, ReadsAnIpv6HostInBrackets) {
  const ClientConfig loopback = parsed("redis://[::1]:6380");
  EXPECT_EQ(loopback.host, "::1");
  EXPECT_EQ(loopback.port, 6380);
  EXPECT_EQ(loopback.endpoint(), "[::1]:6380");

  const ClientConfig full = parsed("redis://u:p@[2001:db8:0:0:0:0:0:7]/3");
  EXPECT_EQ(full.host, "2001:db8:0:0:0:0:0:7");
  EXPECT_EQ(full.port, 6379);
  EXPECT_EQ(full.database, 3u);
  EXPECT_EQ(full.password, "p");

  EXPECT_EQ(parsed("redis://[::ffff:192.0.2.1]").host, "::ffff:192.0.2.1");
  EXPECT_EQ(parsed("redis://[fe80::]").host, "fe80::");
}

TEST(ParseUrl, RejectsMalformedIpv6Addresses) {
  EXPECT_TRUE(rejected("redis://[::1"));
  EXPECT_TRUE(rejected("redis://[::1]x"));
  EXPECT_TRUE(rejected("redis://[::1]6379"));
  EXPECT_TRUE(rejected("redis://[]"));
  EXPECT_TRUE(rejected("redis://[cache]"));
  EXPECT_TRUE(rejected("redis://[1:2:3]"));
  EXPECT_TRUE(rejected("redis://[1::2::3]"));
  EXPECT_TRUE(rejected("redis://[12345::1]"));
  EXPECT_TRUE(rejected("redis://[1:2:3:4:5:6:7:8:9]"));
  EXPECT_TRUE(rejected("redis://[::1.2.3.256]"));
  EXPECT_TRUE(rejected("redis://[fe80::1%25eth0]"));  // zone ids are not supported
  // Without brackets, the colons of an IPv6 address cannot be told from a port.
  EXPECT_TRUE(rejected("redis://::1"));
  EXPECT_TRUE(rejected("redis://2001:db8::7:6379"));
}

TEST(ParseUrl, DecodesPercentEscapesInUserAndPassword) {
  const ClientConfig config = parsed("redis://us%65r%2dA:p%40ss%3Aw%2Fo%25rd%3f%23@cache");

  EXPECT_EQ(config.username, "user-A");
  EXPECT_EQ(config.password, "p@ss:w/o%rd?#");
  EXPECT_EQ(config.host, "cache");
}

TEST(ParseUrl, AcceptsARawAtAndColonInThePassword) {
  const ClientConfig config = parsed("redis://app:p@ss:w@rd@cache:7000");

  EXPECT_EQ(config.username, "app");
  EXPECT_EQ(config.password, "p@ss:w@rd");
  EXPECT_EQ(config.host, "cache");
  EXPECT_EQ(config.port, 7000);
}

TEST(ParseUrl, KeepsAPlusSignInThePassword) {
  EXPECT_EQ(parsed("redis://u:a+b@cache").password, "a+b");
}

TEST(ParseUrl, RejectsBadPercentEscapes) {
  EXPECT_TRUE(rejected("redis://u:%zz@cache"));
  EXPECT_TRUE(rejected("redis://u:ab%g1@cache"));
  EXPECT_TRUE(rejected("redis://u:ab%4@cache"));  // truncated before '@'
  EXPECT_TRUE(rejected("redis://u:ab%@cache"));
  EXPECT_TRUE(rejected("redis://%zz:p@cache"));
  EXPECT_TRUE(rejected("redis://us%4:p@cache"));
  EXPECT_TRUE(rejected("redis://us%:p@cache"));
}

TEST(ParseUrl, NamesTheComponentWithABadEscape) {
  EXPECT_NE(rejection("redis://u:%zz@cache").message.find("password"), std::string::npos);
  EXPECT_NE(rejection("redis://%zz:p@cache").message.find("user"), std::string::npos);
}

TEST(ParseUrl, RedissTurnsTlsOnAndRedisTurnsItOff) {
  EXPECT_TRUE(parsed("rediss://cache:6380").use_tls);

  ClientConfig tls_base;
  tls_base.use_tls = true;
  EXPECT_FALSE(parsed("redis://cache", tls_base).use_tls);
}

TEST(ParseUrl, ReadsTheSchemeInAnyCase) {
  EXPECT_FALSE(parsed("REDIS://cache").use_tls);
  EXPECT_TRUE(parsed("Rediss://cache").use_tls);
}

TEST(ParseUrl, RejectsAnUnknownSchemeNamingIt) {
  EXPECT_NE(rejection("http://cache").message.find("'http'"), std::string::npos);
  EXPECT_TRUE(rejected("redis+sentinel://cache"));
  EXPECT_TRUE(rejected("unix:///run/redis.sock"));
}

TEST(ParseUrl, RejectsAUrlWithoutScheme) {
  EXPECT_TRUE(rejected(""));
  EXPECT_TRUE(rejected("cache:6379"));
  EXPECT_TRUE(rejected("redis:/cache"));
  EXPECT_TRUE(rejected("redis:cache"));
  EXPECT_TRUE(rejected("://cache"));
}

TEST(ParseUrl, RejectsAMissingHost) {
  EXPECT_NE(rejection("redis://").message.find("missing host"), std::string::npos);
  EXPECT_TRUE(rejected("redis://:6379"));
  EXPECT_TRUE(rejected("redis://u:p@"));
  EXPECT_TRUE(rejected("redis://u:p@:6379"));
  EXPECT_TRUE(rejected("redis:///0"));
  EXPECT_TRUE(rejected("redis://?timeout=5"));
}

TEST(ParseUrl, RejectsAHostWithCharactersNoHostHas) {
  EXPECT_TRUE(rejected("redis://cache internal"));
  EXPECT_TRUE(rejected("redis://cache%2Einternal"));
  EXPECT_TRUE(rejected("redis://ca*che"));
  EXPECT_TRUE(rejected("redis://" + std::string(256, 'a')));
}

TEST(ParseUrl, AcceptsPortsFrom1To65535) {
  EXPECT_EQ(parsed("redis://cache:1").port, 1);
  EXPECT_EQ(parsed("redis://cache:65535").port, 65535);
  EXPECT_EQ(parsed("redis://cache:06380").port, 6380);
}

TEST(ParseUrl, RejectsABadPort) {
  EXPECT_TRUE(rejected("redis://cache:0"));
  EXPECT_TRUE(rejected("redis://cache:65536"));
  EXPECT_TRUE(rejected("redis://cache:99999999999999999999999"));
  EXPECT_TRUE(rejected("redis://cache:12a"));
  EXPECT_TRUE(rejected("redis://cache:-1"));
  EXPECT_TRUE(rejected("redis://cache:+1"));
  EXPECT_TRUE(rejected("redis://cache:0x1F"));
  EXPECT_TRUE(rejected("redis://cache: 1"));
  EXPECT_TRUE(rejected("redis://[::1]:0"));
  EXPECT_NE(rejection("redis://cache:").message.find("empty"), std::string::npos);
  EXPECT_NE(rejection("redis://[::1]:/0").message.find("empty"), std::string::npos);
}

TEST(ParseUrl, ReadsTheDatabaseUpTo2To31Minus1) {
  EXPECT_EQ(parsed("redis://cache/0").database, 0u);
  EXPECT_EQ(parsed("redis://cache:6379/15").database, 15u);
  EXPECT_EQ(parsed("redis://cache/2147483647").database, 2147483647u);
}

TEST(ParseUrl, TreatsAnEmptyPathAsNoDatabase) {
  ClientConfig base;
  base.database = 4;

  EXPECT_EQ(parsed("redis://cache/", base).database, 4u);
  EXPECT_EQ(parsed("redis://cache/?timeout=5", base).database, 4u);
}

TEST(ParseUrl, RejectsABadDatabase) {
  EXPECT_TRUE(rejected("redis://cache/x"));
  EXPECT_TRUE(rejected("redis://cache/-1"));
  EXPECT_TRUE(rejected("redis://cache/2147483648"));
  EXPECT_TRUE(rejected("redis://cache/1/2"));
  EXPECT_TRUE(rejected("redis://cache/0x1"));
  EXPECT_TRUE(rejected("redis://cache/ 1"));
  EXPECT_TRUE(rejected("redis://cache//1"));
}

TEST(ParseUrl, ReadsQueryOptions) {
  const ClientConfig config =
      parsed("redis://cache/1?timeout=250&connect_timeout=1500&client_name=svc%2DA&protocol=2");

  EXPECT_EQ(config.command_timeout, 250ms);
  EXPECT_EQ(config.connect_timeout, 1500ms);
  EXPECT_EQ(config.client_name, "svc-A");
  EXPECT_EQ(config.protocol, Protocol::kResp2);
  EXPECT_EQ(config.database, 1u);
}

TEST(ParseUrl, ReadsProtocol3AsResp3WithoutFallback) {
  EXPECT_EQ(parsed("redis://cache?protocol=3").protocol, Protocol::kResp3);
}

TEST(ParseUrl, AcceptsAnEmptyClientNameToLeaveConnectionsUnnamed) {
  EXPECT_EQ(parsed("redis://cache?client_name=").client_name, "");
}

TEST(ParseUrl, SkipsEmptyQueryItems) {
  EXPECT_EQ(parsed("redis://cache?&timeout=5&&").command_timeout, 5ms);
  EXPECT_EQ(parsed("redis://cache?").command_timeout, ClientConfig{}.command_timeout);
}

TEST(ParseUrl, RejectsAnUnknownQueryOptionNamingIt) {
  const Error error = rejection("redis://cache?ssl_cert_reqs=none");

  EXPECT_NE(error.message.find("'ssl_cert_reqs'"), std::string::npos) << error.message;
}

TEST(ParseUrl, RejectsMalformedQueryOptions) {
  EXPECT_TRUE(rejected("redis://cache?timeout"));
  EXPECT_TRUE(rejected("redis://cache?timeout="));
  EXPECT_TRUE(rejected("redis://cache?timeout=0"));
  EXPECT_TRUE(rejected("redis://cache?timeout=abc"));
  EXPECT_TRUE(rejected("redis://cache?timeout=1.5"));
  EXPECT_TRUE(rejected("redis://cache?timeout=86400001"));
  EXPECT_TRUE(rejected("redis://cache?connect_timeout=-5"));
  EXPECT_TRUE(rejected("redis://cache?timeout=%zz"));
  EXPECT_TRUE(rejected("redis://cache?timeout=1&timeout=2"));
  EXPECT_TRUE(rejected("redis://cache?protocol=4"));
  EXPECT_TRUE(rejected("redis://cache?protocol=resp3"));
  EXPECT_TRUE(rejected("redis://cache?client_name=a%20b"));
  EXPECT_TRUE(rejected("redis://cache?client_name=a%0Ab"));
  EXPECT_TRUE(rejected("redis://cache?=1"));
  EXPECT_TRUE(rejected("redis://cache?Timeout=5"));
}

TEST(ParseUrl, RejectsLeadingOrTrailingWhitespace) {
  EXPECT_TRUE(rejected(" redis://cache"));
  EXPECT_TRUE(rejected("redis://cache:6379\n"));
  EXPECT_TRUE(rejected("redis://cache/0\t"));
}

TEST(ParseUrl, RejectsAFragment) {
  EXPECT_TRUE(rejected("redis://cache#x"));
  EXPECT_TRUE(rejected("redis://cache/0?timeout=5#x"));
}

TEST(ParseUrl, AsksToEncodeARawSlashQuestionMarkOrHashInThePassword) {
  for (const char* url : {"redis://u:pa/ss@cache", "redis://u:pa?ss@cache", "redis://u:pa#ss@cache",
                          "redis://cache/0?client_name=a@b"}) {
    EXPECT_NE(rejection(url).message.find("percent-encode"), std::string::npos) << url;
  }
}

TEST(ParseUrl, KeepsBaseValuesTheUrlDoesNotSet) {
  ClientConfig base;
  base.port = 7000;
  base.database = 3;
  base.username = "svc";
  base.password = "from-vault";
  base.client_name = "billing";
  base.command_timeout = 300ms;
  base.protocol = Protocol::kResp2;
  base.tls.ca_file = "/etc/redis/ca.pem";
  base.connections = 4;
  base.credentials_provider = [] { return Result<Credentials>(Credentials{"a", "b"}); };

  const ClientConfig config = parsed("rediss://cache.internal", base);

  EXPECT_EQ(config.host, "cache.internal");
  EXPECT_TRUE(config.use_tls);
  EXPECT_EQ(config.port, 7000);
  EXPECT_EQ(config.database, 3u);
  EXPECT_EQ(config.username, "svc");
  EXPECT_EQ(config.password, "from-vault");
  EXPECT_EQ(config.client_name, "billing");
  EXPECT_EQ(config.command_timeout, 300ms);
  EXPECT_EQ(config.protocol, Protocol::kResp2);
  EXPECT_EQ(config.tls.ca_file, "/etc/redis/ca.pem");
  EXPECT_EQ(config.connections, 4u);
  ASSERT_TRUE(config.credentials_provider);
  EXPECT_EQ(config.credentials_provider()->username, "a");
}

TEST(ParseUrl, ReplacesOnlyTheBaseValuesTheUrlSets) {
  ClientConfig base;
  base.username = "svc";
  base.password = "from-vault";
  base.command_timeout = 300ms;

  const ClientConfig with_user = parsed("redis://app@cache:6380/5?connect_timeout=100", base);
  EXPECT_EQ(with_user.username, "app");
  EXPECT_EQ(with_user.password, "from-vault");
  EXPECT_EQ(with_user.port, 6380);
  EXPECT_EQ(with_user.database, 5u);
  EXPECT_EQ(with_user.connect_timeout, 100ms);
  EXPECT_EQ(with_user.command_timeout, 300ms);

  const ClientConfig with_password = parsed("redis://:rotated@cache", base);
  EXPECT_EQ(with_password.username, "svc");
  EXPECT_EQ(with_password.password, "rotated");
}

// ---- secrets --------------------------------------------------------------------------------

// Malformed URLs holding the password "Hunter2Zebra!Quux" (raw, cut up by a raw '/', '?' or
// '#', or encoded): no error message may contain the password or a piece of it.
TEST(ParseUrl, NeverPutsThePasswordIntoAnErrorMessage) {
  const std::vector<std::string> urls = {
      "http://app:Hunter2Zebra!Quux@cache",
      "redis://app:Hunter2Zebra!Quux",  // the host forgotten: the password reads as a port
      "redis://app:Hunter2Zebra!Quux@",
      "redis://app:Hunter2Zebra!Quux@:6379",
      "redis://app:Hunter2Zebra!Quux@cache:12a",
      "redis://app:Hunter2Zebra!Quux@cache:",
      "redis://app:Hunter2Zebra!Quux@cache:0",
      "redis://app:Hunter2Zebra!Quux@cache/x",
      "redis://app:Hunter2Zebra!Quux@cache?foo=1",
      "redis://app:Hunter2Zebra!Quux@cache?timeout=abc",
      "redis://app:Hunter2Zebra!Quux@[::1",
      "redis://app:Hunter2Zebra!Quux@::1",
      "redis://app:Hunter2Zebra!Quux@ca che",
      "redis://app:Hunter2Zebra!Quux%zz@cache",
      "redis://app:Hunter2Zebra!Quux%4@cache",
      "redis://app:Hunter2/Zebra!Quux@cache",
      "redis://app:Hunter2?Zebra!Quux@cache",
      "redis://app:Hunter2#Zebra!Quux@cache",
      "redis://app:Hunter2Zebra/Quux",
      "redis://app:Hunter2Zebra?Quux=1",
      "redis://app:Hunter2%5AZebra!Quux@cache:99999",
      " redis://app:Hunter2Zebra!Quux@cache",
      "redis:/app:Hunter2Zebra!Quux@cache",
      "app:Hunter2Zebra!Quux@cache",
  };
  for (const std::string& url : urls) {
    const Error error = rejection(url);
    const std::string text = error.to_string();
    for (const std::string_view piece : {"Hunter", "Zebra", "Quux"}) {
      EXPECT_EQ(text.find(piece), std::string::npos) << url << " -> " << text;
    }
  }
}

TEST(RedactUrl, HidesThePassword) {
  EXPECT_EQ(redact_url("redis://app:s3cret@cache:6379/2"), "redis://app:***@cache:6379/2");
  EXPECT_EQ(redact_url("rediss://:s3cret@[::1]:6380?timeout=5"),
            "rediss://:***@[::1]:6380?timeout=5");
}

TEST(RedactUrl, HidesAPasswordHoldingAtAndColon) {
  EXPECT_EQ(redact_url("redis://app:p@ss:w@rd@cache"), "redis://app:***@cache");
  EXPECT_EQ(redact_url("redis://app:p%40ss@cache"), "redis://app:***@cache");
}

TEST(RedactUrl, HidesThePasswordOfUrlsParseUrlRejects) {
  EXPECT_EQ(redact_url("redis://app:pa/ss@cache"), "redis://app:***@cache");
  EXPECT_EQ(redact_url("app:s3cret@cache"), "app:***@cache");
  EXPECT_EQ(redact_url("http://app:s3cret@cache:12a"), "http://app:***@cache:12a");
}

TEST(RedactUrl, LeavesAUrlWithoutPasswordUnchanged) {
  for (const char* url : {"redis://cache:6379/0", "redis://app@cache", "redis://app:@cache",
                          "redis://[::1]:6380", "redis://app@[::1]:6380", "", "redis://"}) {
    EXPECT_EQ(redact_url(url), url);
  }
}

TEST(RedactUrl, GivesAUrlThatParsesToTheSameConfigWithStarsForThePassword) {
  const std::string url = "rediss://app:p%2Fss@cache:6380/3?timeout=70&client_name=svc";
  const ClientConfig original = parsed(url);
  const ClientConfig redacted = parsed(redact_url(url));

  EXPECT_EQ(redacted.password, "***");
  EXPECT_EQ(redacted.username, original.username);
  EXPECT_EQ(redacted.endpoint(), original.endpoint());
  EXPECT_EQ(redacted.database, original.database);
  EXPECT_EQ(redacted.use_tls, original.use_tls);
  EXPECT_EQ(redacted.command_timeout, original.command_timeout);
  EXPECT_EQ(redacted.client_name, original.client_name);
}

}  // namespace
}  // namespace tiercache::redis
