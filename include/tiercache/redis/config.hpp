// ClientConfig: everything the Redis client needs to know before it connects, as a plain
// struct with safe defaults (the model is Boost.Redis's `config`), plus parse_url() to fill
// one from a `redis://` or `rediss://` URL.
//
// A default-constructed ClientConfig talks RESP3 to 127.0.0.1:6379, database 0, without TLS
// or AUTH, over one multiplexed connection, with bounded timeouts and queues. Every field
// below says what it does, its default and when to change it. The client copies the config
// when it is created; changing a ClientConfig afterwards has no effect on that client.
//
// Secrets: `password` and whatever `credentials_provider` returns are only ever sent to the
// server. Nothing in this header puts them into an Error message; log URLs through
// redact_url().

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "tiercache/redis/errors.hpp"
#include "tiercache/redis/resp_parser.hpp"

namespace tiercache::redis {

// A user name and password for HELLO ... AUTH (or AUTH on RESP2).
struct Credentials {
  std::string username;  // empty = "default", the user Redis has without ACLs
  std::string password;  // empty = do not authenticate
};

enum class TlsVersion : std::uint8_t { kTls12, kTls13 };

// TLS settings, used when ClientConfig::use_tls is true. Files are PEM.
struct TlsOptions {
  // CA certificates to trust, one PEM file. Default empty: the system's default trust store
  // (unless ca_dir is set). Set it for a private CA (the usual case for Redis).
  std::string ca_file;
  // A directory of hashed CA certificates (`openssl rehash`). Default empty. An alternative
  // or an addition to ca_file.
  std::string ca_dir;
  // The client certificate, for mutual TLS. Default empty: no client certificate. Set it
  // (with key_file) when the server runs with `tls-auth-clients yes`.
  std::string cert_file;
  // The private key of cert_file. Default empty. Required when cert_file is set.
  std::string key_file;
  // The name sent as SNI and checked against the server certificate. Default empty: the
  // host being connected to. Set it when connecting by IP address or through a tunnel.
  std::string server_name;
  // Verify the server certificate chain and name. Default true. Turn off only for a
  // throw-away test server: without it TLS does not protect against an impostor.
  bool verify_peer = true;
  // The oldest TLS version accepted. Default TLS 1.2. Raise it to 1.3 if policy demands.
  TlsVersion min_version = TlsVersion::kTls12;
};

// How the client greets the server after connecting.
enum class Protocol : std::uint8_t {
  // HELLO 3 (with AUTH and SETNAME in it); if the server does not know HELLO (Redis < 6),
  // fall back to RESP2 with AUTH and CLIENT SETNAME. The default.
  kResp3WithFallback,
  // HELLO 3 or fail: for features that need RESP3 (client-side caching, pushes).
  kResp3,
  // RESP2 only, AUTH and CLIENT SETNAME as separate commands: for proxies that break HELLO.
  kResp2,
};

// Bounds on what the reply parser accepts from the server (see ParserLimits in
// resp_parser.hpp for each field and its default); a reply beyond any of them is
// Errc::kProtocol and the connection is dropped. They protect memory from a hostile or
// broken server. The size limits follow Redis's own (proto-max-bulk-len 512 MiB); since a
// parsed value takes far more memory than its wire bytes, max_reply_elements (2^22) and
// max_reply_memory (1 GiB) bound what one reply may occupy once parsed.
using ReplyLimits = ParserLimits;

struct ClientConfig {
  // ---- where ------------------------------------------------------------------------------
  // The server's host name or IP address (an IPv6 address without brackets). Default
  // "127.0.0.1".
  std::string host = "127.0.0.1";
  // The server's TCP port. Default 6379.
  std::uint16_t port = 6379;
  // The database SELECTed on every connection. Default 0. Redis Cluster has only 0.
  std::uint32_t database = 0;

