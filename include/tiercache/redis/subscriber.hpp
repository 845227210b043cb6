// Subscriber: Redis pub/sub (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE) on a connection of its own.
//
// Messages are read on the subscriber's I/O thread and queued; a dispatcher thread of its own
// calls the message handler, in arrival order. The queue is bounded
// (SubscriberOptions::max_queued_messages): when a slow handler lets it fill up, new messages
// are dropped and counted, never blocking the reading of the connection.
//
// Gaps. Pub/sub is fire-and-forget: a message published while the subscriber is
// disconnected, or dropped because the queue was full, is lost. The subscriber says so: the
// gap handler is called (on the dispatcher thread, in order with the messages) after a
// reconnection, once it has subscribed again to every channel and pattern, and after
// messages were dropped. A cache that keeps copies of data based on invalidation messages
// must treat a gap as "anything may have changed".
//
// Subscriptions are kept across reconnections (the subscriber sends them again). subscribe()
// and friends return once the command is written (or fail: not connected by the deadline,
// closed); the server's confirmation arrives as a kSubscribed event. Thread-safe; handlers
// must not destroy the Subscriber. Destruction stops both threads; no handler runs after it.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tiercache/redis/config.hpp"
#include "tiercache/redis/errors.hpp"

namespace tiercache::redis {

struct PubSubMessage {
  enum class Kind : std::uint8_t {
    kMessage,  // from SUBSCRIBE: channel, payload
    kPattern,  // from PSUBSCRIBE: pattern, channel, payload
    kSharded,  // from SSUBSCRIBE: channel, payload
  };
  Kind kind = Kind::kMessage;
  std::string pattern;
  std::string channel;
  std::string payload;
};

// Something the subscriber tells its user besides messages.
struct PubSubEvent {
  enum class Kind : std::uint8_t {
    kSubscribed,    // the server confirmed a (p/s)subscribe: `channel`
    kUnsubscribed,  // the server confirmed an unsubscribe: `channel`
    kGap,           // messages may have been lost: `detail` says why
    kError,         // the server refused something (e.g. NOPERM): `detail`
  };
  Kind kind = Kind::kGap;
  std::string channel;
  std::string detail;
};

struct SubscriberOptions {
  // Messages read but not yet handled; beyond, new ones are dropped (and a kGap follows).
  std::size_t max_queued_messages = 100000;
  // How long subscribe()/unsubscribe() wait to be written (e.g. while reconnecting).
  std::chrono::milliseconds command_timeout{1000};
};

struct SubscriberStats {
  std::uint64_t messages = 0;  // handed to the message handler
  std::uint64_t dropped = 0;   // dropped because the queue was full
  std::uint64_t gaps = 0;      // kGap events
  std::uint64_t connects = 0;  // successful (re)connections
};

class Subscriber {
 public:
  using MessageHandler = std::function<void(PubSubMessage&&)>;
  using EventHandler = std::function<void(PubSubEvent&&)>;

  // Connects in the background. `on_event` may be empty.
  Subscriber(ClientConfig config, MessageHandler on_message, EventHandler on_event,
             SubscriberOptions options = {});
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  Result<void> subscribe(const std::vector<std::string>& channels);
  Result<void> psubscribe(const std::vector<std::string>& patterns);
  Result<void> ssubscribe(const std::vector<std::string>& channels);
  Result<void> unsubscribe(const std::vector<std::string>& channels);
  Result<void> punsubscribe(const std::vector<std::string>& patterns);
  Result<void> sunsubscribe(const std::vector<std::string>& channels);

  // Connected, every subscription confirmed since the last reconnection, and that
  // reconnection's gap handed to the event handler. Cheap (no lock).
  bool connected() const;
  // Stops both threads now (the destructor does the same): no handler runs after it returns,
  // and connected() is false. The object stays usable for connected() and stats().
  void stop();
  SubscriberStats stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tiercache::redis
