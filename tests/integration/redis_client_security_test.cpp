// The Redis client against the TLS (client certificates required) and ACL servers of
// scripts/redis-env.sh. Each test skips when its server's variables are absent.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "tiercache/redis/client.hpp"

namespace tiercache::redis {
namespace {

using namespace std::chrono_literals;

constexpr auto kSlack = 400ms;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// ---- TLS ------------------------------------------------------------------------------------

struct TlsServer {
  ClientConfig config;  // the right CA and client certificate
  std::string other_ca, other_cert, other_key;
};

std::optional<TlsServer> tls_server() {
  auto url = env("TIERCACHE_TEST_REDIS_TLS_URL");
  auto ca = env("TIERCACHE_TEST_REDIS_TLS_CA");
  auto cert = env("TIERCACHE_TEST_REDIS_TLS_CERT");
  auto key = env("TIERCACHE_TEST_REDIS_TLS_KEY");
  auto other_ca = env("TIERCACHE_TEST_REDIS_TLS_OTHER_CA");
  auto other_cert = env("TIERCACHE_TEST_REDIS_TLS_OTHER_CERT");
  auto other_key = env("TIERCACHE_TEST_REDIS_TLS_OTHER_KEY");
  if (!url || !ca || !cert || !key || !other_ca || !other_cert || !other_key) return std::nullopt;
  Result<ClientConfig> config = parse_url(*url);
  if (!config.ok()) return std::nullopt;
  TlsServer server{config.value(), *other_ca, *other_cert, *other_key};
  server.config.tls.ca_file = *ca;
  server.config.tls.cert_file = *cert;
  server.config.tls.key_file = *key;
  server.config.connect_timeout = 1s;
  return server;
}

#define REQUIRE_TLS_SERVER(server)                \
  std::optional<TlsServer> server = tls_server(); \
  if (!server) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_TLS_* not set (scripts/redis-env.sh)"

// A call that must fail fast (no waiting for the whole deadline is asserted, only the bound).
Error failure_of(Client& client, std::chrono::milliseconds timeout = 1500ms) {
  const auto start = std::chrono::steady_clock::now();
  Result<void> r = client.ping({.timeout = timeout});
  EXPECT_LT(std::chrono::steady_clock::now() - start, timeout + kSlack);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

TEST(RedisClientTls, ConnectsWithTheRightCaAndClientCertificate) {
  REQUIRE_TLS_SERVER(server);
  Client client(server->config);
  ASSERT_TRUE(client.ping({.timeout = 3s}).ok());
  EXPECT_TRUE(client.command("SET", "tc:tls", "v").ok());
  EXPECT_EQ(client.command("GET", "tc:tls")->string, "v");
}

TEST(RedisClientTls, RejectsAServerCertificateFromAnotherCa) {
  REQUIRE_TLS_SERVER(server);
  ClientConfig config = server->config;
  config.tls.ca_file = server->other_ca;
  Client client(config);
  const Error error = failure_of(client);
  EXPECT_EQ(error.code, Errc::kTls) << error.to_string();
  EXPECT_NE(error.message.find("certificate"), std::string::npos) << error.message;
}

TEST(RedisClientTls, RejectsAServerWhoseNameDoesNotMatch) {
  REQUIRE_TLS_SERVER(server);
  ClientConfig config = server->config;
  config.tls.server_name = "not-the-server.example";
  Client client(config);
  EXPECT_EQ(failure_of(client).code, Errc::kTls);
}

TEST(RedisClientTls, IsRefusedWithoutAClientCertificate) {
  REQUIRE_TLS_SERVER(server);
  ClientConfig config = server->config;
  config.tls.cert_file.clear();
  config.tls.key_file.clear();
  Client client(config);
  const Error error = failure_of(client);
  // TLS 1.3: the server refuses the (missing) certificate after the client's handshake is done,
  // so the refusal arrives as an alert on the first read.
  EXPECT_EQ(error.code, Errc::kTls) << error.to_string();
}

TEST(RedisClientTls, IsRefusedWithAClientCertificateFromAnotherCa) {
  REQUIRE_TLS_SERVER(server);
  ClientConfig config = server->config;
  config.tls.cert_file = server->other_cert;
  config.tls.key_file = server->other_key;
  Client client(config);
  EXPECT_EQ(failure_of(client).code, Errc::kTls);
}

TEST(RedisClientTls, MissingCertificateFileIsATlsErrorForEveryCall) {
  REQUIRE_TLS_SERVER(server);
  ClientConfig config = server->config;
  config.tls.ca_file = "/nonexistent/ca.crt";
  Client client(config);
  const Error error = failure_of(client);
  EXPECT_EQ(error.code, Errc::kTls);
  EXPECT_NE(error.message.find("/nonexistent/ca.crt"), std::string::npos);
}

// ---- ACL ------------------------------------------------------------------------------------

struct AclServer {
  ClientConfig user;   // the limited user
  ClientConfig admin;  // the default user, full access
  std::string prefix;
};

std::optional<AclServer> acl_server() {
  auto url = env("TIERCACHE_TEST_REDIS_ACL_URL");
  auto user = env("TIERCACHE_TEST_REDIS_ACL_USER");
  auto password = env("TIERCACHE_TEST_REDIS_ACL_PASSWORD");
  auto admin_password = env("TIERCACHE_TEST_REDIS_ACL_ADMIN_PASSWORD");
  auto prefix = env("TIERCACHE_TEST_REDIS_ACL_PREFIX");
  if (!url || !user || !password || !admin_password || !prefix) return std::nullopt;
  Result<ClientConfig> base = parse_url(*url);
  if (!base.ok()) return std::nullopt;
  AclServer server{base.value(), base.value(), *prefix};
  server.user.username = *user;
  server.user.password = *password;
  server.admin.password = *admin_password;
  return server;
}

#define REQUIRE_ACL_SERVER(server)                \
  std::optional<AclServer> server = acl_server(); \
  if (!server) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_ACL_* not set (scripts/redis-env.sh)"

TEST(RedisClientAcl, AUserIsConfinedToItsKeyPrefix) {
  REQUIRE_ACL_SERVER(server);
  Client client(server->user);
  EXPECT_TRUE(client.command("SET", server->prefix + "acl", "v").ok());
  const Result<Reply> denied = client.command("SET", "elsewhere", "v");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, Errc::kServerError);
  EXPECT_NE(denied.error().message.find("NOPERM"), std::string::npos) << denied.error().message;
}

TEST(RedisClientAcl, AWrongPasswordIsAnAuthErrorAtOnceAndNeverPrintsThePassword) {
  REQUIRE_ACL_SERVER(server);
  ClientConfig config = server->user;
  config.password = "not-the-password-3f9a";
  Client client(config);
  const Error error = failure_of(client, 3s);
  EXPECT_EQ(error.code, Errc::kAuth) << error.to_string();
  EXPECT_EQ(error.message.find("not-the-password-3f9a"), std::string::npos);
}

TEST(RedisClientAcl, ARotatedPasswordIsPickedUpOnReconnect) {
  REQUIRE_ACL_SERVER(server);
  Client admin(server->admin);
  std::mt19937_64 random{std::random_device{}()};
  const std::string user = "rotating" + std::to_string(random() % 1000000);
  const std::string first = "first-" + std::to_string(random());
  const std::string second = "second-" + std::to_string(random());
  ASSERT_TRUE(
      admin.command("ACL", "SETUSER", user, "reset", "on", ">" + first, "~tc:*", "+@all").ok());

  std::mutex mutex;
  std::string current = first;
  std::atomic<int> asked{0};
  ClientConfig config = server->user;
  config.username.clear();
  config.password.clear();
  config.credentials_provider = [&]() -> Result<Credentials> {
    ++asked;
    std::lock_guard lock(mutex);
    return Credentials{user, current};
  };
  Client client(config);
  ASSERT_TRUE(client.ping({.timeout = 3s}).ok());

  // Rotate: the server now knows only the second password; the provider hands it out; the
  // server drops the user's connections, and the client reconnects with it.
  ASSERT_TRUE(admin.command("ACL", "SETUSER", user, "resetpass", ">" + second).ok());
  {
    std::lock_guard lock(mutex);
    current = second;
  }
  ASSERT_TRUE(admin.command("CLIENT", "KILL", "USER", user).ok());

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool worked = false;
  while (!worked && std::chrono::steady_clock::now() < deadline) {
    worked = client.command("SET", "tc:rotated", "yes").ok();
  }
  EXPECT_TRUE(worked);
  EXPECT_GE(asked.load(), 2);
  EXPECT_GE(client.stats().connects, 2u);
  admin.command("ACL", "DELUSER", user);
}

}  // namespace
}  // namespace tiercache::redis
