// `tiercache stampede`: many processes x many callers asking for the same cold keys at the
// same moment, and how many database loads that costs -- with tiercache's Cache<V> (one load per
// key whatever the latency) or with the widely copied "L1 map + singleflight + SETNX lock" read
// path (naive_read_path.hpp), for comparison. See the header of stampede_command.cpp.

#pragma once

#include "command.hpp"

namespace tiercache::cli {

Subcommand add_stampede_command(CLI::App& program);

}  // namespace tiercache::cli
