// The model configuration, read from a checkpoint's config.json and validated.
// Every shape in ossrun derives from this struct; nothing is hard-coded to gpt-oss-20b.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ossrun {

enum class LayerType : uint8_t { SlidingAttention, FullAttention };

// How the expert weights are stored in the checkpoint.
enum class ExpertFormat : uint8_t {
  MXFP4,  // gate_up_proj_blocks/_scales [E, 2I, H/32, 16]/[E, 2I, H/32] (rows = output features)
  BF16,   // transformers' dense layout, transposed: gate_up_proj [E, H, 2I], down_proj [E, I, H]
};

// YaRN rotary embedding parameters (gpt-oss.md §5.3).
struct RopeConfig {
  double theta = 150000.0;
  double factor = 32.0;      // YaRN scaling factor s
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  int64_t original_max_position_embeddings = 4096;
  bool truncate = false;     // gpt-oss publishes false: the correction range is not rounded
  bool yarn = true;          // rope_type "yarn"; false means plain RoPE with theta
};

struct ModelConfig {
  int64_t hidden_size = 0;            // H
  int64_t intermediate_size = 0;      // I, per expert
  int64_t num_hidden_layers = 0;      // L
  int64_t num_attention_heads = 0;    // query heads
  int64_t num_key_value_heads = 0;    // KV heads (GQA)
  int64_t head_dim = 0;
  int64_t num_local_experts = 0;      // E
  int64_t num_experts_per_tok = 0;    // k
  int64_t vocab_size = 0;
  int64_t sliding_window = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double swiglu_limit = 7.0;
  double swiglu_alpha = 1.702;
  bool tie_word_embeddings = false;
  std::vector<LayerType> layer_types;  // one per layer
  RopeConfig rope;
  ExpertFormat expert_format = ExpertFormat::MXFP4;  // from quantization_config
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
};

// Parses and validates a config.json document. `source` names the file in error messages.
// Accepts both spellings of the RoPE settings: `rope_scaling` + top-level `rope_theta` (published files) and
// `rope_parameters` (transformers 5). Throws InputError naming the field and what is wrong.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);
ModelConfig load_model_config(const std::filesystem::path& config_json);

// The config.json document for `c`, in the published form (rope_scaling + rope_theta, quantization_config
// for MXFP4 experts). parse_model_config(model_config_to_json(c)) == c.
nlohmann::json model_config_to_json(const ModelConfig& c);

const char* layer_type_name(LayerType t);      // "sliding_attention" / "full_attention"
const char* expert_format_name(ExpertFormat f);  // "mxfp4" / "bf16"

}  // namespace ossrun
