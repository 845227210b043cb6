// `tiercache redis`: runs one command through tiercache's Redis client and prints the reply
// the way `redis-cli -3` does (with --resp2, the way `redis-cli` does). See the help text in
// redis_command.cpp.
//
// Also the pieces every Redis subcommand shares (`redis-bench` uses them): the connection
// options (--url, TLS, credentials, --timeout-ms, --resp2), the ClientConfig they make, and how
// a client Error becomes a one-line message and an exit status:
//   0 a reply (an error reply too), 2 usage, 3 connection or timeout, 4 auth, 5 TLS,
//   1 anything else (a protocol error, a full queue).
// Messages never contain the password: URLs go through redact_url(), and any text that
// would contain the password is masked before printing.

#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "command.hpp"
#include "tiercache/redis/config.hpp"
#include "tiercache/redis/errors.hpp"

namespace tiercache::cli {

inline constexpr int kExitConnection = 3;  // could not connect, or timed out
inline constexpr int kExitAuth = 4;        // the server refused the credentials
inline constexpr int kExitTls = 5;         // TLS handshake or certificate failure

// The connection options as given on the command line.
struct RedisConnectionArguments {
  std::string url = "redis://127.0.0.1:6379";
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  bool insecure = false;
  std::string user;
  std::string password;
  int timeout_ms = 0;  // 0: the subcommand's default
  bool resp2 = false;
};

// Adds --url, --tls-ca, --tls-cert, --tls-key, --tls-server-name, --insecure, --user,
// --password, --timeout-ms and --resp2 to `app`, storing into `args` (which must outlive the
// parse). `timeout_help` describes what --timeout-ms bounds in this subcommand.
void add_redis_connection_options(CLI::App& app, RedisConnectionArguments& args,
                                  const std::string& timeout_help);

// The ClientConfig the options describe, with `timeout` as connect and command timeout
// (when args.timeout_ms is 0). An error is a usage problem (a bad URL, TLS options without
// rediss://), already phrased for the user and free of the password.
redis::Result<redis::ClientConfig> make_client_config(const RedisConnectionArguments& args,
                                                      std::chrono::milliseconds timeout);

// "connection", "timeout", "auth", "tls", ... : the <kind> of an error message.
std::string_view error_kind(const std::error_code& code);

// The exit status for a failed call: 3, 4, 5 or 1 (see the top of this file).
int exit_code_for(const redis::Error& error);

// Prints "tiercache <subcommand>: error: <kind>: <message>" on one line to stderr, with
// `password` masked if it appears; returns exit_code_for(error).
int report_failure(std::string_view subcommand, const redis::Error& error,
                   std::string_view password);

Subcommand add_redis_command(CLI::App& program);

}  // namespace tiercache::cli
