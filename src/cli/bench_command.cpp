// `ossrun bench`: benchmarks (not tests). Each prints what it achieved beside a ceiling or a reference measured
// in the same run.
#include "src/cli/bench_command.h"
#include "src/cli/commands.h"

namespace ossrun::cli {

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: measured throughput beside a ceiling measured in the same run");
  bench->require_subcommand(1);
  bench->footer("Examples:\n  ossrun bench memory\n  ossrun bench decode --model ~/models/gpt-oss-20b --tokens 16\n"
                "  ossrun bench kernels --isa avx2");
  add_bench_tokenizer(*bench);
  add_bench_memory(*bench);
  add_bench_kernels(*bench);
  add_bench_gpu(*bench);
  add_bench_decode(*bench);
  add_bench_hybrid(*bench);
  add_bench_hybrid_experts(*bench);
}

}  // namespace ossrun::cli
