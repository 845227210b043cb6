// Connection: one multiplexed connection to one Redis server. Internal to the client.
//
// Threads. submit() and close() may be called from any thread; everything else runs on the
// connection's strand. Callers hand requests to `incoming_` under `incoming_mutex_` and, if no
// flush is scheduled yet, post one; the strand moves them to `unwritten_`. That handoff is
// the only lock; I/O, parsing and completions happen on the strand without it.
//
// Auto-pipelining. While a write is in flight, new requests accumulate in `unwritten_`;
// when it finishes, all of them (up to max_write_batch_bytes) are copied into one buffer and
// written with one write. Written requests move to `awaiting_`, in write order; each reply
// read goes to the request at the front of `awaiting_` (RESP replies come in order), which
// completes when it has one reply per command. RESP3 pushes are not replies: they go to the
// push handler.
//
// Deadlines. Every unfinished request is in a min-heap on its deadline, and one timer is
// armed at the earliest. A request whose deadline passes is finished with kTimeout (written
// or not; not written while disconnected: kConnection). A written request that timed out
// stays in `awaiting_` so its late reply is still matched and dropped.
//
// Recycling. A connection can stop answering without closing (a hung server or proxy, a
// half-open TCP connection) while writes still succeed, so under traffic it never looks idle
// to the health check. Two rules close it then (drop(): awaited requests fail with
// kConnection, a reconnect follows with the backoff), counted in stuck_recycles:
// - `timeouts_in_a_row_` written requests timed out with no reply in between, counting only
//   those that timed out while the reply owed first (the front of `awaiting_`) was itself past
//   its deadline (recycle_after_timeouts);
// - the front of `awaiting_` is overdue: nothing was read for stuck_reply_limit since it
//   became the front (`owed_since_`: the write that made `awaiting_` non-empty) or since the
//   last read, whichever is later, and its own deadline has passed too (stuck_reply_limit).
//   `stuck_timer_` checks it; it is armed only while `awaiting_` is non-empty.
// Neither acts while a fast-path caller holds the socket (then `awaiting_` is empty: the
// caller keeps its own deadline and, when it gives up, hands the unanswered count back,
// which counts as one timeout).
//
// Lifecycle. kDisconnected -> kConnecting (resolve, TCP connect, TLS handshake; bounded by
// connect_timeout) -> kHandshaking (HELLO/AUTH/SETNAME/SELECT, written before anything else)
// -> kReady -> (error) kDisconnected, then a reconnect after a Backoff delay. On a drop,
// requests in `awaiting_` fail (kConnection, or kProtocol if the bytes were bad); requests in
// `unwritten_` stay for the next connection, each until its deadline. Handlers of an old
// socket carry its generation number and do nothing once it is stale. kClosed is final.
// Handlers hold a shared_ptr to the connection, so it outlives its pending operations.

#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/backoff.hpp"
#include "tiercache/redis/client.hpp"
#include "tiercache/redis/config.hpp"
#include "tiercache/redis/detail/pending_request.hpp"
#include "tiercache/redis/detail/spin_policy.hpp"
#include "tiercache/redis/resp_parser.hpp"

namespace tiercache::redis::detail {

// Counters, updated on the strand, read from anywhere.
struct ConnectionCounters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> connection_errors{0};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> connect_failures{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> push_messages{0};
  std::atomic<std::uint64_t> spin_waits{0};
  std::atomic<std::uint64_t> spin_hits{0};
  std::atomic<std::uint64_t> stuck_recycles{0};

  void add_to(ClientStats& s) const;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Strand = asio::strand<asio::io_context::executor_type>;
  // Receives RESP3 pushes, on the strand. Must be quick (it should queue, not work).
  using PushHandler = std::function<void(Reply&&)>;

  // `tls` must be set iff config.use_tls. `seed` seeds the reconnect jitter.
  Connection(asio::io_context& io, const ClientConfig& config,
             std::shared_ptr<asio::ssl::context> tls, std::uint64_t seed);
  ~Connection();

  // Starts connecting in the background. Call once.
  void start();
  // Queues `request` (any thread). Completes it at once if the connection is closed or
  // too many requests are pending.
  void submit(std::shared_ptr<PendingRequest> request);
  // Closes for good (any thread; idempotent): every pending request fails with kClosed.
  void close();

  // The blocking fast path: when the connection is idle (ready, plain TCP, nothing queued,
  // written or being read), the calling thread writes `payload` and reads its `commands`
  // replies itself, with no thread switch. Returns nullopt when the connection is not idle
  // (the caller then uses submit()). The socket belongs to the caller for the call; the
  // strand waits for it to be handed back before it writes, reads or closes.
  std::optional<Result<std::vector<Reply>>> try_direct(std::string_view payload,
                                                       std::size_t commands,
                                                       RequestClock::time_point deadline);

