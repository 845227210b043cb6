// The Redis client against real redis-server processes (and a fake one for bad bytes).
//
// Servers: the shared standalone server of scripts/redis-env.sh (TIERCACHE_TEST_REDIS_URL;
// the tests that need it skip without it), private servers (RedisProcess) for tests that
// pause, restart or debug-command their server, and FakeRedisServer for malformed replies.
// Timing assertions are upper bounds with generous slack (a deadline must be kept, never
// "took at least"); nothing sleeps for a fixed time.

#include <gtest/gtest.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.hpp"
#include "support/fake_server.hpp"
#include "support/redis_process.hpp"
#include "tiercache/redis/client.hpp"
#include "tiercache/redis/subscriber.hpp"

namespace tiercache::redis {
namespace {

using namespace std::chrono_literals;
using test::FakeRedisServer;
using test::FakeRedisServerOptions;
using test::RedisProcess;

// Slack allowed past a deadline (scheduling on a loaded 2-core machine, sanitizers).
constexpr auto kSlack = 400ms;

std::optional<ClientConfig> shared_server() {
  const char* url = std::getenv("TIERCACHE_TEST_REDIS_URL");
  if (url == nullptr) return std::nullopt;
  Result<ClientConfig> config = parse_url(url);
  if (!config.ok()) return std::nullopt;
  return config.value();
}

#define REQUIRE_SHARED_SERVER(config)                   \
  std::optional<ClientConfig> config = shared_server(); \
  if (!config) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_URL not set (scripts/redis-env.sh)"

ClientConfig config_for(std::uint16_t port) {
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = port;
  return config;
}

// A unique key prefix per test, so tests sharing a server never see each other's keys.
std::string key(std::string_view name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("tc:test:") + info->name() + ":" + std::string(name);
}

Reply must(Result<Reply> r) {
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? std::move(r).value() : Reply{};
}

TEST(RedisClient, SetsAndGetsAValue) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  EXPECT_EQ(must(client.command("SET", key("a"), "hello")).string, "OK");
  const Reply got = must(client.command("GET", key("a")));
  EXPECT_EQ(got.type, ReplyType::kBulkString);
  EXPECT_EQ(got.string, "hello");
  EXPECT_TRUE(must(client.command("GET", key("missing"))).is_null());
  EXPECT_TRUE(client.connected());
}

TEST(RedisClient, KeepsBinaryValuesIntact) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += "\r\n$5\r\n*1\r\n";
  ASSERT_TRUE(client.command("SET", key("bin"), value).ok());
  EXPECT_EQ(must(client.command("GET", key("bin"))).string, value);
}

TEST(RedisClient, DecodesEveryRespThreeTypeARealServerSends) {
  RedisProcess server = RedisProcess::start({.extra_args = {"--enable-debug-command", "yes"}});
  Client client(config_for(server.port()));
  auto protocol = [&](const char* type) { return must(client.command("DEBUG", "PROTOCOL", type)); };

  EXPECT_EQ(protocol("string").type, ReplyType::kBulkString);
  const Reply integer = protocol("integer");
  EXPECT_EQ(integer.type, ReplyType::kInteger);
  EXPECT_EQ(integer.integer, 12345);
  const Reply dbl = protocol("double");
  EXPECT_EQ(dbl.type, ReplyType::kDouble);
  EXPECT_DOUBLE_EQ(dbl.number, 3.141);
  const Reply big = protocol("bignum");
  EXPECT_EQ(big.type, ReplyType::kBigNumber);
  EXPECT_EQ(big.string, "1234567999999999999999999999999999999");
  EXPECT_TRUE(protocol("null").is_null());
  EXPECT_EQ(protocol("array").type, ReplyType::kArray);
  EXPECT_EQ(protocol("array").elements.size(), 3u);
  EXPECT_EQ(protocol("set").type, ReplyType::kSet);
  const Reply map = protocol("map");
  EXPECT_EQ(map.type, ReplyType::kMap);
  EXPECT_EQ(map.elements.size(), 6u);  // 3 pairs, flattened
  const Reply verbatim = protocol("verbatim");
  EXPECT_EQ(verbatim.type, ReplyType::kVerbatimString);
  EXPECT_EQ(std::string(verbatim.verbatim_format, 3), "txt");
  EXPECT_EQ(verbatim.string, "This is a verbatim\nstring");
  const Reply yes = protocol("true");
  EXPECT_EQ(yes.type, ReplyType::kBoolean);
  EXPECT_TRUE(yes.boolean);
  EXPECT_FALSE(protocol("false").boolean);
  // An attribute precedes its reply; the client attaches it.
  const Reply attributed = protocol("attrib");
  EXPECT_EQ(attributed.type, ReplyType::kBulkString);
  EXPECT_FALSE(attributed.attributes.empty());
  // A push is out of band: it goes to the push path, and the command still gets its reply.
  const Reply after_push = protocol("push");
  EXPECT_EQ(after_push.type, ReplyType::kBulkString);
  EXPECT_EQ(client.stats().push_messages, 1u);
}