  // ---- who --------------------------------------------------------------------------------
  // The ACL user. Default empty, which means "default". Ignored when credentials_provider
  // is set.
  std::string username;
  // The password. Default empty: no AUTH. Ignored when credentials_provider is set.
  std::string password;
  // If set, called at every connect and reconnect for the credentials to use instead of
  // username/password, so a rotated ACL password is picked up without a restart. It runs on
  // the client's I/O thread: it must not block for long (read a cached secret, do not
  // fetch one over the network). An Error it returns fails that connection attempt, which
  // is retried with backoff like any other. Default empty.
  std::function<Result<Credentials>()> credentials_provider;
  // The name given to each connection (CLIENT LIST shows it). Default "tiercache". Empty:
  // do not name connections. Printable ASCII without spaces.
  std::string client_name = "tiercache";

  // ---- how --------------------------------------------------------------------------------
  // Talk TLS (`rediss://`). Default false. Set it for any server reached over a network you
  // do not control, and fill `tls`.
  bool use_tls = false;
  // Certificates and verification for TLS. Used only when use_tls is true.
  TlsOptions tls;
  // The greeting: HELLO 3 with RESP2 fallback by default; see Protocol.
  Protocol protocol = Protocol::kResp3WithFallback;

  // ---- time -------------------------------------------------------------------------------
  // Limit on name resolution, TCP connect, TLS handshake and the greeting together. Default
  // 2 s. Raise it for servers far away; lower it to fail over faster.
  std::chrono::milliseconds connect_timeout{2000};
  // The default deadline of each request, from submission to its reply; a request may set
  // its own. Default 1 s. Lower it when a slow cache is worse than no cache.
  std::chrono::milliseconds command_timeout{1000};
  // Send PING when a connection has been idle this long, and treat a missing answer (within
  // command_timeout) as a dead connection. Default 5 s; 0 turns it off. Lower it to notice
  // silent network drops sooner.
  std::chrono::milliseconds health_check_interval{5000};
  // Recycle a connection after this many requests in a row timed out waiting for their reply
  // (no reply to anything in between): it is presumed stuck (a hung server or proxy, a
  // half-open TCP connection), so it is closed, the requests still awaiting a reply on it fail
  // with kConnection, and a new connection is made after the reconnect backoff; requests not
  // yet written wait for it. This works while traffic flows, when the health check cannot.
  // Requests queued behind a reply that is still within its own deadline (a blocking command
  // given a longer CallOptions::timeout) do not count. Default 3; 0 turns it off. A server
  // that stalls for longer than command_timeout under load gets its connection recycled too:
  // raise it if a reconnection costs more than the stall.
  std::size_t recycle_after_timeouts = 3;
  // Recycle a connection (as above) that owes a reply and has received nothing for this long,
  // counted from when the oldest awaited request was written or from the last byte read,
  // whichever is later (a large reply still arriving is progress). Never before that
  // request's own deadline, so a blocking command (BLPOP, XREAD BLOCK) given a longer
  // CallOptions::timeout keeps its connection until then. It bounds how long a connection can
  // stay stuck whatever the request timeouts. Only awaited replies count: an idle connection,
  // or a Subscriber's waiting for messages, is never recycled by it. Default 3 s; 0 turns it
  // off.
  std::chrono::milliseconds stuck_reply_limit{3000};
  // The first wait before reconnecting after a failure; each further failure doubles it.
  // Default 50 ms.
  std::chrono::milliseconds reconnect_min_delay{50};
  // The longest wait between reconnect attempts. Default 5 s. Lower it when Redis restarts
  // are short and recovery speed matters more than load on the server.
  std::chrono::milliseconds reconnect_max_delay{5000};
  // Each reconnect wait is randomised by +- this fraction so many clients do not reconnect
  // in lockstep. Default 0.2. REQUIRES: 0 <= reconnect_jitter <= 1.
  double reconnect_jitter = 0.2;
  // How long a blocking call on an idle connection (the fast path, docs/redis-client.md) may
  // poll its socket without sleeping before it sleeps in the kernel. A sleeping caller pays a
  // wake-up when its reply lands, which on VMs can cost as much as the round trip itself.
  // The client measures both ways per connection and spins only while spinning is the faster
  // one (it tries again from time to time), so a far-away or co-located server makes it
  // sleep at once. Default 50 us; 0 never spins (no CPU burnt waiting, at the cost of that
  // wake-up). Negative counts as 0.
  std::chrono::microseconds spin_wait{50};

