// Subscriber: a Connection in subscriber mode, plus a dispatcher thread.
//
// Threads: the I/O thread runs the connection; its push handler turns pushes into queue
// items (messages and events) under `mutex_` and never waits. The dispatcher thread pops
// items and calls the user's handlers without holding the lock. The set of subscriptions
// (`channels_`, `patterns_`, `shard_channels_`) is changed by the subscribe calls under
// `mutex_` and read by the ready hook (I/O thread) to subscribe again after a reconnection.

#include "tiercache/redis/subscriber.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <variant>

#include "redis/connection.hpp"
#include "redis/sync_request.hpp"
#include "tiercache/redis/command.hpp"

namespace tiercache::redis {

class Subscriber::Impl {
 public:
  Impl(ClientConfig config, MessageHandler on_message, EventHandler on_event,
       SubscriberOptions options)
      : config_(std::move(config)),
        options_(options),
        on_message_(std::move(on_message)),
        on_event_(std::move(on_event)) {}

  void start(const std::shared_ptr<Impl>& self) {
    std::shared_ptr<asio::ssl::context> tls;
    if (config_.use_tls) {
      Result<std::shared_ptr<asio::ssl::context>> made = detail::make_tls_context(config_);
      if (!made.ok()) {
        config_error_ = std::move(made).error();
      } else {
        tls = std::move(made.value());
      }
    }
    std::random_device random;
    connection_ = std::make_shared<detail::Connection>(io_, config_, tls,
                                                       (std::uint64_t{random()} << 32) ^ random());
    connection_->set_subscriber_mode();
    std::weak_ptr<Impl> weak = self;
    connection_->set_push_handler([weak](Reply&& reply) {
      if (auto impl = weak.lock()) impl->on_push(std::move(reply));
    });
    connection_->set_ready_hook([weak](bool reconnect) {
      auto impl = weak.lock();
      return impl ? impl->on_ready(reconnect) : std::string();
    });
    if (!config_error_) connection_->start();
    work_.emplace(io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
    dispatcher_ = std::thread([this] { dispatch(); });
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    connection_->close();
    work_.reset();
    if (io_thread_.joinable()) io_thread_.join();
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
  }

  enum class Set { kChannels, kPatterns, kShardChannels };

  Result<void> change(Set set, bool add, const std::vector<std::string>& names) {
    if (config_error_) return *config_error_;
    if (names.empty()) return {};
    static constexpr std::string_view kCommands[2][3] = {
        {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}, {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}};
    Request request;
    request.push_range(kCommands[add ? 1 : 0][static_cast<int>(set)], names);
    {
      std::lock_guard lock(mutex_);
      std::set<std::string>& target = set_of(set);
      for (const std::string& name : names) {
        if (add) {
          target.insert(name);
        } else {
          target.erase(name);
        }
      }
    }
    // Commands of a subscribed connection get their answers as pushes: no reply to wait for.
    const auto deadline = detail::RequestClock::now() + options_.command_timeout;
    auto pending =
        std::make_shared<detail::SyncRequest>(std::string(request.payload()), 0, deadline);
    connection_->submit(pending);
    Result<std::vector<Reply>> written =
        pending->wait_until(deadline + std::chrono::milliseconds(250));
    if (!written.ok()) return std::move(written).error();
    return {};
  }

  // Connected, every subscription restored after the last reconnection confirmed, and the
  // reconnection's gap handed to the event handler: only then is every message published from
  // now on heard, and what was missed before reported. Lock-free (caches ask on every hit).
  bool connected() const {
    return connection_->ready() && !unconfirmed_.load(std::memory_order_acquire);
  }

  SubscriberStats stats() const {
    std::lock_guard lock(mutex_);
    SubscriberStats s = stats_;
    s.connects = connection_->counters().connects.load(std::memory_order_relaxed);
    return s;
  }

 private:
  using Item = std::variant<PubSubMessage, PubSubEvent>;

  std::set<std::string>& set_of(Set set) {
    switch (set) {
      case Set::kChannels:
        return channels_;
      case Set::kPatterns:
        return patterns_;
      case Set::kShardChannels:
        return shard_channels_;
    }
    return channels_;
  }

  // I/O thread: the commands that restore the subscriptions. After a reconnection the gap is
  // reported once the server confirmed all of them (before that, messages may still be lost:
  // a user that refills its copies on the gap must not do it before it hears everything).
  std::string on_ready(bool reconnect) {
    std::lock_guard lock(mutex_);
    Request request;
    if (!channels_.empty()) request.push_range("SUBSCRIBE", channels_);
    if (!patterns_.empty()) request.push_range("PSUBSCRIBE", patterns_);
    if (!shard_channels_.empty()) request.push_range("SSUBSCRIBE", shard_channels_);
    awaiting_confirmations_ = channels_.size() + patterns_.size() + shard_channels_.size();
    gap_pending_ = gap_pending_ || reconnect;
    unconfirmed_.store(awaiting_confirmations_ > 0 || gap_pending_ || gaps_undelivered_ > 0,
                       std::memory_order_release);
    if (awaiting_confirmations_ == 0) report_reconnection_gap_locked();
    return std::string(request.payload());
  }

  // Under mutex_: the gap of a reconnection, once nothing is awaiting confirmation. The
  // subscriber counts as connected again once the dispatcher has handed it over (dispatch()).
  void report_reconnection_gap_locked() {
    if (!gap_pending_) {
      if (gaps_undelivered_ == 0) unconfirmed_.store(false, std::memory_order_release);
      return;
    }
    gap_pending_ = false;
    ++gaps_undelivered_;
    push_locked(PubSubEvent{PubSubEvent::Kind::kGap,
                            {},
                            "reconnected: messages published while disconnected are lost"});
    ++stats_.gaps;
  }

  // I/O thread: classifies a push and queues it. Never blocks.
  void on_push(Reply&& reply) {
    if (reply.is_error()) {
      enqueue(PubSubEvent{PubSubEvent::Kind::kError, {}, std::move(reply.string)});
      return;
    }
    if (reply.elements.size() < 2 || !reply.elements[0].is_string()) return;  // not pub/sub
    std::vector<Reply>& e = reply.elements;
    const std::string& kind = e[0].string;
    auto text = [&](std::size_t i) {
      return i < e.size() ? std::move(e[i].string) : std::string();
    };
    if (kind == "message" && e.size() == 3) {
      enqueue(PubSubMessage{PubSubMessage::Kind::kMessage, {}, text(1), text(2)});
    } else if (kind == "smessage" && e.size() == 3) {
      enqueue(PubSubMessage{PubSubMessage::Kind::kSharded, {}, text(1), text(2)});
    } else if (kind == "pmessage" && e.size() == 4) {
      enqueue(PubSubMessage{PubSubMessage::Kind::kPattern, text(1), text(2), text(3)});
    } else if (kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe") {
      enqueue(PubSubEvent{PubSubEvent::Kind::kSubscribed, text(1), {}});
      std::lock_guard lock(mutex_);
      if (awaiting_confirmations_ > 0 && --awaiting_confirmations_ == 0) {
        report_reconnection_gap_locked();
      }
    } else if (kind == "unsubscribe" || kind == "punsubscribe" || kind == "sunsubscribe") {
      enqueue(PubSubEvent{PubSubEvent::Kind::kUnsubscribed, text(1), {}});
    }
  }

  void enqueue(Item item) {
    {
      std::lock_guard lock(mutex_);
      const bool is_message = std::holds_alternative<PubSubMessage>(item);
      if (is_message && queue_.size() >= options_.max_queued_messages) {
        ++stats_.dropped;
        ++dropped_since_gap_;
        return;
      }
      // The queue has room again: say what was lost, before what comes next.
      if (is_message) report_drops_locked();
      queue_.push_back(std::move(item));
    }
    wake_.notify_one();
  }

  void push_locked(PubSubEvent event) {
    queue_.emplace_back(std::move(event));
    wake_.notify_one();
  }

  // Under mutex_: the kGap for the messages dropped since the last one, if any.
  void report_drops_locked() {
    if (dropped_since_gap_ == 0) return;
    push_locked(PubSubEvent{
        PubSubEvent::Kind::kGap,
        {},
        std::to_string(dropped_since_gap_) + " messages dropped: the handler was too slow"});
    ++stats_.gaps;
    dropped_since_gap_ = 0;
  }

  // Dispatcher thread.
  void dispatch() {
    std::unique_lock lock(mutex_);
    for (;;) {
      // Drops are reported as soon as the queue has drained (if no message came after them).
      if (queue_.empty()) report_drops_locked();
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Item item = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (auto* message = std::get_if<PubSubMessage>(&item)) {
        if (on_message_) on_message_(std::move(*message));
        lock.lock();
        ++stats_.messages;
      } else {
        PubSubEvent event = std::get<PubSubEvent>(std::move(item));
        const bool reconnection_gap =
            event.kind == PubSubEvent::Kind::kGap && event.detail.starts_with("reconnected");
        if (on_event_) on_event_(std::move(event));
        lock.lock();
        if (reconnection_gap && --gaps_undelivered_ == 0 && awaiting_confirmations_ == 0 &&
            !gap_pending_) {
          unconfirmed_.store(false, std::memory_order_release);
        }
      }
    }
  }

  const ClientConfig config_;
  const SubscriberOptions options_;
  MessageHandler on_message_;
  EventHandler on_event_;
  std::optional<Error> config_error_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::shared_ptr<detail::Connection> connection_;
  std::thread io_thread_;
  std::thread dispatcher_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::uint64_t dropped_since_gap_ = 0;
  // Subscriptions sent by on_ready() not yet confirmed; a reconnection's gap not yet reported.
  std::size_t awaiting_confirmations_ = 0;
  bool gap_pending_ = false;
  std::size_t gaps_undelivered_ = 0;  // reconnection gaps queued, not yet handed over
  // Mirrors "awaiting confirmations, or a reconnection gap not yet handed over" for connected().
  std::atomic<bool> unconfirmed_{false};
  SubscriberStats stats_;
  std::set<std::string> channels_;
  std::set<std::string> patterns_;
  std::set<std::string> shard_channels_;
};

Subscriber::Subscriber(ClientConfig config, MessageHandler on_message, EventHandler on_event,
                       SubscriberOptions options)
    : impl_(std::make_shared<Impl>(std::move(config), std::move(on_message), std::move(on_event),
                                   options)) {
  impl_->start(impl_);
}

Subscriber::~Subscriber() { impl_->stop(); }

Result<void> Subscriber::subscribe(const std::vector<std::string>& channels) {
  return impl_->change(Impl::Set::kChannels, true, channels);
}
Result<void> Subscriber::psubscribe(const std::vector<std::string>& patterns) {
  return impl_->change(Impl::Set::kPatterns, true, patterns);
}
Result<void> Subscriber::ssubscribe(const std::vector<std::string>& channels) {
  return impl_->change(Impl::Set::kShardChannels, true, channels);
}
Result<void> Subscriber::unsubscribe(const std::vector<std::string>& channels) {
  return impl_->change(Impl::Set::kChannels, false, channels);
}
Result<void> Subscriber::punsubscribe(const std::vector<std::string>& patterns) {
  return impl_->change(Impl::Set::kPatterns, false, patterns);
}
Result<void> Subscriber::sunsubscribe(const std::vector<std::string>& channels) {
  return impl_->change(Impl::Set::kShardChannels, false, channels);
}

bool Subscriber::connected() const { return impl_->connected(); }
void Subscriber::stop() { impl_->stop(); }
SubscriberStats Subscriber::stats() const { return impl_->stats(); }

}  // namespace tiercache::redis