TEST(RedisClient, AnErrorReplyIsAServerErrorWithRedisMessage) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  ASSERT_TRUE(client.command("SET", key("s"), "x").ok());
  const Result<Reply> r = client.command("INCR", key("s"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kServerError);
  EXPECT_NE(r.error().message.find("ERR"), std::string::npos) << r.error().message;
  // The connection is fine afterwards.
  EXPECT_TRUE(client.ping().ok());
}

TEST(RedisClient, PipelineGetsOneReplyPerCommandInOrderWithErrorsInPlace) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  Request request;
  request.push("SET", key("p"), 41).push("INCR", key("p")).push("HSET", key("p"), "f", "v");
  request.push("GET", key("p"));
  const Result<std::vector<Reply>> replies = client.exec(request);
  ASSERT_TRUE(replies.ok()) << replies.error().to_string();
  ASSERT_EQ(replies->size(), 4u);
  EXPECT_EQ((*replies)[1].integer, 42);
  EXPECT_TRUE((*replies)[2].is_error());  // WRONGTYPE
  EXPECT_EQ((*replies)[3].string, "42");
}

TEST(RedisClient, TransactionIsOneRequest) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  Request request;
  request.push("MULTI").push("SET", key("t"), 1).push("INCRBY", key("t"), 9).push("EXEC");
  const Result<std::vector<Reply>> replies = client.exec(request);
  ASSERT_TRUE(replies.ok()) << replies.error().to_string();
  ASSERT_EQ(replies->size(), 4u);
  const Reply& exec = replies->back();
  ASSERT_EQ(exec.type, ReplyType::kArray);
  ASSERT_EQ(exec.elements.size(), 2u);
  EXPECT_EQ(exec.elements[1].integer, 10);
}

TEST(RedisClient, ScriptRunsThroughEvalShaAfterANoScriptFallback) {
  RedisProcess server = RedisProcess::start();
  Client client(config_for(server.port()));
  const Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  ASSERT_TRUE(client.command("SCRIPT", "FLUSH").ok());
  EXPECT_EQ(must(client.eval(script, {"k"}, {"5"})).integer, 5);  // NOSCRIPT, then EVAL
  EXPECT_EQ(must(client.command("SCRIPT", "EXISTS", script.sha1())).elements.at(0).integer, 1);
  EXPECT_EQ(must(client.eval(script, {"k"}, {"5"})).integer, 10);  // EVALSHA
}

TEST(RedisClient, ManyThreadsShareOneConnectionAndEachGetsItsOwnReply) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  constexpr int kThreads = 32;
  constexpr int kPerThread = 300;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string k = key("m") + std::to_string(t) + ":" + std::to_string(i);
        const std::string v = std::to_string(t * 100000 + i);
        if (!client.command("SET", k, v).ok()) ++wrong;
        const Result<Reply> got = client.command("GET", k);
        if (!got.ok() || got->string != v) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const ClientStats stats = client.stats();
  EXPECT_GE(stats.commands, 2u * kThreads * kPerThread);
  // Auto-pipelining: concurrent callers' commands share writes.
  EXPECT_LT(stats.writes, stats.commands);
}

TEST(RedisClient, CompletesAsyncCallsThroughCallbacksFuturesAndCoroutines) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  Request set;
  set.push("SET", key("async"), "v");

  std::promise<Result<Reply>> callback_result;
  client.async_exec_one(set, [&](Result<Reply> r) { callback_result.set_value(std::move(r)); });
  ASSERT_EQ(callback_result.get_future().wait_for(5s), std::future_status::ready);

  Request get;
  get.push("GET", key("async"));
  std::future<Result<Reply>> future = client.async_exec_one(get, asio::use_future);
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(must(future.get()).string, "v");

  asio::io_context io;
  std::optional<Result<std::vector<Reply>>> from_coroutine;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Request pipeline;
        pipeline.push("GET", key("async")).push("STRLEN", key("async"));
        from_coroutine = co_await client.async_exec(pipeline, asio::use_awaitable);
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(from_coroutine.has_value());
  ASSERT_TRUE(from_coroutine->ok());
  EXPECT_EQ(from_coroutine->value().at(1).integer, 1);
}

