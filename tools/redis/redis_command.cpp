// `tiercache redis`: one command through tiercache's Redis client, printed like redis-cli.
//
//   tiercache redis [--url URL] [--tls-ca F] [--tls-cert F] [--tls-key F]
//                   [--tls-server-name N] [--insecure] [--user U --password P]
//                   [--timeout-ms N] [--resp2] COMMAND [ARG...]
//
// The options come first: from COMMAND on, every word (even one starting with '-') is an
// argument of the Redis command, as with redis-cli.
//
// Output: the reply rendered by format_reply (redis-cli's TTY format) and a newline on stdout;
// an error reply prints "(error) ..." and still exits 0, since the command did run. For the
// commands whose bulk-string reply redis-cli prints raw (INFO, CLIENT LIST, ...), the string
// is printed as is. A failure to get any reply prints one line on stderr,
// "tiercache redis: error: <kind>: <message>", and exits 3 (connection, timeout), 4 (auth),
// 5 (TLS) or 1; a usage error exits 2.
//
// --timeout-ms bounds the whole run: connecting (TCP, TLS, HELLO) and the command together.
// The client retries a refused connection with backoff until then, so an unreachable server
// fails at the deadline, not at once.

#include "redis/redis_command.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tiercache/redis/client.hpp"
#include "tiercache/redis/command.hpp"
#include "tiercache/redis/reply.hpp"

