// `ossrun bench ...`: measurements of this machine and build, one subcommand per part.
#include "src/cli/commands.h"

namespace ossrun::cli {

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure kernels and the engine against this machine's ceilings");
  bench->require_subcommand(1);
  add_bench_memory(*bench);
  add_bench_kernels(*bench);
}

}  // namespace ossrun::cli