TEST(RedisClient, RunsOnTheCallersIoContext) {
  REQUIRE_SHARED_SERVER(config);
  asio::io_context io;
  Client client(*config, io);
  std::optional<Result<Reply>> result;
  Request ping;
  ping.push("PING");
  client.async_exec_one(ping, [&](Result<Reply> r) {
    result = std::move(r);
    io.stop();
  });
  io.run_for(5s);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(must(std::move(*result)).string, "PONG");
}

TEST(RedisClient, UnreachableServerIsAConnectionErrorByTheDeadline) {
  // A port nobody listens on: a fake server that is gone.
  std::uint16_t port = 0;
  {
    FakeRedisServer gone(test::always_reply("+OK\r\n"));
    port = gone.port();
  }
  Client client(config_for(port));
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> r = client.exec_one(Request().push("PING"), {.timeout = 300ms});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kConnection) << r.error().to_string();
  EXPECT_LT(elapsed, 300ms + kSlack);
  EXPECT_FALSE(client.connected());
}

TEST(RedisClient, PausedServerCallsReturnByTheirDeadlineAndRecoverAfterResume) {
  RedisProcess server = RedisProcess::start();
  ClientConfig config = config_for(server.port());
  config.health_check_interval = 200ms;
  Client client(config);
  ASSERT_TRUE(client.ping().ok());

  server.pause();
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> r = client.exec_one(Request().push("GET", "k"), {.timeout = 300ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == Errc::kTimeout || r.error().code == Errc::kConnection)
      << r.error().to_string();

  server.resume();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool recovered = false;
  while (!recovered && std::chrono::steady_clock::now() < deadline) {
    recovered = client.ping({.timeout = 500ms}).ok();
  }
  EXPECT_TRUE(recovered);
}

TEST(RedisClient, ServerRestartDuringLoadGivesErrorsThenRecovers) {
  RedisProcess server = RedisProcess::start();
  Client client(config_for(server.port()));
  ASSERT_TRUE(client.ping().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<int> wrong_kind{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const Result<Reply> r = client.exec_one(Request().push("INCR", "n"), {.timeout = 500ms});
        if (r.ok()) {
          ++ok;
        } else {
          ++failed;
          const auto code = r.error().code;
          if (code != Errc::kConnection && code != Errc::kTimeout) ++wrong_kind;
        }
      }
    });
  }
  const auto wait_for_ok = [&](int at_least) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (ok.load() < at_least && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return ok.load() >= at_least;
  };
  ASSERT_TRUE(wait_for_ok(100));
  server.restart();
  const int before = ok.load();
  const bool recovered = wait_for_ok(before + 100);
  stop = true;
  for (auto& thread : load) thread.join();
  EXPECT_TRUE(recovered);
  EXPECT_EQ(wrong_kind.load(), 0);
  EXPECT_GE(client.stats().connects, 2u);
}

TEST(RedisClient, ALateReplyIsNeverHandedToTheNextCaller) {
  RedisProcess server = RedisProcess::start();
  Client client(config_for(server.port()));
  ASSERT_TRUE(client.command("SET", "k", "the value").ok());
  // Blocks the server for 300 ms; the caller gives up after 50 ms. Its "+OK" arrives later
  // and must be matched to it, not to the GET that follows.
  const Result<Reply> slow =
      client.exec_one(Request().push("DEBUG", "SLEEP", "0.3"), {.timeout = 50ms});
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, Errc::kTimeout);
  const Result<Reply> got = client.exec_one(Request().push("GET", "k"), {.timeout = 3s});
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(got->string, "the value");
  EXPECT_EQ(client.command("GET", "k")->string, "the value");
}

TEST(RedisClient, AConnectionTheServerClosedWhileIdleIsReplacedWithoutFailingTheNextCall) {
  RedisProcess server = RedisProcess::start();
  Client client(config_for(server.port()));
  ASSERT_TRUE(client.command("SET", "k", "v").ok());
  Client killer(config_for(server.port()));
  ASSERT_TRUE(killer.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").ok());
  // Redis closes killed connections a moment after it answers: wait until it has.
  const auto closed_by = std::chrono::steady_clock::now() + 5s;
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < closed_by) {
    const Result<Reply> clients = killer.command("CLIENT", "LIST", "TYPE", "normal");
    closed = clients.ok() && std::count(clients->string.begin(), clients->string.end(), '\n') == 1;
  }
  ASSERT_TRUE(closed);
  // The server closed `client`'s idle connection; the next call notices before writing,
  // reconnects and succeeds.
  const Result<Reply> got = client.exec_one(Request().push("GET", "k"), {.timeout = 3s});
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  EXPECT_EQ(got->string, "v");
  EXPECT_GE(client.stats().connects, 2u);
}

