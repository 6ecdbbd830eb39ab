// Synthetic checkpoint configs: presets, overrides (flags, --config-json, --set), generation_config, byte sizes.
#include <doctest/doctest.h>

#include "src/model/config.h"

using namespace ossrun;

TEST_CASE("model_config_to_json round-trips plain RoPE and a non-default swiglu_alpha") {
  ModelConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.num_local_experts = 4;
  c.num_experts_per_tok = 2;
  c.vocab_size = 100;
  c.sliding_window = 8;
  c.max_position_embeddings = 4096;
  c.layer_types = {LayerType::SlidingAttention, LayerType::FullAttention};
  c.rope.yarn = false;
  c.rope.theta = 10000;
  c.swiglu_alpha = 1.5;
  const ModelConfig back = parse_model_config(model_config_to_json(c), "test");
  CHECK(!back.rope.yarn);
  CHECK(back.rope.theta == 10000);
  CHECK(back.swiglu_alpha == 1.5);
  c.swiglu_alpha = 1.702;
  CHECK(!model_config_to_json(c).contains("swiglu_alpha"));  // the published form omits it
}