namespace tiercache::cli {
namespace {

constexpr const char* kName = "redis";
// The default of --timeout-ms for `tiercache redis`: connecting and the command together.
constexpr std::chrono::milliseconds kDefaultRunTimeout{5000};
// Bounds of --timeout-ms.
constexpr int kMaxTimeoutMs = 24 * 3600 * 1000;
// The name the CLI's connections get (CLIENT LIST shows it).
constexpr const char* kClientName = "tiercache-cli";
// Where --password is read from when it is not on the command line.
constexpr const char* kPasswordEnvironmentVariable = "TIERCACHE_REDIS_PASSWORD";

struct RedisArguments {
  RedisConnectionArguments connection;
  std::vector<std::string> words;  // the Redis command and its arguments
};

bool iequals(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// The commands whose reply redis-cli prints raw rather than quoted, even in its TTY format
// (redis-cli.c, cliSendCommand, `output_raw`): their replies are texts meant for people.
bool redis_cli_prints_raw(const std::vector<std::string>& words) {
  const std::size_t argc = words.size();
  const std::string_view command = words.front();
  const std::string_view sub = argc >= 2 ? std::string_view(words[1]) : std::string_view();
  if (iequals(command, "info") || iequals(command, "lolwut")) return true;
  if (argc >= 2 && iequals(command, "debug")) {
    return iequals(sub, "htstats") || iequals(sub, "htstats-key") ||
           iequals(sub, "client-eviction");
  }
  if (argc >= 2 && iequals(command, "memory")) {
    return iequals(sub, "malloc-stats") || iequals(sub, "doctor");
  }
  if (argc == 2 && iequals(command, "cluster"))
    return iequals(sub, "nodes") || iequals(sub, "info");
  if (argc >= 2 && iequals(command, "client")) return iequals(sub, "list") || iequals(sub, "info");
  if (argc == 3 && iequals(command, "latency")) return iequals(sub, "graph");
  if (argc == 2 && iequals(command, "latency")) return iequals(sub, "doctor");
  return false;
}

// `text` with every occurrence of `secret` replaced by "***".
std::string mask(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + 3)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

int run_redis(const RedisArguments& args) {
  // The deadline of the whole run starts before the client starts connecting.
  const auto start = std::chrono::steady_clock::now();
  if (args.words.empty()) return usage_error(kName, "no command given (e.g. tiercache redis PING)");

  redis::Result<redis::ClientConfig> config =
      make_client_config(args.connection, kDefaultRunTimeout);
  if (!config.ok()) return usage_error(kName, config.error().message);
  const std::string password = config->password;
  const std::chrono::milliseconds timeout = config->command_timeout;

  redis::Request request;
  request.push_range(args.words.front(), std::span(args.words).subspan(1));

  redis::Result<redis::Reply> reply = [&] {
    redis::Client client(std::move(config).value());
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    const auto left = std::max(timeout - elapsed, std::chrono::milliseconds(1));
    return client.exec_one(request, redis::CallOptions{left});
  }();

  if (!reply.ok()) {
    const redis::Error& error = reply.error();
    if (error.code != redis::Errc::kServerError) return report_failure(kName, error, password);
    // Redis ran the command and said no: that is the command's output, as with redis-cli.
    const std::string text = "(error) " + error.message + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  if (reply->is_string() && redis_cli_prints_raw(args.words)) {
    std::fwrite(reply->string.data(), 1, reply->string.size(), stdout);
    return kExitOk;
  }
  const std::string text = redis::format_reply(*reply) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

std::string check_timeout(const std::string& text) {
  return check_integer(text, 1, kMaxTimeoutMs, "the timeout (milliseconds)");
}

}  // namespace

void add_redis_connection_options(CLI::App& app, RedisConnectionArguments& args,
                                  const std::string& timeout_help) {
  app.add_option("--url", args.url,
                 "redis://[[user][:password]@]host[:port][/db][?option=value...], or rediss:// "
                 "for TLS (see parse_url in tiercache/redis/config.hpp)")
      ->capture_default_str();
  app.add_option("--tls-ca", args.tls_ca, "PEM file of the CA certificates to trust (rediss://)")
      ->type_name("FILE");
  app.add_option("--tls-cert", args.tls_cert, "PEM client certificate, for mutual TLS")
      ->type_name("FILE");
  app.add_option("--tls-key", args.tls_key, "PEM private key of --tls-cert")->type_name("FILE");
  app.add_option("--tls-server-name", args.tls_server_name,
                 "Name sent as SNI and checked against the server certificate (default: the "
                 "URL's host)")
      ->type_name("NAME");
  app.add_flag("--insecure", args.insecure,
               "Do not verify the server certificate (throw-away test servers only)");
  CLI::Option* user =
      app.add_option("--user", args.user, "ACL user name (default: the URL's, else 'default')")
          ->type_name("U");
  CLI::Option* password =
      app.add_option("--password", args.password,
                     "Password; other local users can read it in the process list, so prefer "
                     "the environment variable")
          ->type_name("P")
          ->envname(kPasswordEnvironmentVariable);
  user->needs(password);
  app.add_option("--timeout-ms", args.timeout_ms, timeout_help)
      ->type_name("N")
      ->check(validator([](std::string& text) { return check_timeout(text); }, "MS"));
  app.add_flag("--resp2", args.resp2,
               "Speak RESP2 (AUTH + CLIENT SETNAME) instead of RESP3 (HELLO 3)");
}

redis::Result<redis::ClientConfig> make_client_config(const RedisConnectionArguments& args,
                                                      std::chrono::milliseconds timeout) {
  redis::ClientConfig base;
  base.client_name = kClientName;
  base.username = args.user;
  base.password = args.password;
  if (args.resp2) base.protocol = redis::Protocol::kResp2;
  if (args.timeout_ms > 0) timeout = std::chrono::milliseconds(args.timeout_ms);
  base.connect_timeout = timeout;
  base.command_timeout = timeout;
  base.tls.ca_file = args.tls_ca;
  base.tls.cert_file = args.tls_cert;
  base.tls.key_file = args.tls_key;
  base.tls.server_name = args.tls_server_name;
  base.tls.verify_peer = !args.insecure;

  redis::Result<redis::ClientConfig> config = redis::parse_url(args.url, std::move(base));
  if (!config.ok()) {
    return redis::make_error(redis::Errc::kInvalidArgument,
                             "--url " + redis::redact_url(args.url) + ": " +
                                 mask(config.error().message, args.password));
  }
  const bool tls_options = !args.tls_ca.empty() || !args.tls_cert.empty() ||
                           !args.tls_key.empty() || !args.tls_server_name.empty() || args.insecure;
  if (tls_options && !config->use_tls) {
    return redis::make_error(
        redis::Errc::kInvalidArgument,
        "--tls-* and --insecure need a rediss:// URL, not " + redis::redact_url(args.url));
  }
  if (args.tls_cert.empty() != args.tls_key.empty()) {
    return redis::make_error(redis::Errc::kInvalidArgument, "--tls-cert and --tls-key go together");
  }
  return config;
}

std::string_view error_kind(const std::error_code& code) {
  if (code.category() != redis::redis_category()) return "error";
  switch (static_cast<redis::Errc>(code.value())) {
    case redis::Errc::kConnection:
      return "connection";
    case redis::Errc::kTimeout:
      return "timeout";
    case redis::Errc::kProtocol:
      return "protocol";
    case redis::Errc::kServerError:
      return "server";
    case redis::Errc::kAuth:
      return "auth";
    case redis::Errc::kTls:
      return "tls";
    case redis::Errc::kQueueFull:
      return "queue-full";
    case redis::Errc::kClosed:
      return "closed";
    case redis::Errc::kInvalidArgument:
      return "invalid-argument";
  }
  return "error";
}

int exit_code_for(const redis::Error& error) {
  if (error.code == redis::Errc::kConnection || error.code == redis::Errc::kTimeout) {
    return kExitConnection;
  }
  if (error.code == redis::Errc::kAuth) return kExitAuth;
  if (error.code == redis::Errc::kTls) return kExitTls;
  if (error.code == redis::Errc::kInvalidArgument) return kExitUsage;
  return kExitFailure;
}

int report_failure(std::string_view subcommand, const redis::Error& error,
                   std::string_view password) {
  std::string message =
      mask(error.message.empty() ? error.code.message() : error.message, password);
  std::replace(message.begin(), message.end(), '\n', ' ');  // one line
  const std::string_view kind = error_kind(error.code);
  std::fprintf(stderr, "tiercache %.*s: error: %.*s: %s\n", static_cast<int>(subcommand.size()),
               subcommand.data(), static_cast<int>(kind.size()), kind.data(), message.c_str());
  return exit_code_for(error);
}

Subcommand add_redis_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      kName, "Run one Redis command through tiercache's client; print the reply like redis-cli");
  app->footer(
      "Usage: tiercache redis [OPTIONS] COMMAND [ARG...]\n"
      "The options come before COMMAND; every word after it is an argument of the command.\n"
      "Prints the reply like `redis-cli -3` (with --resp2: like `redis-cli`); an error reply\n"
      "prints '(error) ...' and exits 0.\n"
      "Examples:\n"
      "  tiercache redis SET greeting hello\n"
      "  tiercache redis --url redis://127.0.0.1:6380/2 LRANGE list 0 -1\n"
      "  tiercache redis --url rediss://cache.internal:6380 --tls-ca ca.pem PING\n"
      "Exit status: 0 a reply, 2 usage, 3 connection or timeout, 4 auth, 5 TLS, 1 other.");
  // Everything from the first word that is not an option is the Redis command.
  app->prefix_command();
  auto args = std::make_shared<RedisArguments>();
  add_redis_connection_options(*app, args->connection,
                               "Deadline of the whole run, connecting included (default " +
                                   std::to_string(kDefaultRunTimeout.count()) + ")");
  return Subcommand{app, [args, app] {
                      args->words = app->remaining();
                      return run_redis(*args);
                    }};
}

}  // namespace tiercache::cli
