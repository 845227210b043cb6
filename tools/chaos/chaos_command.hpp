// `tiercache chaos`: mixed load under random faults, checked by an oracle (coordinator.hpp),
// and `tiercache chaos-worker`, the hidden subcommand its worker processes run (worker.hpp).

#pragma once

#include "command.hpp"

namespace tiercache::cli {

Subcommand add_chaos_command(CLI::App& program);
Subcommand add_chaos_worker_command(CLI::App& program);

}  // namespace tiercache::cli
