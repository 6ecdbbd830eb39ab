// Each subcommand of the ossrun binary lives in its own file and registers itself on the app here.
// A command's callback throws ossrun::InputError for bad input (files, flags, requests); main() turns that into
// a message and an exit code (exit_codes.h).
#pragma once
#include <CLI/CLI.hpp>

namespace ossrun::cli {

void add_inspect_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_stats_command(CLI::App& app);

}  // namespace ossrun::cli
