// The integration-test environment: the helpers of support/ (a private redis-server that can be
// paused, restarted and killed; a scripted fake server), and the shared servers that
// scripts/redis-env.sh starts. Raw sockets only: what is checked is the environment, not
// tiercache's client.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <system_error>

#include "support/fake_server.hpp"
#include "support/raw_connection.hpp"
#include "support/redis_process.hpp"

namespace tiercache::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long a reply that is expected may take (generous: sanitizer builds, loaded CI machines).
constexpr auto kReplyTimeout = 10s;
// How long "no reply" is waited for, where silence is what is expected.
constexpr auto kSilenceTimeout = 200ms;

// Sends `bytes` and returns the first line of the reply.
std::string round_trip(RawConnection& connection, std::string_view bytes) {
  connection.send(bytes);
  return connection.read_until("\r\n", kReplyTimeout);
}

// The value of environment variable `name`, or empty.
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The port of "redis://127.0.0.1:PORT" / "rediss://...".
std::uint16_t port_of(const std::string& url) {
  return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0; }

// ---- RedisProcess ----------------------------------------------------------------------------

TEST(RedisProcessTest, StartsOnALoopbackPortAndAnswersPing) {
  RedisProcess redis = RedisProcess::start();
  EXPECT_TRUE(redis.running());
  EXPECT_NE(redis.port(), 0);
  EXPECT_EQ(redis.url(), "redis://127.0.0.1:" + std::to_string(redis.port()));
  EXPECT_TRUE(answers_ping(redis.port(), kReplyTimeout));
}

TEST(RedisProcessTest, TwoServersGetTwoPorts) {
  RedisProcess first = RedisProcess::start();
  RedisProcess second = RedisProcess::start();
  EXPECT_NE(first.port(), second.port());
  EXPECT_TRUE(answers_ping(first.port(), kReplyTimeout));
  EXPECT_TRUE(answers_ping(second.port(), kReplyTimeout));
}

TEST(RedisProcessTest, ExtraArgumentsReachTheServer) {
  RedisProcess redis = RedisProcess::start({.extra_args = {"--maxmemory", "12345678"}});
  RawConnection connection = RawConnection::connect(redis.port());
  connection.send("CONFIG GET maxmemory\r\n");
  EXPECT_EQ(connection.read_until("12345678\r\n", kReplyTimeout),
            "*2\r\n$9\r\nmaxmemory\r\n$8\r\n12345678\r\n");
}

TEST(RedisProcessTest, AServerWithAPasswordCountsAsStarted) {
  RedisProcess redis = RedisProcess::start({.extra_args = {"--requirepass", "secret"}});
  RawConnection connection = RawConnection::connect(redis.port());
  EXPECT_TRUE(round_trip(connection, "PING\r\n").starts_with("-NOAUTH"));
  EXPECT_EQ(round_trip(connection, "AUTH secret\r\n"), "+OK\r\n");
}

TEST(RedisProcessTest, APausedServerAnswersOnlyAfterResume) {
  RedisProcess redis = RedisProcess::start();
  RawConnection connection = RawConnection::connect(redis.port());
  redis.pause();
  connection.send("PING\r\n");
  EXPECT_EQ(connection.read_until("\r\n", kSilenceTimeout), "");
  // The kernel still accepts new connections; they get no answer either.
  EXPECT_FALSE(answers_ping(redis.port(), kSilenceTimeout));
  EXPECT_TRUE(redis.running());

  redis.resume();
  EXPECT_EQ(connection.read_until("\r\n", kReplyTimeout), "+PONG\r\n");
  EXPECT_TRUE(answers_ping(redis.port(), kReplyTimeout));
}

TEST(RedisProcessTest, RestartKeepsThePortAndStartsEmpty) {
  RedisProcess redis = RedisProcess::start();
  const std::uint16_t port = redis.port();
  const pid_t first_pid = redis.pid();
  RawConnection before = RawConnection::connect(port);
  EXPECT_EQ(round_trip(before, "SET key value\r\n"), "+OK\r\n");

  redis.restart();
  EXPECT_EQ(redis.port(), port);
  EXPECT_NE(redis.pid(), first_pid);
  EXPECT_TRUE(before.wait_closed(kReplyTimeout));  // the old server's connection
  RawConnection after = RawConnection::connect(port);
  EXPECT_EQ(round_trip(after, "GET key\r\n"), "$-1\r\n");  // nothing persisted
}

