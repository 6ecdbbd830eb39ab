#include "offload/model_shapes.h"

#include <string>

#include "src/model/error.h"

namespace ossrun::offload {
namespace {

// Everything the two models share (gpt-oss.md §1.1); the caller sets layers and experts.
ModelConfig gpt_oss_common(int64_t layers, int64_t experts) {
  ModelConfig c;
  c.hidden_size = 2880;
  c.intermediate_size = 2880;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 64;
  c.num_key_value_heads = 8;
  c.head_dim = 64;
  c.num_local_experts = experts;
  c.num_experts_per_tok = 4;
  c.vocab_size = 201088;
  c.sliding_window = 128;
  c.max_position_embeddings = 131072;
  c.rope.truncate = false;
  c.expert_format = ExpertFormat::MXFP4;
  c.eos_token_ids = {200002};
  c.pad_token_id = 199999;
  for (int64_t i = 0; i < layers; ++i)
    c.layer_types.push_back(i % 2 == 0 ? LayerType::SlidingAttention : LayerType::FullAttention);
  return c;
}

}  // namespace

ModelConfig gpt_oss_20b_config() { return gpt_oss_common(24, 32); }
ModelConfig gpt_oss_120b_config() { return gpt_oss_common(36, 128); }

ModelConfig model_shape(std::string_view name) {
  if (name == "20b" || name == "gpt-oss-20b") return gpt_oss_20b_config();
  if (name == "120b" || name == "gpt-oss-120b") return gpt_oss_120b_config();
  throw InputError("unknown model shape \"" + std::string(name) + "\"; known shapes: 20b, 120b");
}

}  // namespace ossrun::offload