  void set_push_handler(PushHandler handler);  // before start()
  // Pub/sub mode (before start()): replies that no request waits for, and RESP2 arrays that
  // are pub/sub messages ("message", "subscribe", ...), go to the push handler instead of
  // closing the connection; requests of 0 commands are allowed and complete once written.
  void set_subscriber_mode();
  // Called on the strand each time the connection becomes ready (`reconnect`: not the first
  // time); the bytes it returns (commands expecting no reply, in subscriber mode) are written
  // before anything else. Before start().
  using ReadyHook = std::function<std::string(bool reconnect)>;
  void set_ready_hook(ReadyHook hook);
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  const ConnectionCounters& counters() const { return counters_; }
  const Strand& strand() const { return strand_; }

 private:
  enum class State { kDisconnected, kConnecting, kHandshaking, kReady, kClosed };

  // Strand-only from here on.
  void submit_on_strand(std::shared_ptr<PendingRequest> request);
  // Completes `request` with `error`, later on the strand (never inside submit()).
  void refuse(std::shared_ptr<PendingRequest> request, Error error);
  void flush_incoming();
  void write_more();
  // write_more() from on_read(): the socket was just read, so it is not probed first.
  void write_more_after_read();
  void on_written(std::uint64_t generation, std::error_code ec);
  // Reads run only while replies are expected (or always, for TLS and subscribers), so an
  // idle plain connection has no read pending and a caller may take it (try_direct).
  void ensure_reading();
  bool keep_reading() const;
  void read_more();
  // True if bytes (or EOF) wait on an idle socket: read them before writing.
  bool socket_readable_now();
  // Strand: takes the socket from the fast path (false if a caller holds it; it will hand
  // it back and the strand resumes then).
  bool claim_socket();
  // Strand: whether write_more() may write now (claims the socket when it may).
  bool socket_ready_for_writing();
  // Strand: drops the requests at the front of unwritten_ that finished (timed out) before
  // being written; true if any request is left to write.
  bool has_unwritten();
  // Strand: offers the socket to the fast path if the connection is idle.
  void maybe_open_direct();
  // What a fast-path call leaves for the strand.
  struct DirectOutcome {
    bool needs_read = false;             // unexpected bytes were waiting: the strand reads them
    std::optional<Error> drop;           // the connection is broken
    std::size_t unanswered = 0;          // replies still to come (the call timed out)
    RequestClock::time_point written{};  // when the call wrote its request
    std::vector<Reply> pushes;           // pushes read on the way
  };
  void hand_back(std::uint64_t generation, DirectOutcome outcome);
  void after_direct(std::uint64_t generation, DirectOutcome outcome);
  void on_read(std::uint64_t generation, std::error_code ec, std::size_t bytes);
  void on_reply(Reply&& reply);
  // Moves a written request to `awaiting_`; if it was empty, the request is owed from `since`
  // (default: now) and the stuck check is armed.
  void await(std::shared_ptr<PendingRequest> request,
             std::optional<RequestClock::time_point> since = std::nullopt);
  // Subscriber mode: whether a RESP2 array is a pub/sub message rather than a reply.
  static bool is_resp2_pubsub_message(const Reply& reply);
  // A read or write failed with `ec`.
  void lost(std::error_code ec, const std::string& what);

  void connect();
  void on_resolved(std::uint64_t generation, std::error_code ec,
                   const asio::ip::tcp::resolver::results_type& endpoints);
  void on_connected(std::uint64_t generation, std::error_code ec);
  void on_tls_handshake(std::uint64_t generation, std::error_code ec);
  void send_handshake(bool resp3);
  void on_handshake(bool resp3, Result<std::vector<Reply>> result);
  // A connection attempt failed: counts it, remembers why, drops.
  void connect_failed(const Error& error);
  // Tears the connection down with `error` for the written requests; schedules a reconnect.
  void drop(const Error& error);
  void fail_unwritten(const Error& error);
  void schedule_reconnect();

  // Recycling (see the top of this file).
  // Whether a written request timing out now counts towards recycle_after_timeouts.
  bool front_expired(RequestClock::time_point now) const;
  // recycle_after_timeouts is on and reached.
  bool recycle_after_timeouts_reached() const;
  // ClientConfig::stuck_reply_limit, capped so that time + limit cannot overflow.
  std::chrono::milliseconds stuck_reply_limit() const;
  // The later of `owed_since_` and the last read.
  RequestClock::time_point silent_since() const;
  // When the front of `awaiting_` becomes overdue. REQUIRES: !awaiting_.empty().
  RequestClock::time_point overdue_at() const;
  void arm_stuck_check(RequestClock::time_point at);
  void on_stuck_check(std::uint64_t generation);
  // Closes a ready connection that stopped answering (drop() with `why`); false when a
  // fast-path caller holds the socket (then nothing is done).
  bool recycle(const std::string& why);

  void arm_connect_timer();
  void arm_health_check();
  void on_health_check(std::uint64_t generation);

