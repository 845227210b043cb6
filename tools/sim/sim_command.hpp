// `tiercache sim`: replays a trace file or a synthetic Zipf trace through LocalCache, the
// MutexLru baseline or Belady's optimal, and prints hit ratios -- or, with --threads,
// read throughput. See the help text in sim_command.cpp and replay.hpp.

#pragma once

#include "command.hpp"

namespace tiercache::cli {

Subcommand add_sim_command(CLI::App& program);

}  // namespace tiercache::cli
