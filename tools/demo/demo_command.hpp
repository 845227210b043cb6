// `tiercache demo`: the user service of the seed scenario end to end -- SQLite as the system
// of record, a private (or given) Redis, several pod processes each with its own Cache<User>
// -- through phases that show what the cache is for, with a live progress line, a final table
// and, with --report, metrics.prom, timeline.csv and report.html. See the header of
// demo_command.cpp.

#pragma once

#include "command.hpp"

namespace tiercache::cli {

Subcommand add_demo_command(CLI::App& program);

}  // namespace tiercache::cli