  // ---- limits -----------------------------------------------------------------------------
  // Most requests waiting to be written or answered, over all connections; one more fails
  // at once with Errc::kQueueFull (back-pressure instead of unbounded memory). Default 65536.
  std::size_t max_pending_requests = 65536;
  // Auto-pipelining puts up to this many bytes of queued requests into one socket write.
  // Default 1 MiB. Larger batches mean fewer system calls but a later first byte.
  std::size_t max_write_batch_bytes = std::size_t{1} << 20;
  // What the reply parser accepts; see ReplyLimits.
  ReplyLimits limits;
  // Connections to the server. Default 1: one multiplexed connection carries every request
  // (pipelined, so one is usually enough). More keep a slow large reply from delaying the
  // others; they share the client's I/O thread.
  std::size_t connections = 1;

  // ---- server pushes ------------------------------------------------------------------------
  // Receives the RESP3 pushes that arrive on the client's connections (e.g. the invalidations
  // of CLIENT TRACKING), one at a time, in arrival order, on a dispatcher thread of the
  // client's own: a slow handler never stalls replies. Pushes wait in a queue of at most
  // max_queued_pushes; beyond, they are dropped and counted (ClientStats::pushes_dropped):
  // a consumer that relies on them (a cache trusting invalidations) must treat a drop, like a
  // reconnection (ClientStats::connects), as "anything may have changed". Default: none
  // (pushes are only counted). With a handler every connection keeps a read pending, so
  // blocking calls always go through the I/O thread (no fast path).
  std::function<void(Reply&&)> push_handler;
  std::size_t max_queued_pushes = 10000;

  // "host:port", or "[host]:port" when host is an IPv6 address. For logs and errors.
  std::string endpoint() const;
};

// Fills a ClientConfig from a URL:
//
//   redis://[[user][:password]@]host[:port][/database][?option=value[&option=value]...]
//   rediss://...   the same with TLS (use_tls = true; `redis://` sets it false)
//
// - The scheme is case-insensitive. host is a name, an IPv4 address or an IPv6 address in
//   brackets (`redis://[::1]:6380`; zone ids like `%25eth0` are not supported). port is
//   decimal, 1..65535. database is decimal, 0..2147483647.
// - user and password are percent-decoded, so any byte can be written: `%40` for '@', `%3A`
//   for ':', `%2F` for '/', `%25` for '%'. A raw ':' or '@' in the password is accepted too,
//   but '/', '?' and '#' must be encoded.
// - Options (values percent-decoded; each at most once):
//     timeout=<ms>          command_timeout, in milliseconds, 1..86400000
//     connect_timeout=<ms>  connect_timeout, in milliseconds, 1..86400000
//     client_name=<name>    client_name (empty: do not name the connections)
//     protocol=2|3          kResp2 or kResp3 (no fallback)
// - What the URL does not set keeps base's value: port, database, user, password (only a
//   non-empty user or password in the URL replaces base's), options and every field the URL
//   cannot express (TLS files, limits, ...). host and use_tls always come from the URL.
//
// Anything malformed is Errc::kInvalidArgument with a message naming the problem. The
// message never contains the password, nor any text of the authority part that could be
// one (a port that is not a number is not echoed).
Result<ClientConfig> parse_url(std::string_view url, ClientConfig base = {});

// The URL with its password replaced by "***", for logs: `redis://app:***@cache:6379/2`.
// Best effort on URLs parse_url rejects too: whatever lies between the first ':' after
// "scheme://" and the last '@' is hidden. A URL without a password is returned unchanged.
std::string redact_url(std::string_view url);

}  // namespace tiercache::redis
