// `ossrun synth OUT_DIR`: write a synthetic gpt-oss checkpoint (any shape, Hugging Face layout) to test and
// benchmark with, since real weights cannot be downloaded everywhere.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/model/error.h"
#include "src/synth/checkpoint_writer.h"
#include "src/synth/routing_skew.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/special_tokens.h"

namespace ossrun::cli {
namespace {

struct SynthArgs {
  std::string dir;
  std::string preset = "tiny";
  std::string expert_format;
  std::vector<std::string> config_json;
  std::vector<std::string> sets;
  uint64_t seed = 0;
  double routing_skew = synth::SynthOptions{}.routing_skew;
  std::string routing_skew_text;
  bool sparse_experts = false;
  std::string shard_size = std::to_string(synth::kDefaultMaxShardBytes);
  int threads = 0;
  bool force = false;
  bool no_tokenizer = false;
  std::string tiktoken;
  double rope_theta = 0;
};

// Integer flags that set config.json fields (a flag may set two spellings of the same field).
struct IntField {
  const char* flag;
  std::vector<const char*> keys;
  const char* help;
};
const std::vector<IntField>& int_fields() {
  static const std::vector<IntField> fields = {
      {"--layers", {"num_hidden_layers"}, "Number of layers (e.g. cut a preset down)"},
      {"--hidden-size", {"hidden_size"}, "Hidden size H"},
      {"--intermediate-size", {"intermediate_size"}, "Per-expert intermediate size I"},
      {"--experts", {"num_local_experts"}, "Experts per layer E"},
      {"--experts-per-tok", {"num_experts_per_tok", "experts_per_token"}, "Experts per token (top-k)"},
      {"--heads", {"num_attention_heads"}, "Query heads"},
      {"--kv-heads", {"num_key_value_heads"}, "Key/value heads"},
      {"--head-dim", {"head_dim"}, "Head dimension"},
      {"--vocab-size", {"vocab_size"}, "Vocabulary size"},
      {"--sliding-window", {"sliding_window"}, "Sliding window of the even layers"},
      {"--max-position-embeddings", {"max_position_embeddings"}, "Maximum context"},
  };
  return fields;
}

std::string with_commas(uint64_t n) {
  std::string digits = std::to_string(n), s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a synthetic gpt-oss checkpoint (Hugging Face layout) for tests and benchmarks");
  auto args = std::make_shared<SynthArgs>();
  auto ints = std::make_shared<std::vector<int64_t>>(int_fields().size(), 0);
  cmd->add_option("out_dir", args->dir, "Directory to write (created; must be empty unless --force)")->required();
  std::string preset_help = "Model shape to start from:";
  for (const std::string& p : synth::synth_preset_names()) preset_help += " " + p;
  cmd->add_option("--preset", args->preset, preset_help + " (default tiny)");
  std::vector<CLI::Option*> int_options;
  for (size_t i = 0; i < int_fields().size(); ++i)
    int_options.push_back(cmd->add_option(int_fields()[i].flag, (*ints)[i], int_fields()[i].help));
  auto* theta = cmd->add_option("--rope-theta", args->rope_theta, "RoPE base theta");
  cmd->add_option("--expert-format", args->expert_format, "mxfp4 (default) or bf16 (transformers' dense [E, in, out] layout)")
      ->check(CLI::IsMember({"mxfp4", "bf16"}));
  cmd->add_option("--config-json", args->config_json, "JSON object of config.json fields merged over the preset (repeatable)");
  cmd->add_option("--set", args->sets, "key=value for any config.json field, dotted for nested ones (repeatable)");
  cmd->add_option("--seed", args->seed, "Random seed; the same seed gives the same bytes (default 0)");
  cmd->add_option("--routing-skew", args->routing_skew,
                  "Zipf exponent of expert popularity (0 to 6), a different ranking per layer; 0 = uniform (default 0.5)")
      ->each([args](const std::string& text) { args->routing_skew_text = text; });
  cmd->add_flag("--sparse-experts", args->sparse_experts, "Leave the expert weights as holes in sparse files (reads as zeros)");
  cmd->add_option("--shard-size", args->shard_size, "Largest shard before the next starts, e.g. 4.8GB (default) or 2MB");
  cmd->add_option("--threads", args->threads, "Writer threads (default: two per hardware thread)");
  cmd->add_option("--tiktoken", args->tiktoken, "o200k_base rank file tokenizer.json is made from (default: the one tools/setup.sh installs)");
  cmd->add_flag("--no-tokenizer", args->no_tokenizer, "Write no tokenizer files");
  cmd->add_flag("--force", args->force, "Replace the checkpoint files of a non-empty directory");
  cmd->footer("Examples:\n  ossrun synth /tmp/tiny\n  ossrun synth --preset gpt-oss-20b /data/oss20b-synth\n"
              "  ossrun synth --preset gpt-oss-120b --sparse-experts /tmp/oss120b-shape\n"
              "  ossrun synth --preset gpt-oss-20b --layers 2 --routing-skew 1 --shard-size 100MB /tmp/oss20b-2l");

  cmd->callback([args, ints, int_options, theta] {
    synth::SynthConfigRequest request;
    request.preset = args->preset;
    for (size_t i = 0; i < int_options.size(); ++i)
      if (int_options[i]->count())
        for (const char* key : int_fields()[i].keys) request.fields.emplace_back(key, (*ints)[i]);
    if (theta->count()) request.fields.emplace_back("rope_theta", args->rope_theta);
    if (!args->expert_format.empty())
      request.expert_format = args->expert_format == "bf16" ? ExpertFormat::BF16 : ExpertFormat::MXFP4;
    request.config_json_files.assign(args->config_json.begin(), args->config_json.end());
    request.sets = args->sets;
    const synth::SynthConfig config = synth::resolve_synth_config(request);

    synth::SynthOptions options;
    options.seed = args->seed;
    options.routing_skew = args->routing_skew;
    options.sparse_experts = args->sparse_experts;
    synth::WriteOptions write;
    write.max_shard_bytes = synth::parse_byte_size(args->shard_size, "--shard-size");
    write.threads = args->threads;
    write.overwrite = args->force;
    if (!args->no_tokenizer && config.config.vocab_size > harmony_token::kEndOfPrompt)
      write.tiktoken_file = args->tiktoken.empty() ? default_tiktoken_path() : std::filesystem::path(args->tiktoken);
    if (!(options.routing_skew >= 0 && options.routing_skew <= synth::kMaxRoutingSkew))
      throw InputError("--routing-skew must lie between 0 and " + std::to_string(int(synth::kMaxRoutingSkew)) + ", found " +
                       args->routing_skew_text);

    const synth::WriteReport r = synth::write_synthetic_checkpoint(args->dir, config, options, write);
    std::printf("wrote %s: %zu tensors in %zu shard(s), %s bytes", args->dir.c_str(), r.tensors, r.shards,
                with_commas(r.file_bytes).c_str());
    if (r.written_bytes != r.file_bytes) std::printf(" (sparse: %s bytes written)", with_commas(r.written_bytes).c_str());
    if (r.tokenizer) std::printf(", tokenizer.json (o200k_harmony)");
    std::printf("\n  %.2f s, %.0f MB/s written, %d thread(s), seed %llu, routing skew %g\n", r.seconds,
                double(r.written_bytes) / 1e6 / r.seconds, r.threads, static_cast<unsigned long long>(options.seed),
                options.routing_skew);
  });
}

}  // namespace ossrun::cli
