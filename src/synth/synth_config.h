// The model configuration of a synthetic checkpoint: a preset (tiny, gpt-oss-20b, gpt-oss-120b), reshaped by
// overrides, validated by parse_model_config, and the config.json / generation_config.json documents to write.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/model/config.h"

namespace ossrun::synth {

// "tiny" (gpt-oss.md §11's shape: 3 layers, hidden 256, 8 experts, vocabulary 1000; about 5 MB), "gpt-oss-20b",
// "gpt-oss-120b" (§1).
std::vector<std::string> synth_preset_names();
// Throws InputError naming the presets for an unknown name.
ModelConfig synth_preset(const std::string& name);

struct SynthConfigRequest {
  std::string preset = "tiny";
  // config.json fields set by flags, in order (e.g. {"num_hidden_layers", 4}); a top-level key each.
  std::vector<std::pair<std::string, nlohmann::json>> fields;
  std::optional<ExpertFormat> expert_format;
  // JSON objects merged over the result (RFC 7386 merge patch), then "key=value" assignments: the key may be
  // dotted for nested objects ("rope_scaling.factor=16"), the value is JSON or else taken as a string.
  std::vector<std::filesystem::path> config_json_files;
  std::vector<std::string> sets;
};

struct SynthConfig {
  ModelConfig config;
  nlohmann::json document;  // the config.json to write: the preset's published form with the overrides
};

// Applies the request in the order above. Fields the request does not name are kept consistent with the ones it
// does: layer_types alternates over the final layer count, experts_per_token follows num_experts_per_tok (and
// back), and the preset's eos/pad token ids are dropped when they do not fit the vocabulary.
// Throws InputError naming what is wrong (unknown preset, unreadable file, malformed --set, invalid config).
SynthConfig resolve_synth_config(const SynthConfigRequest& request);

// "4800000000", "4.8GB", "100MB", "64KiB", "1GiB": a byte count with an optional decimal (kB, MB, GB, TB) or
// binary (KiB, MiB, GiB, TiB) unit, at least 1. Throws InputError naming `what` otherwise.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

// generation_config.json (gpt-oss.md §8.4): bos 199998, eos [200002, 199999, 200012], pad 199999, keeping only
// ids inside the vocabulary.
nlohmann::json generation_config_json(const ModelConfig& c);

}  // namespace ossrun::synth