TEST(RedisClient, BlockingAndAsyncCallsMixedOnOneConnectionEachGetTheirOwnReply) {
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  constexpr int kRounds = 2000;
  std::atomic<int> wrong{0};
  std::atomic<int> async_done{0};
  std::thread async_caller([&] {
    for (int i = 0; i < kRounds; ++i) {
      const std::string v = "a" + std::to_string(i);
      client.async_exec_one(Request().push("ECHO", v), [&, v](Result<Reply> r) {
        if (!r.ok() || r->string != v) ++wrong;
        ++async_done;
      });
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    const std::string v = "s" + std::to_string(i);
    const Result<Reply> r = client.command("ECHO", v);
    if (!r.ok() || r->string != v) ++wrong;
  }
  async_caller.join();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (async_done.load() < kRounds && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(async_done.load(), kRounds);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RedisClient, AsyncCallersReissuingFromTheirCallbacksEachGetTheirOwnReply) {
  // 64 chains, each issuing its next command from the callback of the previous one: the
  // commands queued while a read's replies are handed out are partly written before the read
  // is done (Connection::on_read), and every reply must still reach its own chain. The
  // values, 2-3 KB each, make a round of replies several times the client's 64 KiB read
  // buffer, so more bytes wait in the socket while a read is handed out.
  REQUIRE_SHARED_SERVER(config);
  Client client(*config);
  constexpr int kChains = 64;
  constexpr int kRounds = 300;
  std::atomic<int> wrong{0};
  std::atomic<int> finished{0};
  std::vector<std::function<void(int)>> chains(kChains);
  for (int c = 0; c < kChains; ++c) {
    chains[c] = [&, c](int round) {
      std::string v = std::to_string(c) + ":" + std::to_string(round) + ":";
      v.append(2000 + (c * 37 + round) % 1000, static_cast<char>('a' + (c + round) % 26));
      client.async_exec_one(Request().push("ECHO", v), [&, c, round, v](Result<Reply> r) {
        if (!r.ok() || r->string != v) ++wrong;
        if (round + 1 < kRounds) {
          chains[c](round + 1);
        } else {
          ++finished;
        }
      });
    };
  }
  for (int c = 0; c < kChains; ++c) chains[c](0);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (finished.load() < kChains && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(finished.load(), kChains);
  EXPECT_EQ(wrong.load(), 0);
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.protocol_errors, 0u);
  EXPECT_LT(stats.writes, stats.commands / 4);  // pipelined, not one write per command
}

// Waits (bounded) until the client's connection is up, so the next blocking call takes the
// fast path.
bool wait_connected(const Client& client) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!client.connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return client.connected();
}

TEST(RedisClient, BlockingCallsSpinOnlyWithABudgetAndAlwaysGetTheirOwnReply) {
  REQUIRE_SHARED_SERVER(config);
  for (const auto budget : {0us, 200us}) {
    ClientConfig with_budget = *config;
    with_budget.spin_wait = budget;
    Client client(with_budget);
    ASSERT_TRUE(wait_connected(client));
    for (int i = 0; i < 300; ++i) {
      const std::string v = "v" + std::to_string(i);
      const Result<Reply> r = client.command("ECHO", v);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      ASSERT_EQ(r->string, v);
    }
    const ClientStats stats = client.stats();
    if (budget == 0us) {
      EXPECT_EQ(stats.spin_waits, 0u);
    } else {
      // The first fast-path call always measures spinning (whether it goes on depends on
      // the machine: SpinPolicy).
      EXPECT_GE(stats.spin_waits, 1u);
    }
    EXPECT_LE(stats.spin_hits, stats.spin_waits);
  }
}

TEST(RedisClient, ASpinningCallStillReturnsByItsDeadline) {
  RedisProcess server = RedisProcess::start();
  ClientConfig config = config_for(server.port());
  config.spin_wait = 10s;  // far past the call's deadline: the deadline must win
  config.health_check_interval = 0ms;
  // The first fast-path call of a client spins. "Connected" can be seen a moment before the
  // connection offers its socket to callers, so a fresh client is tried until the paused
  // call did spin (a few attempts at most).
  bool spun = false;
  for (int attempt = 0; attempt < 5 && !spun; ++attempt) {
    Client client(config);
    ASSERT_TRUE(wait_connected(client));
    server.pause();
    const auto start = std::chrono::steady_clock::now();
    const Result<Reply> r = client.exec_one(Request().push("GET", "k"), {.timeout = 200ms});
    EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms + kSlack);
    server.resume();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kTimeout) << r.error().to_string();
    spun = client.stats().spin_waits == 1;
    const Result<Reply> after = client.exec_one(Request().push("PING"), {.timeout = 5s});
    EXPECT_TRUE(after.ok()) << after.error().to_string();
  }
  EXPECT_TRUE(spun);
}

