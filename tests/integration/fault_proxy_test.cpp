// FaultProxy (tests/support/fault_proxy.hpp) in front of the shared redis-server of
// scripts/redis-env.sh (TIERCACHE_TEST_REDIS_URL; every test skips without it), driven by
// tiercache's own Redis client and by raw sockets where the bytes on the wire matter.
//
// Each fault is checked for what a client sees. Timing assertions are lower bounds only
// where the fault adds time (latency, bandwidth: the proxy guarantees them), and deadlines
// with slack where a call must return; conditions are polled with a deadline, never slept on.

#include "fault_proxy.hpp"

#include <gtest/gtest.h>

#include <asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "support/fake_server.hpp"
#include "support/raw_connection.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::testing {
namespace {

using namespace std::chrono_literals;
using redis::Client;
using redis::ClientConfig;
using redis::Errc;
using redis::Reply;
using redis::Request;
using redis::Result;
using test::RawConnection;

// Slack allowed past a deadline (scheduling on a loaded 2-core machine, sanitizers).
constexpr auto kSlack = 400ms;

std::optional<ClientConfig> shared_server() {
  const char* url = std::getenv("TIERCACHE_TEST_REDIS_URL");
  if (url == nullptr) return std::nullopt;
  Result<ClientConfig> config = redis::parse_url(url);
  if (!config.ok()) return std::nullopt;
  return config.value();
}

#define REQUIRE_SHARED_SERVER(config)                   \
  std::optional<ClientConfig> config = shared_server(); \
  if (!config) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_URL not set (scripts/redis-env.sh)"

// A unique key per test, so tests sharing a server never see each other's keys.
std::string key(std::string_view name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("tc:test:proxy:") + info->name() + ":" + std::string(name);
}

// The config of a client that talks to the server through `proxy`. No health check: the
// only traffic is the test's.
ClientConfig through(const FaultProxy& proxy) {
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = proxy.port();
  config.health_check_interval = 0ms;
  return config;
}

// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(FaultProxy, ForwardsCommandsAndRepliesUnchanged) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  EXPECT_EQ(proxy.url(), "redis://127.0.0.1:" + std::to_string(proxy.port()));
  Client client(through(proxy));
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  ASSERT_TRUE(client.command("SET", key("k"), value).ok());
  const Result<Reply> got = client.command("GET", key("k"));
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(got->string, value);
  EXPECT_EQ(proxy.accepted(), 1u);
  EXPECT_EQ(proxy.open_connections(), 1u);
}

TEST(FaultProxy, LatencyIsAddedEachWay) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  Client client(through(proxy));
  ASSERT_TRUE(client.ping().ok());
  proxy.set_latency(100ms);
  const auto start = std::chrono::steady_clock::now();
  const Result<void> pong = client.ping({.timeout = 5s});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(pong.ok()) << pong.error().to_string();
  EXPECT_GE(elapsed, 200ms);  // 100 ms for PING, 100 ms for PONG
  proxy.heal();
  ASSERT_TRUE(client.ping().ok());
}

TEST(FaultProxy, CutClosesAConnectionWithARequestInFlight) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  ClientConfig config = through(proxy);
  config.client_name = "tc-proxy-cut";
  Client client(config);
  Client observer(*server);
  ASSERT_TRUE(client.ping().ok());
  // A BLPOP the server blocks on: the request has certainly gone through the proxy once the
  // server lists it.
  std::future<Result<Reply>> blocked = client.async_exec_one(
      Request().push("BLPOP", key("never"), "10"), asio::use_future, {.timeout = 15s});
  ASSERT_TRUE(eventually([&] {
    const Result<Reply> clients = observer.command("CLIENT", "LIST", "TYPE", "normal");
    return clients.ok() && clients->string.find("name=tc-proxy-cut") != std::string::npos &&
           clients->string.find("cmd=blpop") != std::string::npos;
  }));
  proxy.cut();
  ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready);
  const Result<Reply> r = blocked.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kConnection) << r.error().to_string();
  // New connections work.
  EXPECT_TRUE(eventually([&] { return client.ping({.timeout = 500ms}).ok(); }));
}

TEST(FaultProxy, CutIsSeenOnARawSocket) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  RawConnection raw = RawConnection::connect(proxy.port());
  raw.send("PING\r\n");
  EXPECT_EQ(raw.read_until("\r\n", 5s), "+PONG\r\n");
  EXPECT_EQ(proxy.open_connections(), 1u);
  proxy.cut();
  EXPECT_EQ(proxy.open_connections(), 0u);  // cut() returns once they are closed
  EXPECT_TRUE(raw.wait_closed(5s));
  // The listener stays: a new connection works.
  RawConnection again = RawConnection::connect(proxy.port());
  again.send("PING\r\n");
  EXPECT_EQ(again.read_until("\r\n", 5s), "+PONG\r\n");
}

TEST(FaultProxy, RefusedConnectionsAreAcceptedThenClosed) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  proxy.set_refuse(true);
  ClientConfig config = through(proxy);
  config.connect_timeout = 300ms;
  Client client(config);
  const auto start = std::chrono::steady_clock::now();
  const Result<void> refused = client.ping({.timeout = 300ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kConnection) << refused.error().to_string();
  EXPECT_GE(proxy.accepted(), 1u);
  EXPECT_EQ(proxy.open_connections(), 0u);
  EXPECT_FALSE(client.connected());

  proxy.set_refuse(false);
  EXPECT_TRUE(eventually([&] { return client.ping({.timeout = 500ms}).ok(); }));
  EXPECT_EQ(proxy.open_connections(), 1u);
}