TEST(RedisProcessTest, RestartsRepeatedlyOnTheSamePort) {
  RedisProcess redis = RedisProcess::start();
  for (int round = 0; round < 5; ++round) {
    RawConnection connection = RawConnection::connect(redis.port());
    EXPECT_EQ(round_trip(connection, "PING\r\n"), "+PONG\r\n") << "round " << round;
    redis.restart();
  }
  EXPECT_TRUE(answers_ping(redis.port(), kReplyTimeout));
}

TEST(RedisProcessTest, KillEndsTheServerAtOnceAndRestartBringsItBack) {
  RedisProcess redis = RedisProcess::start();
  RawConnection connection = RawConnection::connect(redis.port());
  const pid_t pid = redis.pid();

  redis.kill();
  EXPECT_FALSE(redis.running());
  EXPECT_EQ(redis.pid(), 0);
  EXPECT_FALSE(process_exists(pid));  // gone and reaped: no zombie
  EXPECT_TRUE(connection.wait_closed(kReplyTimeout));
  EXPECT_THROW(RawConnection::connect(redis.port()), std::system_error);  // refused

  redis.restart();
  EXPECT_TRUE(answers_ping(redis.port(), kReplyTimeout));
}

TEST(RedisProcessTest, StopEndsAPausedServer) {
  RedisProcess redis = RedisProcess::start();
  const pid_t pid = redis.pid();
  redis.pause();
  redis.stop();  // SIGTERM alone would wait for the stop timeout
  EXPECT_FALSE(redis.running());
  EXPECT_FALSE(process_exists(pid));
  redis.stop();  // does nothing the second time
}

TEST(RedisProcessTest, DestructorStopsTheServerAndRemovesItsDirectory) {
  std::filesystem::path directory;
  pid_t pid = 0;
  {
    RedisProcess redis = RedisProcess::start();
    directory = redis.directory();
    pid = redis.pid();
    EXPECT_TRUE(std::filesystem::exists(redis.log_file()));
  }
  EXPECT_FALSE(std::filesystem::exists(directory));
  EXPECT_FALSE(process_exists(pid));
}

TEST(RedisProcessTest, MovingHandsTheServerOver) {
  RedisProcess original = RedisProcess::start();
  const std::uint16_t port = original.port();
  RedisProcess moved = std::move(original);
  EXPECT_EQ(original.pid(), 0);  // NOLINT(bugprone-use-after-move): checking the moved-from
  EXPECT_EQ(moved.port(), port);
  EXPECT_TRUE(answers_ping(port, kReplyTimeout));

  RedisProcess other = RedisProcess::start();
  const pid_t replaced = other.pid();
  other = std::move(moved);  // stops the server `other` had
  EXPECT_FALSE(process_exists(replaced));
  EXPECT_EQ(other.port(), port);
  EXPECT_TRUE(answers_ping(port, kReplyTimeout));
}

TEST(RedisProcessTest, AMissingExecutableIsReportedAtStart) {
  EXPECT_THROW(
      RedisProcess::start({.extra_args = {}, .executable = "tiercache-no-such-redis-server"}),
      std::runtime_error);
}

// ---- FakeRedisServer -------------------------------------------------------------------------

std::string answer_ping_else_error(std::string_view command) {
  const auto arguments = FakeRedisServer::arguments(command);
  if (!arguments.empty() && arguments[0] == "PING") return "+PONG\r\n";
  return "-ERR unknown command\r\n";
}

TEST(FakeRedisServerTest, AnswersEachPipelinedCommandInOrder) {
  FakeRedisServer server({.respond = answer_ping_else_error});
  EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()));
  RawConnection connection = RawConnection::connect(server.port());
  connection.send("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n");
  const std::string expected = "+PONG\r\n-ERR unknown command\r\n+PONG\r\n";
  EXPECT_EQ(connection.read_exactly(expected.size(), kReplyTimeout), expected);
  EXPECT_EQ(server.commands_received(), 3u);
}

TEST(FakeRedisServerTest, ACommandSplitAcrossWritesGetsOneReply) {
  FakeRedisServer server(always_reply("+OK\r\n"));
  RawConnection connection = RawConnection::connect(server.port());
  connection.send("*2\r\n$3\r\nGET\r\n$5\r\nab");
  ASSERT_TRUE(server.wait_for_connections_accepted(1, kReplyTimeout));
  EXPECT_EQ(connection.read_until("\r\n", kSilenceTimeout), "");
  connection.send("cde\r\n");
  EXPECT_EQ(connection.read_until("\r\n", kReplyTimeout), "+OK\r\n");
  EXPECT_EQ(server.commands_received(), 1u);
}

