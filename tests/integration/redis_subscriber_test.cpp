// Pub/sub through Subscriber against real servers: messages, patterns, resubscription and a
// gap after a server restart, a slow handler (drops + gap), refusals.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_process.hpp"
#include "tiercache/redis/client.hpp"
#include "tiercache/redis/subscriber.hpp"

namespace tiercache::redis {
namespace {

using namespace std::chrono_literals;
using test::RedisProcess;

ClientConfig config_for(std::uint16_t port) {
  ClientConfig config;
  config.port = port;
  return config;
}

// Collects what a Subscriber delivers; waits with deadlines.
class Inbox {
 public:
  Subscriber::MessageHandler message_handler() {
    return [this](PubSubMessage&& m) {
      std::lock_guard lock(mutex_);
      messages_.push_back(std::move(m));
      changed_.notify_all();
    };
  }
  Subscriber::EventHandler event_handler() {
    return [this](PubSubEvent&& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(e));
      changed_.notify_all();
    };
  }
  bool wait_messages(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
  }
  bool wait_event(PubSubEvent::Kind kind, std::size_t n = 1,
                  std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return count(kind) >= n; });
  }
  std::vector<PubSubMessage> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::size_t count(PubSubEvent::Kind kind) const {
    std::size_t n = 0;
    for (const auto& e : events_) n += e.kind == kind ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<PubSubMessage> messages_;
  std::vector<PubSubEvent> events_;
};

TEST(RedisSubscriber, ReceivesMessagesOfItsChannelsAndPatterns) {
  RedisProcess server = RedisProcess::start();
  Inbox inbox;
  Subscriber subscriber(config_for(server.port()), inbox.message_handler(), inbox.event_handler());
  ASSERT_TRUE(subscriber.subscribe({"news"}).ok());
  ASSERT_TRUE(subscriber.psubscribe({"inv:*"}).ok());
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kSubscribed, 2));

  Client publisher(config_for(server.port()));
  ASSERT_TRUE(publisher.command("PUBLISH", "news", "hello").ok());
  ASSERT_TRUE(publisher.command("PUBLISH", "inv:user", "42").ok());
  ASSERT_TRUE(publisher.command("PUBLISH", "elsewhere", "x").ok());
  ASSERT_TRUE(inbox.wait_messages(2));
  const auto got = inbox.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind, PubSubMessage::Kind::kMessage);
  EXPECT_EQ(got[0].channel, "news");
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_EQ(got[1].kind, PubSubMessage::Kind::kPattern);
  EXPECT_EQ(got[1].pattern, "inv:*");
  EXPECT_EQ(got[1].channel, "inv:user");
  EXPECT_EQ(got[1].payload, "42");
}

TEST(RedisSubscriber, ResubscribesAfterAServerRestartAndReportsTheGap) {
  RedisProcess server = RedisProcess::start();
  Inbox inbox;
  ClientConfig config = config_for(server.port());
  Subscriber subscriber(config, inbox.message_handler(), inbox.event_handler());
  ASSERT_TRUE(subscriber.subscribe({"inv"}).ok());
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kSubscribed));

  server.restart();
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kGap, 1, 10s));
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kSubscribed, 2, 10s));
  Client publisher(config);
  ASSERT_TRUE(publisher.command("PUBLISH", "inv", "after").ok());
  ASSERT_TRUE(inbox.wait_messages(1));
  EXPECT_EQ(inbox.messages().back().payload, "after");
  EXPECT_GE(subscriber.stats().gaps, 1u);
}

TEST(RedisSubscriber, ASlowHandlerLosesMessagesButNeverStallsTheConnectionAndIsToldSo) {
  RedisProcess server = RedisProcess::start();
  std::mutex gate;
  std::unique_lock hold(gate);  // the handler blocks until the test lets it go
  Inbox inbox;
  std::atomic<int> handled{0};
  SubscriberOptions options;
  options.max_queued_messages = 10;
  Subscriber subscriber(
      config_for(server.port()),
      [&](PubSubMessage&&) {
        std::lock_guard wait(gate);
        ++handled;
      },
      inbox.event_handler(), options);
  ASSERT_TRUE(subscriber.subscribe({"flood"}).ok());
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kSubscribed));
  Client publisher(config_for(server.port()));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(publisher.command("PUBLISH", "flood", i).ok());
  // The connection keeps reading while the handler is stuck: the surplus is dropped, counted.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (subscriber.stats().dropped < 89 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_GE(subscriber.stats().dropped, 89u);
  hold.unlock();
  ASSERT_TRUE(publisher.command("PUBLISH", "flood", "last").ok());
  ASSERT_TRUE(inbox.wait_event(PubSubEvent::Kind::kGap));
}

}  // namespace
}  // namespace tiercache::redis
