// `ossrun bench ...`: benchmarks that print the achieved figures beside the ceiling measured in the same run.
#include "src/cli/commands.h"

namespace ossrun::cli {

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: achieved figures beside the measured ceiling");
  bench->require_subcommand(1);
  add_bench_decode(*bench);
}

}  // namespace ossrun::cli