TEST(RedisClient, DeliversServerPushesToItsHandlerOffTheIoThread) {
  RedisProcess server = RedisProcess::start();
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<Reply> pushes;
  ClientConfig config = config_for(server.port());
  config.push_handler = [&](Reply&& push) {
    std::lock_guard lock(mutex);
    pushes.push_back(std::move(push));
    arrived.notify_all();
  };
  Client client(config);
  // Client-side caching: after a tracked read, a write by anyone invalidates the key.
  ASSERT_TRUE(client.command("CLIENT", "TRACKING", "ON").ok());
  ASSERT_TRUE(client.command("GET", "tracked").ok());
  Client writer(config_for(server.port()));
  ASSERT_TRUE(writer.command("SET", "tracked", "new").ok());
  std::unique_lock lock(mutex);
  ASSERT_TRUE(arrived.wait_for(lock, 5s, [&] { return !pushes.empty(); }));
  const Reply& push = pushes.front();
  ASSERT_EQ(push.type, ReplyType::kPush);
  ASSERT_GE(push.elements.size(), 2u);
  EXPECT_EQ(push.elements[0].string, "invalidate");
  ASSERT_EQ(push.elements[1].elements.size(), 1u);
  EXPECT_EQ(push.elements[1].elements[0].string, "tracked");
  EXPECT_EQ(client.stats().pushes_dropped, 0u);
}

// ---- bad bytes ------------------------------------------------------------------------------

// A fake server that completes the handshake and answers everything else with `reply`.
FakeRedisServerOptions answering(std::string reply) {
  FakeRedisServerOptions options;
  options.respond = [reply = std::move(reply)](std::string_view command) {
    const auto args = FakeRedisServer::arguments(command);
    if (!args.empty() && (args[0] == "HELLO" || args[0] == "hello")) {
      return std::string("%1\r\n+server\r\n+fake\r\n");
    }
    return reply;
  };
  return options;
}

TEST(RedisClient, MalformedReplyIsAProtocolErrorAndTheConnectionIsReplaced) {
  FakeRedisServer fake(answering("?what\r\n"));
  Client client(config_for(fake.port()));
  const Result<Reply> r = client.exec_one(Request().push("GET", "k"), {.timeout = 2s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kProtocol) << r.error().to_string();
  EXPECT_GE(client.stats().protocol_errors, 1u);
  EXPECT_TRUE(fake.wait_for_connections_accepted(2, 5s));  // it reconnects
}

TEST(RedisClient, OversizedBulkIsAProtocolErrorBeforeItArrives) {
  FakeRedisServer fake(answering("$100000000\r\n"));
  ClientConfig config = config_for(fake.port());
  config.limits.max_bulk_length = 1 << 20;
  Client client(config);
  const Result<Reply> r = client.exec_one(Request().push("GET", "k"), {.timeout = 2s});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kProtocol) << r.error().to_string();
}

TEST(RedisClient, HungServerCallsFailByTheirDeadline) {
  FakeRedisServerOptions options;
  options.never_reply = true;
  FakeRedisServer fake(options);
  ClientConfig config = config_for(fake.port());
  config.connect_timeout = 200ms;
  Client client(config);
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> r = client.exec_one(Request().push("GET", "k"), {.timeout = 300ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms + kSlack);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kConnection) << r.error().to_string();
}

TEST(RedisClient, AShortDeadlineQueuedBehindLongerOnesIsStillKept) {
  FakeRedisServerOptions options;
  options.never_reply = true;
  FakeRedisServer fake(options);
  Client client(config_for(fake.port()));
  std::vector<std::future<Result<Reply>>> patient;
  for (int i = 0; i < 3; ++i) {
    patient.push_back(
        client.async_exec_one(Request().push("GET", "k"), asio::use_future, {.timeout = 5s}));
  }
  const auto start = std::chrono::steady_clock::now();
  const Result<Reply> hurried = client.exec_one(Request().push("GET", "k"), {.timeout = 200ms});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms + kSlack);
  ASSERT_FALSE(hurried.ok());
  for (auto& f : patient) EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);  // still waiting
}