TEST(FaultProxy, HalfOpenSwallowsRequestsUntilHealed) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  Client client(through(proxy));
  ASSERT_TRUE(client.command("SET", key("k"), "v").ok());
  proxy.set_half_open(true);
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> r = client.exec_one(Request().push("GET", key("k")), {.timeout = 300ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTimeout) << r.error().to_string();
  EXPECT_EQ(proxy.open_connections(), 1u);  // still open: only silent

  // Healing forwards what was held: the late reply is matched to the call that gave up.
  proxy.heal();
  const Result<Reply> got = client.exec_one(Request().push("GET", key("k")), {.timeout = 3s});
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(got->string, "v");
}

TEST(FaultProxy, FreezeStallsOpenConnectionsWhileNewOnesWork) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  ClientConfig config = through(proxy);
  config.recycle_after_timeouts = 0;  // keep the frozen connection: this test is the proxy's
  config.stuck_reply_limit = 0ms;
  Client frozen(config);
  ASSERT_TRUE(frozen.ping().ok());
  proxy.freeze_existing();
  const auto start = std::chrono::steady_clock::now();
  const Result<void> stalled = frozen.ping({.timeout = 300ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(stalled.ok());
  EXPECT_EQ(stalled.error().code, Errc::kTimeout) << stalled.error().to_string();

  Client fresh(through(proxy));
  const Result<void> pong = fresh.ping({.timeout = 3s});
  EXPECT_TRUE(pong.ok()) << pong.error().to_string();
  EXPECT_EQ(proxy.open_connections(), 2u);  // the frozen one is never closed by the proxy
  // heal() leaves it frozen.
  proxy.heal();
  EXPECT_FALSE(frozen.ping({.timeout = 200ms}).ok());
}

TEST(FaultProxy, ResetMidReplyIsAnErrorNeverAWrongValue) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  Client client(through(proxy));
  const std::string large(1 << 20, 'v');
  ASSERT_TRUE(client.command("SET", key("large"), large).ok());
  proxy.reset_mid_reply(100 * 1024);
  const Result<Reply> cut = client.exec_one(Request().push("GET", key("large")), {.timeout = 5s});
  ASSERT_FALSE(cut.ok()) << "got " << cut->string.size() << " bytes";
  EXPECT_EQ(cut.error().code, Errc::kConnection) << cut.error().to_string();
  // Only once: the next reply comes whole, on a new connection.
  const Result<Reply> whole = client.exec_one(Request().push("GET", key("large")), {.timeout = 5s});
  ASSERT_TRUE(whole.ok()) << whole.error().to_string();
  EXPECT_EQ(whole->string, large);
  EXPECT_EQ(proxy.accepted(), 2u);
}

TEST(FaultProxy, BandwidthLimitSlowsALargeTransfer) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  Client client(through(proxy));
  const std::size_t size = 1 << 20;
  ASSERT_TRUE(client.command("SET", key("large"), std::string(size, 'b')).ok());
  const std::size_t rate = 2 << 20;  // bytes per second
  proxy.set_bandwidth(rate);
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> got = client.exec_one(Request().push("GET", key("large")), {.timeout = 10s});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(got->string.size(), size);
  // The proxy guarantees (size - one slice of rate/20) / rate: 450 ms for 1 MiB at 2 MiB/s.
  EXPECT_GE(elapsed, 450ms);
  const double seconds = std::chrono::duration<double>(elapsed).count();
  RecordProperty("measured_bytes_per_second", std::to_string(static_cast<double>(size) / seconds));
}

TEST(FaultProxy, SetUpstreamAppliesToLaterConnections) {
  REQUIRE_SHARED_SERVER(server);
  FaultProxy proxy(server->host, server->port);
  RawConnection before = RawConnection::connect(proxy.port());
  before.send("PING\r\n");
  EXPECT_EQ(before.read_until("\r\n", 5s), "+PONG\r\n");

  test::FakeRedisServer fake(test::always_reply("+FAKE\r\n"));
  proxy.set_upstream("127.0.0.1", fake.port());
  RawConnection after = RawConnection::connect(proxy.port());
  after.send("PING\r\n");
  EXPECT_EQ(after.read_until("\r\n", 5s), "+FAKE\r\n");
  before.send("PING\r\n");
  EXPECT_EQ(before.read_until("\r\n", 5s), "+PONG\r\n");  // still the real server
}

TEST(FaultProxy, AnUpstreamThatRefusesClosesTheClientConnection) {
  std::uint16_t gone_port = 0;
  {
    test::FakeRedisServer gone(test::always_reply("+OK\r\n"));
    gone_port = gone.port();
  }
  FaultProxy proxy("127.0.0.1", gone_port);
  RawConnection raw = RawConnection::connect(proxy.port());
  EXPECT_TRUE(raw.wait_closed(5s));
  EXPECT_TRUE(eventually([&] { return proxy.open_connections() == 0; }));
}

}  // namespace
}  // namespace tiercache::testing
