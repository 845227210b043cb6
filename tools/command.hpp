// How the `tiercache` program is put together: main.cpp owns the top-level CLI11 parser and
// asks each subcommand (one directory each: sim/, later redis/, stampede/, demo/...) to
// register itself; after parsing, it runs the one the user chose.
//
// A subcommand's add_*_command(CLI::App& program) adds its CLI::App with its options and
// returns a Subcommand whose run() is called only when that subcommand was parsed without
// error. run() prints human-readable lines ('#'-prefixed when on stdout), then
// machine-readable `key=value` lines, and returns the process exit code.

#pragma once

#include <cstdio>
#include <functional>
#include <string_view>

namespace CLI {
class App;
}

namespace tiercache::cli {

// Process exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // an unexpected failure at run time
inline constexpr int kExitUsage = 2;    // a bad command line or bad input (file, trace, spec)

struct Subcommand {
  CLI::App* app = nullptr;   // owned by the program's CLI::App
  std::function<int()> run;  // called after a successful parse that selected `app`
};

// Prints "tiercache <subcommand>: error: <message>" to stderr; returns kExitUsage.
inline int usage_error(std::string_view subcommand, std::string_view message) {
  std::fprintf(stderr, "tiercache %.*s: error: %.*s\n", static_cast<int>(subcommand.size()),
               subcommand.data(), static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

}  // namespace tiercache::cli