TEST(RedisClient, TooManyPendingRequestsAreRefusedAtOnce) {
  FakeRedisServerOptions options;
  options.never_reply = true;
  FakeRedisServer fake(options);
  ClientConfig config = config_for(fake.port());
  config.max_pending_requests = 2;
  Client client(config);
  std::vector<std::future<Result<Reply>>> waiting;
  for (int i = 0; i < 2; ++i) {
    waiting.push_back(
        client.async_exec_one(Request().push("GET", "k"), asio::use_future, {.timeout = 2s}));
  }
  const Result<Reply> refused = client.exec_one(Request().push("GET", "k"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kQueueFull);
}

TEST(RedisClient, DestroyingTheClientFailsPendingCallsWithClosed) {
  FakeRedisServerOptions options;
  options.never_reply = true;
  FakeRedisServer fake(options);
  std::future<Result<Reply>> pending;
  {
    Client client(config_for(fake.port()));
    pending = client.async_exec_one(Request().push("GET", "k"), asio::use_future, {.timeout = 10s});
  }
  ASSERT_EQ(pending.wait_for(2s), std::future_status::ready);
  const Result<Reply> r = pending.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kClosed);
}

// ---- recycling a connection that stopped answering (FaultProxy in front of the server) -------

// Polls `condition` until it holds or `timeout` passes (every millisecond: the load threads
// of these tests need the cores more than the poller).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Slack past its deadline allowed to each of the hundreds of calls of a GetLoad: on a loaded
// 2-core machine (other builds, TSan) one of them may be descheduled for longer than kSlack.
// What this catches: a call left waiting for a recycle (stuck_reply_limit, 3 s) or forever.
constexpr auto kLoadSlack = 1s;

// A client through `proxy` whose health check stays out of the way: what recycles a stuck
// connection in these tests is the traffic itself.
ClientConfig through(const testing::FaultProxy& proxy) {
  ClientConfig config = config_for(proxy.port());
  config.health_check_interval = 0ms;
  config.connect_timeout = 300ms;
  return config;
}

// Threads issuing GETs of one key without pause; each call's outcome is checked as it comes.
class GetLoad {
 public:
  GetLoad(Client& client, std::string key, std::string value, int threads,
          std::chrono::milliseconds timeout)
      : client_(client), key_(std::move(key)), value_(std::move(value)), timeout_(timeout) {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { run(); });
  }
  ~GetLoad() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // From now on, successes are counted in ok_since_mark().
  void mark() { ++mark_; }
  int ok_since_mark() const { return ok_since_mark_.load(); }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }
  int wrong_values() const { return wrong_values_.load(); }
  int wrong_errors() const { return wrong_errors_.load(); }
  int late_returns() const { return late_returns_.load(); }
  // The longest a call took past its deadline, in milliseconds (for failure messages).
  std::int64_t worst_overrun_ms() const { return worst_overrun_ms_.load(); }

 private:
  void run() {
    while (!stop_.load()) {
      const int mark = mark_.load();  // read before the call: the call started after the mark
      const auto start = std::chrono::steady_clock::now();
      const Result<Reply> r = client_.exec_one(Request().push("GET", key_), {.timeout = timeout_});
      const auto overrun = std::chrono::steady_clock::now() - start - timeout_;
      if (overrun > kLoadSlack) ++late_returns_;
      const std::int64_t overrun_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(overrun).count();
      std::int64_t worst = worst_overrun_ms_.load();
      while (overrun_ms > worst && !worst_overrun_ms_.compare_exchange_weak(worst, overrun_ms)) {
      }
      if (r.ok()) {
        ++ok_;
        if (r->string != value_) ++wrong_values_;
        if (mark > 0) ++ok_since_mark_;
      } else {
        ++failed_;
        const auto code = r.error().code;
        if (code != Errc::kTimeout && code != Errc::kConnection) ++wrong_errors_;
      }
    }
  }

  Client& client_;
  const std::string key_;
  const std::string value_;
  const std::chrono::milliseconds timeout_;
  std::atomic<bool> stop_{false};
  std::atomic<int> mark_{0};
  std::atomic<int> ok_{0};
  std::atomic<int> ok_since_mark_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> wrong_values_{0};
  std::atomic<int> wrong_errors_{0};
  std::atomic<int> late_returns_{0};
  std::atomic<std::int64_t> worst_overrun_ms_{0};  // 0 when every call returned in time
  std::vector<std::thread> threads_;
};

