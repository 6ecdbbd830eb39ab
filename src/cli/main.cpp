// The ossrun binary: one program, one subcommand per job.
#include <cstdio>
#include <exception>

#include "src/cli/commands.h"
#include "src/cli/exit_codes.h"
#include "src/model/error.h"

int main(int argc, char** argv) {
  CLI::App app{"ossrun: run gpt-oss-20b and gpt-oss-120b from their Hugging Face checkpoint directory,\n"
               "on GPUs smaller than the model (hot experts on the GPU, the rest on the CPU)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ossrun 0.1.0");
  ossrun::cli::add_inspect_command(app);
  ossrun::cli::add_synth_command(app);
  ossrun::cli::add_tokenize_command(app);
  ossrun::cli::add_bench_command(app);
  ossrun::cli::add_generate_command(app);
  ossrun::cli::add_chat_command(app);
  ossrun::cli::add_logits_command(app);
  ossrun::cli::add_perplexity_command(app);
  ossrun::cli::add_plan_command(app);
  ossrun::cli::add_simulate_command(app);
  ossrun::cli::add_stats_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? ossrun::cli::kExitOk : ossrun::cli::kExitUsage;
  } catch (const ossrun::InputError& e) {
    std::fprintf(stderr, "ossrun: error: %s\n", e.what());
    return ossrun::cli::kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ossrun: error: %s\n", e.what());
    return ossrun::cli::kExitFailure;
  }
  return ossrun::cli::kExitOk;
}