TEST(FakeRedisServerTest, SplitsCommandsIntoArguments) {
  using Arguments = std::vector<std::string>;
  EXPECT_EQ(FakeRedisServer::arguments("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n"),
            (Arguments{"SET", "k", "a\r\nb"}));
  EXPECT_EQ(FakeRedisServer::arguments("SET  k v\r\n"), (Arguments{"SET", "k", "v"}));
  EXPECT_EQ(FakeRedisServer::arguments("*2\r\n$3\r\nGET\r\n"), Arguments{});  // incomplete
}

TEST(FakeRedisServerTest, ClosesTheConnectionAfterTheReplyWhenAsked) {
  FakeRedisServer server({.respond = answer_ping_else_error, .close_after_reply = true});
  RawConnection connection = RawConnection::connect(server.port());
  EXPECT_EQ(round_trip(connection, "PING\r\n"), "+PONG\r\n");
  EXPECT_TRUE(connection.wait_closed(kReplyTimeout));
  EXPECT_TRUE(server.wait_for_open_connections_at_most(0, kReplyTimeout));
}

TEST(FakeRedisServerTest, AHangingServerReadsButNeverReplies) {
  FakeRedisServer server({.respond = nullptr, .never_reply = true});
  RawConnection connection = RawConnection::connect(server.port());
  connection.send("PING\r\n");
  ASSERT_TRUE(server.wait_for_commands_received(1, kReplyTimeout));
  EXPECT_EQ(connection.read_until("\r\n", kSilenceTimeout), "");
  EXPECT_FALSE(connection.peer_closed());
  EXPECT_EQ(server.open_connections(), 1u);
}

TEST(FakeRedisServerTest, ASlowServerSendsTheReplyPieceByPiece) {
  constexpr auto kInterval = 20ms;
  FakeRedisServer server(
      {.respond = answer_ping_else_error, .slow_chunk_bytes = 1, .slow_chunk_interval = kInterval});
  RawConnection connection = RawConnection::connect(server.port());
  const auto sent = Clock::now();
  connection.send("PING\r\n");
  EXPECT_EQ(connection.read_exactly(1, kReplyTimeout), "+");
  EXPECT_EQ(connection.read_until("\r\n", kReplyTimeout), "PONG\r\n");
  // Seven bytes, one at a time: six waits between them.
  EXPECT_GE(Clock::now() - sent, 6 * kInterval);
}

TEST(FakeRedisServerTest, AFloodFollowsTheReply) {
  constexpr std::size_t kFloodBytes = 4 * 1024 * 1024;
  FakeRedisServer server(
      {.respond = [](std::string_view) { return std::string("$999999999999\r\n"); },
       .flood_bytes = kFloodBytes});
  RawConnection connection = RawConnection::connect(server.port());
  EXPECT_EQ(round_trip(connection, "GET k\r\n"), "$999999999999\r\n");
  const std::string flood = connection.read_exactly(kFloodBytes, kReplyTimeout);
  EXPECT_EQ(flood.size(), kFloodBytes);
  EXPECT_EQ(std::count(flood.begin(), flood.end(), 'x'), static_cast<long>(kFloodBytes));
  EXPECT_EQ(connection.read_until("\r\n", kSilenceTimeout), "");  // and then nothing
}

TEST(FakeRedisServerTest, AnEndlessFloodEndsWhenTheClientCloses) {
  FakeRedisServer server({.respond = [](std::string_view) { return std::string("+"); },
                          .flood_bytes = std::numeric_limits<std::size_t>::max()});
  {
    RawConnection connection = RawConnection::connect(server.port());
    connection.send("GET k\r\n");
    EXPECT_EQ(connection.read_exactly(100000, kReplyTimeout).size(), 100000u);
  }
  EXPECT_TRUE(server.wait_for_open_connections_at_most(0, kReplyTimeout));
}

TEST(FakeRedisServerTest, CountsConnectionsAndClosesThemOnRequest) {
  FakeRedisServer server(always_reply("+OK\r\n"));
  RawConnection first = RawConnection::connect(server.port());
  RawConnection second = RawConnection::connect(server.port());
  ASSERT_TRUE(server.wait_for_connections_accepted(2, kReplyTimeout));
  EXPECT_EQ(server.open_connections(), 2u);

  server.close_all_connections();
  EXPECT_TRUE(first.wait_closed(kReplyTimeout));
  EXPECT_TRUE(second.wait_closed(kReplyTimeout));
  EXPECT_TRUE(server.wait_for_open_connections_at_most(0, kReplyTimeout));

  RawConnection third = RawConnection::connect(server.port());  // still accepting
  EXPECT_EQ(round_trip(third, "PING\r\n"), "+OK\r\n");
  EXPECT_EQ(server.connections_accepted(), 3u);
}

