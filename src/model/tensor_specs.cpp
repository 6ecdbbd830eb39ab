#include "src/model/tensor_specs.h"

namespace ossrun {

const char* component_name(Component c) {
  switch (c) {
    case Component::Embedding: return "embedding";
    case Component::Attention: return "attention";
    case Component::Norms: return "norms";
    case Component::Router: return "router";
    case Component::Experts: return "experts";
    case Component::LmHead: return "lm_head";
  }
  return "?";
}

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t TensorSpec::nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }

std::string layer_tensor_name(int layer, const std::string& suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

std::vector<TensorSpec> expected_tensors(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, E = c.num_local_experts, V = c.vocab_size;
  std::vector<TensorSpec> out;
  auto add = [&](std::string name, DType dt, std::vector<int64_t> shape, Component comp, int layer) {
    TensorSpec s{std::move(name), dt, std::move(shape), comp, layer, 0};
    s.params = s.numel();
    out.push_back(std::move(s));
    return &out.back();
  };
  add("model.embed_tokens.weight", DType::BF16, {V, H}, Component::Embedding, -1);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto n = [&](const char* suffix) { return layer_tensor_name(l, suffix); };
    add(n("input_layernorm.weight"), DType::BF16, {H}, Component::Norms, l);
    add(n("self_attn.q_proj.weight"), DType::BF16, {c.q_dim(), H}, Component::Attention, l);
    add(n("self_attn.q_proj.bias"), DType::BF16, {c.q_dim()}, Component::Attention, l);
    add(n("self_attn.k_proj.weight"), DType::BF16, {c.kv_dim(), H}, Component::Attention, l);
    add(n("self_attn.k_proj.bias"), DType::BF16, {c.kv_dim()}, Component::Attention, l);
    add(n("self_attn.v_proj.weight"), DType::BF16, {c.kv_dim(), H}, Component::Attention, l);
    add(n("self_attn.v_proj.bias"), DType::BF16, {c.kv_dim()}, Component::Attention, l);
    add(n("self_attn.o_proj.weight"), DType::BF16, {H, c.q_dim()}, Component::Attention, l);
    add(n("self_attn.o_proj.bias"), DType::BF16, {H}, Component::Attention, l);
    add(n("self_attn.sinks"), DType::BF16, {c.num_attention_heads}, Component::Attention, l);
    add(n("post_attention_layernorm.weight"), DType::BF16, {H}, Component::Norms, l);
    add(n("mlp.router.weight"), DType::BF16, {E, H}, Component::Router, l);
    add(n("mlp.router.bias"), DType::BF16, {E}, Component::Router, l);
    if (c.expert_format == ExpertFormat::MXFP4) {
      // Rows are output features; each row is H/32 (or I/32) blocks of 16 bytes = 32 E2M1 values.
      add(n("mlp.experts.gate_up_proj_blocks"), DType::U8, {E, 2 * I, H / 32, 16}, Component::Experts, l)->params *= 2;
      add(n("mlp.experts.gate_up_proj_scales"), DType::U8, {E, 2 * I, H / 32}, Component::Experts, l)->params = 0;
      add(n("mlp.experts.gate_up_proj_bias"), DType::BF16, {E, 2 * I}, Component::Experts, l);
      add(n("mlp.experts.down_proj_blocks"), DType::U8, {E, H, I / 32, 16}, Component::Experts, l)->params *= 2;
      add(n("mlp.experts.down_proj_scales"), DType::U8, {E, H, I / 32}, Component::Experts, l)->params = 0;
      add(n("mlp.experts.down_proj_bias"), DType::BF16, {E, H}, Component::Experts, l);
    } else {
      // transformers' dense layout is transposed: [E, in, out].
      add(n("mlp.experts.gate_up_proj"), DType::BF16, {E, H, 2 * I}, Component::Experts, l);
      add(n("mlp.experts.gate_up_proj_bias"), DType::BF16, {E, 2 * I}, Component::Experts, l);
      add(n("mlp.experts.down_proj"), DType::BF16, {E, I, H}, Component::Experts, l);
      add(n("mlp.experts.down_proj_bias"), DType::BF16, {E, H}, Component::Experts, l);
    }
  }
  add("model.norm.weight", DType::BF16, {H}, Component::Norms, -1);
  if (!c.tie_word_embeddings) add("lm_head.weight", DType::BF16, {V, H}, Component::LmHead, -1);
  return out;
}

}  // namespace ossrun