TEST(RedisClient, AFrozenConnectionIsRecycledWhileTrafficFlows) {
  REQUIRE_SHARED_SERVER(config);
  testing::FaultProxy proxy(config->host, config->port);
  Client client(through(proxy));
  ASSERT_TRUE(client.command("SET", key("k"), "v").ok());
  // One thread: blocking calls on an idle connection take the fast path first.
  GetLoad load(client, key("k"), "v", 1, 200ms);
  ASSERT_TRUE(eventually([&] { return load.ok() >= 20; }));

  // The server "hangs" behind the open connection, while a new connection would work. Every
  // call started after this can only succeed on a new connection.
  proxy.freeze_existing();
  load.mark();
  EXPECT_TRUE(eventually([&] { return load.ok_since_mark() >= 20; }))
      << "no success after the freeze; stats: recycles=" << client.stats().stuck_recycles;
  load.stop();
  const ClientStats stats = client.stats();
  EXPECT_GE(stats.stuck_recycles, 1u);
  EXPECT_GE(stats.connects, 2u);
  EXPECT_GE(proxy.accepted(), 2u);
  EXPECT_EQ(load.wrong_values(), 0);
  EXPECT_EQ(load.wrong_errors(), 0);
  EXPECT_EQ(load.late_returns(), 0) << "worst overrun " << load.worst_overrun_ms() << " ms";
  RecordProperty("worst_overrun_ms", std::to_string(load.worst_overrun_ms()));
}

TEST(RedisClient, AFrozenConnectionUnderPipelinedLoadIsRecycled) {
  REQUIRE_SHARED_SERVER(config);
  testing::FaultProxy proxy(config->host, config->port);
  Client client(through(proxy));
  ASSERT_TRUE(client.command("SET", key("k"), "v").ok());
  // Several threads: their requests share writes on the I/O thread (the normal path).
  GetLoad load(client, key("k"), "v", 4, 200ms);
  ASSERT_TRUE(eventually([&] { return load.ok() >= 100; }));
  proxy.freeze_existing();
  load.mark();
  EXPECT_TRUE(eventually([&] { return load.ok_since_mark() >= 100; }));
  load.stop();
  EXPECT_GE(client.stats().stuck_recycles, 1u);
  EXPECT_EQ(load.wrong_values(), 0);
  EXPECT_EQ(load.wrong_errors(), 0);
  EXPECT_EQ(load.late_returns(), 0) << "worst overrun " << load.worst_overrun_ms() << " ms";
  RecordProperty("worst_overrun_ms", std::to_string(load.worst_overrun_ms()));
}

TEST(RedisClient, AConnectionSilentPastTheStuckReplyLimitIsRecycledWithoutMoreTraffic) {
  REQUIRE_SHARED_SERVER(config);
  testing::FaultProxy proxy(config->host, config->port);
  ClientConfig options = through(proxy);
  options.recycle_after_timeouts = 0;  // only the stuck-reply limit
  options.stuck_reply_limit = 300ms;
  Client client(options);
  ASSERT_TRUE(client.ping().ok());
  proxy.freeze_existing();
  // One call, and then nothing: the connection still owes its reply.
  const Result<void> stalled = client.ping({.timeout = 100ms});
  ASSERT_FALSE(stalled.ok());
  EXPECT_EQ(stalled.error().code, Errc::kTimeout) << stalled.error().to_string();
  EXPECT_TRUE(eventually([&] { return client.stats().stuck_recycles >= 1; }));
  EXPECT_TRUE(eventually([&] { return client.ping({.timeout = 500ms}).ok(); }));
  EXPECT_GE(client.stats().connects, 2u);
}

TEST(RedisClient, HalfOpenConnectionsAreRecycledAndNoCallOutlivesItsDeadline) {
  REQUIRE_SHARED_SERVER(config);
  testing::FaultProxy proxy(config->host, config->port);
  Client client(through(proxy));
  ASSERT_TRUE(client.command("SET", key("k"), "v").ok());
  GetLoad load(client, key("k"), "v", 3, 200ms);
  ASSERT_TRUE(eventually([&] { return load.ok() >= 20; }));

  // Existing and new connections swallow everything: the open one is recycled, the new ones
  // never finish their handshake (connect_timeout), and every call fails by its deadline.
  proxy.set_half_open(true);
  EXPECT_TRUE(eventually([&] {
    const ClientStats stats = client.stats();
    return stats.stuck_recycles >= 1 && stats.connect_failures >= 2;
  }));
  const int failed_while_half_open = load.failed();
  EXPECT_GT(failed_while_half_open, 0);

  proxy.heal();
  load.mark();
  EXPECT_TRUE(eventually([&] { return load.ok_since_mark() >= 20; }));
  load.stop();
  EXPECT_EQ(load.wrong_values(), 0);
  EXPECT_EQ(load.wrong_errors(), 0);
  EXPECT_EQ(load.late_returns(), 0) << "worst overrun " << load.worst_overrun_ms() << " ms";
  RecordProperty("worst_overrun_ms", std::to_string(load.worst_overrun_ms()));
}