TEST(FakeRedisServerTest, DestructionEndsHangingAndFloodingConnections) {
  RawConnection hanging_client = [] {
    FakeRedisServer hanging({.respond = nullptr, .never_reply = true});
    RawConnection connection = RawConnection::connect(hanging.port());
    connection.send("PING\r\n");
    EXPECT_TRUE(hanging.wait_for_commands_received(1, kReplyTimeout));
    return connection;
  }();
  EXPECT_TRUE(hanging_client.wait_closed(kReplyTimeout));

  RawConnection flooded_client = [] {
    FakeRedisServer flooding({.respond = [](std::string_view) { return std::string("+"); },
                              .flood_bytes = std::numeric_limits<std::size_t>::max()});
    RawConnection connection = RawConnection::connect(flooding.port());
    connection.send("GET k\r\n");  // then never read: the server blocks sending
    EXPECT_TRUE(flooding.wait_for_commands_received(1, kReplyTimeout));
    return connection;
  }();
  EXPECT_TRUE(flooded_client.wait_closed(kReplyTimeout));
}

// ---- the shared servers of scripts/redis-env.sh ----------------------------------------------

TEST(RedisEnvTest, TheStandaloneServerAnswersPing) {
  const std::string url = env("TIERCACHE_TEST_REDIS_URL");
  if (url.empty()) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_URL is not set (scripts/redis-env.sh)";
  ASSERT_TRUE(url.starts_with("redis://127.0.0.1:")) << url;
  EXPECT_TRUE(answers_ping(port_of(url), kReplyTimeout));
}

TEST(RedisEnvTest, TheAclServerConfinesItsUserToThePrefix) {
  const std::string url = env("TIERCACHE_TEST_REDIS_ACL_URL");
  if (url.empty()) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_ACL_URL is not set (scripts/redis-env.sh)";
  const std::string user = env("TIERCACHE_TEST_REDIS_ACL_USER");
  const std::string password = env("TIERCACHE_TEST_REDIS_ACL_PASSWORD");
  const std::string prefix = env("TIERCACHE_TEST_REDIS_ACL_PREFIX");
  ASSERT_FALSE(user.empty() || password.empty() || prefix.empty());
  const std::string key = prefix + "redis_env_test:" + std::to_string(std::random_device{}());

  RawConnection connection = RawConnection::connect(port_of(url));
  EXPECT_TRUE(round_trip(connection, "PING\r\n").starts_with("-NOAUTH"));
  EXPECT_TRUE(round_trip(connection, "AUTH " + user + " wrong\r\n").starts_with("-WRONGPASS"));
  // HELLO 3 with AUTH: the reply is a RESP3 map (%7 ...); only its first line is read here.
  RawConnection resp3 = RawConnection::connect(port_of(url));
  EXPECT_TRUE(round_trip(resp3, "HELLO 3 AUTH " + user + " " + password + "\r\n").starts_with("%"));

  EXPECT_EQ(round_trip(connection, "AUTH " + user + " " + password + "\r\n"), "+OK\r\n");
  EXPECT_EQ(round_trip(connection, "SET " + key + " 1\r\n"), "+OK\r\n");
  EXPECT_TRUE(round_trip(connection, "SET redis_env_test 1\r\n").starts_with("-NOPERM"));
  EXPECT_TRUE(round_trip(connection, "FLUSHALL\r\n").starts_with("-NOPERM"));
  EXPECT_EQ(round_trip(connection, "DEL " + key + "\r\n"), ":1\r\n");
}

TEST(RedisEnvTest, TheTlsServerHasItsCertificatesAndNoPlaintextPort) {
  const std::string url = env("TIERCACHE_TEST_REDIS_TLS_URL");
  if (url.empty()) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_TLS_URL is not set (scripts/redis-env.sh)";
  ASSERT_TRUE(url.starts_with("rediss://127.0.0.1:")) << url;
  for (const char* variable :
       {"TIERCACHE_TEST_REDIS_TLS_CA", "TIERCACHE_TEST_REDIS_TLS_CERT",
        "TIERCACHE_TEST_REDIS_TLS_KEY", "TIERCACHE_TEST_REDIS_TLS_OTHER_CA",
        "TIERCACHE_TEST_REDIS_TLS_OTHER_CERT", "TIERCACHE_TEST_REDIS_TLS_OTHER_KEY"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(env(variable))) << variable;
  }
  // Plaintext on the TLS port is not a handshake: no PONG (the TLS handshake itself is checked
  // by the client's tests).
  EXPECT_FALSE(answers_ping(port_of(url), kSilenceTimeout));
}

}  // namespace
}  // namespace tiercache::test