  // Deadlines: requests whose deadline is not before the last one's (the usual case: one
  // timeout for all) go to a FIFO, where finished ones are dropped when they reach the
  // front; the others to a heap, left eagerly by finish().
  void track_deadline(const std::shared_ptr<PendingRequest>& request);
  PendingRequest* earliest_deadline();  // nullptr if none
  void heap_push(PendingRequest* request);
  void heap_remove(PendingRequest* request);
  void heap_swap(std::size_t a, std::size_t b);
  void heap_sift_up(std::size_t i);
  void heap_sift_down(std::size_t i);
  void arm_deadline_timer();
  void on_deadline_timer();

  // Finishes `request` (once): removes it from the heap and completes it.
  void finish(PendingRequest& request, std::optional<Error> error);
  void close_now();
  void close_socket();

  template <class F>
  void with_stream(F&& f) {
    if (tls_stream_) {
      f(*tls_stream_);
    } else {
      f(*socket_);
    }
  }

  const ClientConfig config_;
  Strand strand_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  asio::ip::tcp::resolver resolver_;
  std::optional<asio::ip::tcp::socket> socket_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_stream_;
  asio::steady_timer connect_timer_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer health_timer_;
  asio::steady_timer stuck_timer_;
  Backoff backoff_;
  PushHandler push_handler_;
  ReadyHook ready_hook_;
  bool subscriber_mode_ = false;
  bool was_ready_ = false;   // became ready at least once
  std::string ready_bytes_;  // from the ready hook, written first
  std::vector<std::shared_ptr<PendingRequest>> written_without_reply_;  // in the write

  // Caller -> strand handoff.
  std::mutex incoming_mutex_;
  std::vector<std::shared_ptr<PendingRequest>> incoming_;
  bool flush_posted_ = false;            // guarded by incoming_mutex_
  bool closed_ = false;                  // guarded by incoming_mutex_
  std::atomic<std::size_t> pending_{0};  // submitted and not finished

  // Strand state.
  State state_ = State::kDisconnected;
  std::uint64_t generation_ = 0;  // of the current socket
  std::deque<std::shared_ptr<PendingRequest>> unwritten_;
  std::deque<std::shared_ptr<PendingRequest>> awaiting_;
  std::shared_ptr<PendingRequest> handshake_;  // written ahead of everything else
  // Per socket: an aborted operation of the previous socket may still reference the old ones.
  std::shared_ptr<std::string> write_buffer_ = std::make_shared<std::string>();
  std::shared_ptr<std::vector<char>> read_buffer_;
  bool write_in_flight_ = false;
  bool reading_ = false;     // a read is pending on the current socket
  bool parsing_ = false;     // on_read() is handing out replies (writes wait for its end)
  bool after_read_ = false;  // inside write_more_after_read()
  // Bytes (or EOF) arrived on the idle socket: writes wait until they are read.
  bool probing_read_ = false;
  RespParser parser_;
  std::vector<PendingRequest*> heap_;
  std::deque<std::shared_ptr<PendingRequest>> deadline_fifo_;
  std::optional<RequestClock::time_point> deadline_armed_;
  // Recycling state (strand): see the top of this file.
  bool stuck_armed_ = false;
  RequestClock::time_point owed_since_{};
  std::size_t timeouts_in_a_row_ = 0;
  // Last completed read or write (nanoseconds of RequestClock), any thread.
  std::atomic<std::int64_t> last_activity_ns_{0};
  // Last completed read, any thread (the stuck check's "progress").
  std::atomic<std::int64_t> last_read_ns_{0};
  void touch() {
    last_activity_ns_.store(RequestClock::now().time_since_epoch().count(),
                            std::memory_order_relaxed);
  }
  void touch_read() {
    const std::int64_t now = RequestClock::now().time_since_epoch().count();
    last_activity_ns_.store(now, std::memory_order_relaxed);
    last_read_ns_.store(now, std::memory_order_relaxed);
  }

  // Fast-path ownership of the socket (see try_direct), guarded by owner_mutex_.
  std::mutex owner_mutex_;
  bool direct_open_ = false;     // the strand is idle and offers the socket
  bool direct_busy_ = false;     // a caller holds the socket
  bool strand_waiting_ = false;  // the strand wanted the socket while a caller held it
  int direct_fd_ = -1;
  // The socket while taken out of Asio's reactor for the fast path (-1: it is not).
  int released_fd_ = -1;
  asio::ip::tcp released_protocol_ = asio::ip::tcp::v4();
  std::uint64_t direct_generation_ = 0;
  // Whether the fast path spins for its reply; used only by the caller holding the socket.
  SpinPolicy spin_policy_;
  bool health_ping_in_flight_ = false;
  Error last_connect_error_;
  std::atomic<bool> ready_{false};
  ConnectionCounters counters_;
};

// Builds the TLS context for `config` (CA, client certificate, minimum version).
Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const ClientConfig& config);

}  // namespace tiercache::redis::detail