TEST(RedisClient, ASlowConnectionThatAnswersWithinItsDeadlinesIsNeverRecycled) {
  REQUIRE_SHARED_SERVER(config);
  testing::FaultProxy proxy(config->host, config->port);
  ClientConfig options = through(proxy);
  options.stuck_reply_limit = 1s;
  Client client(options);
  ASSERT_TRUE(client.command("SET", key("k"), "v").ok());
  proxy.set_latency(50ms);  // 100 ms a round trip, against 500 ms deadlines
  GetLoad load(client, key("k"), "v", 4, 500ms);
  EXPECT_TRUE(eventually([&] { return load.ok() >= 60; }, 30s));
  load.stop();
  const ClientStats stats = client.stats();
  EXPECT_EQ(stats.stuck_recycles, 0u);
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(load.failed(), 0);
  EXPECT_EQ(load.wrong_values(), 0);
}

TEST(RedisClient, ABlockingCommandWithinItsOwnLongerTimeoutKeepsItsConnection) {
  REQUIRE_SHARED_SERVER(config);
  config->recycle_after_timeouts = 1;
  config->stuck_reply_limit = 200ms;
  Client client(*config);
  ASSERT_TRUE(client.ping().ok());
  // The server blocks for 1 s; the caller allows 5 s. Requests queued behind it time out (on
  // a multiplexed connection they must wait for it), but that is no sign of a stuck connection.
  std::future<Result<Reply>> blocked = client.async_exec_one(
      Request().push("BLPOP", key("empty"), "1"), asio::use_future, {.timeout = 5s});
  for (int i = 0; i < 3; ++i) {
    const Result<Reply> behind =
        client.exec_one(Request().push("GET", key("k")), {.timeout = 100ms});
    ASSERT_FALSE(behind.ok());
    EXPECT_EQ(behind.error().code, Errc::kTimeout) << behind.error().to_string();
  }
  ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready);
  const Result<Reply> popped = blocked.get();
  ASSERT_TRUE(popped.ok()) << popped.error().to_string();
  EXPECT_TRUE(popped->is_null());  // BLPOP timed out on the server: nil
  EXPECT_EQ(client.stats().stuck_recycles, 0u);
  EXPECT_EQ(client.stats().connects, 1u);
  EXPECT_TRUE(client.ping().ok());
}

TEST(RedisClient, ASubscriberWaitingForMessagesIsNeverRecycled) {
  REQUIRE_SHARED_SERVER(config);
  ClientConfig options = *config;
  options.recycle_after_timeouts = 1;
  options.stuck_reply_limit = 100ms;
  options.health_check_interval = 100ms;  // PINGs while idle: replies awaited now and then
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> received;
  int subscribed = 0;
  Subscriber subscriber(
      options,
      [&](PubSubMessage&& m) {
        std::lock_guard lock(mutex);
        received.push_back(std::move(m.payload));
        changed.notify_all();
      },
      [&](PubSubEvent&& e) {
        std::lock_guard lock(mutex);
        if (e.kind == PubSubEvent::Kind::kSubscribed) ++subscribed;
        changed.notify_all();
      });
  ASSERT_TRUE(subscriber.subscribe({key("channel")}).ok());
  {
    std::unique_lock lock(mutex);
    // At least once: a subscribe issued while connecting is also sent on connection.
    ASSERT_TRUE(changed.wait_for(lock, 5s, [&] { return subscribed >= 1; }));
  }
  // Nothing arrives for ten times the stuck-reply limit: the connection must stay.
  const auto quiet_until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < quiet_until) {
    ASSERT_EQ(subscriber.stats().connects, 1u);
    std::this_thread::sleep_for(20ms);  // observing, not lining anything up
  }
  Client publisher(*config);
  ASSERT_TRUE(publisher.command("PUBLISH", key("channel"), "hello").ok());
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 5s, [&] { return !received.empty(); }));
  EXPECT_EQ(received.front(), "hello");
  EXPECT_EQ(subscriber.stats().connects, 1u);
  EXPECT_EQ(subscriber.stats().gaps, 0u);
}

}  // namespace
}  // namespace tiercache::redis
