// How the `tiercache` program is put together: main.cpp owns the top-level CLI11 parser and
// asks each subcommand (one directory each: sim/, later redis/, stampede/, demo/...) to
// register itself; after parsing, it runs the one the user chose.
//
// A subcommand's add_*_command(CLI::App& program) adds its CLI::App with its options and
// returns a Subcommand whose run() is called only when that subcommand was parsed without
// error. run() prints human-readable lines ('#'-prefixed when on stdout), then
// machine-readable `key=value` lines, and returns the process exit code.

#pragma once

#include <charconv>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "quote.hpp"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace tiercache::cli {

// Process exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // an unexpected failure at run time
inline constexpr int kExitUsage = 2;    // a bad command line or bad input (file, trace, spec)

struct Subcommand {
  CLI::App* app = nullptr;   // owned by the program's CLI::App
  std::function<int()> run;  // called after a successful parse that selected `app`
};

// ---- option validation (CLI11 validators return "" or the message) --------------------------

// All of `text` as one T (decimal integer, or a floating-point number), else nullopt.
template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// "" if `text` is an integer in [low, high], else "'text': <what> must be an integer in [..]".
template <class T>
std::string check_integer(std::string_view text, T low, T high, std::string_view what) {
  const std::optional<T> value = parse_number<T>(text);
  if (value && *value >= low && *value <= high) return {};
  return single_quoted(text) + ": " + std::string(what) + " must be an integer in [" +
         std::to_string(low) + ", " + std::to_string(high) + "]";
}

// A CLI11 validator built from one of the checks above, e.g.
//   ->check(validator([](std::string& t) { return check_seconds(t, 60); }, "S"))
// (a template so that this header needs CLI11 only where it is used).
template <class Validator = CLI::Validator, class Check>
Validator validator(Check check, std::string name) {
  return Validator([check](std::string& text) { return check(text); }, "", std::move(name));
}

// A validator of an integer option in [low, high]; `what` names it in the message.
template <class T, class Validator = CLI::Validator>
Validator integer_in(T low, T high, std::string what, std::string name) {
  return validator<Validator>(
      [=](std::string& text) { return check_integer(text, low, high, what); }, std::move(name));
}

// "" if `text` is a number of seconds in (0, max_seconds], else the message.
inline std::string check_seconds(std::string_view text, double max_seconds) {
  const std::optional<double> value = parse_number<double>(text);
  if (value && *value > 0 && *value <= max_seconds) return {};
  return single_quoted(text) + ": the duration must be a number of seconds in (0, " +
         std::to_string(static_cast<int>(max_seconds)) + "], e.g. 5 or 0.5";
}

// Prints "tiercache <subcommand>: error: <message>" to stderr; returns kExitUsage.
inline int usage_error(std::string_view subcommand, std::string_view message) {
  std::fprintf(stderr, "tiercache %.*s: error: %.*s\n", static_cast<int>(subcommand.size()),
               subcommand.data(), static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

}  // namespace tiercache::cli
