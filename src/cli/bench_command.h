// `ossrun bench NAME`: one benchmark per sub-subcommand, each in its own bench_NAME.cpp that registers itself
// on the bench command here.
#pragma once
#include <CLI/CLI.hpp>

namespace ossrun::cli {

void add_bench_tokenizer(CLI::App& bench);
void add_bench_memory(CLI::App& bench);
void add_bench_kernels(CLI::App& bench);
void add_bench_gpu(CLI::App& bench);
void add_bench_decode(CLI::App& bench);
void add_bench_hybrid(CLI::App& bench);
void add_bench_hybrid_experts(CLI::App& bench);

}  // namespace ossrun::cli
