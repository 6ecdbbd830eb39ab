// Typed views of every weight the forward pass reads, and the expert slice: the unit of placement.
// All views point into the checkpoint's mmaps; nothing here owns or copies weight bytes.
#pragma once
#include <cstdint>
#include <vector>

#include "src/model/config.h"
#include "src/model/tensor_view.h"

namespace ossrun {

struct LayerWeights {
  TensorView input_norm;           // (H) bf16
  TensorView q_weight, q_bias;     // (n_heads*head_dim, H), (n_heads*head_dim) bf16
  TensorView k_weight, k_bias;     // (n_kv*head_dim, H), (n_kv*head_dim) bf16
  TensorView v_weight, v_bias;     // (n_kv*head_dim, H), (n_kv*head_dim) bf16
  TensorView o_weight, o_bias;     // (H, n_heads*head_dim), (H) bf16
  TensorView sinks;                // (n_heads) bf16
  TensorView post_attention_norm;  // (H) bf16
  TensorView router_weight;        // (E, H) bf16
  TensorView router_bias;          // (E) bf16
  // MXFP4 experts (config.expert_format == MXFP4); empty otherwise.
  TensorView gate_up_blocks;  // (E, 2I, H/32, 16) u8; row 2j is gate j, row 2j+1 is up j
  TensorView gate_up_scales;  // (E, 2I, H/32) u8, E8M0 (bias 127)
  TensorView down_blocks;     // (E, H, I/32, 16) u8
  TensorView down_scales;     // (E, H, I/32) u8
  // BF16 experts (config.expert_format == BF16), transformers' transposed layout; empty otherwise.
  TensorView gate_up_weight;  // (E, H, 2I) bf16; column 2j is gate j, 2j+1 is up j
  TensorView down_weight;     // (E, I, H) bf16
  // Both formats.
  TensorView gate_up_bias;  // (E, 2I) bf16
  TensorView down_bias;     // (E, H) bf16
};

struct ModelWeights {
  TensorView embed;       // (V, H) bf16
  std::vector<LayerWeights> layers;
  TensorView final_norm;  // (H) bf16
  TensorView lm_head;     // (V, H) bf16; the embedding when tie_word_embeddings
};

// One expert of one layer: contiguous byte ranges in the checkpoint, because the expert index is the
// outermost dimension of every fused expert tensor. This is what the offload code moves and caches.
struct ExpertSlice {
  int layer = 0;
  int expert = 0;
  ExpertFormat format = ExpertFormat::MXFP4;
  TensorView gate_up_blocks;  // MXFP4: (2I, H/32, 16) u8
  TensorView gate_up_scales;  // MXFP4: (2I, H/32) u8
  TensorView down_blocks;     // MXFP4: (H, I/32, 16) u8
  TensorView down_scales;     // MXFP4: (H, I/32) u8
  TensorView gate_up_weight;  // BF16: (H, 2I) bf16
  TensorView down_weight;     // BF16: (I, H) bf16
  TensorView gate_up_bias;    // (2I) bf16
  TensorView down_bias;       // (H) bf16

  // Bytes of all the views together.
  uint64_t nbytes() const;
};

// Throws std::out_of_range when layer or expert is outside the model.
ExpertSlice expert_slice(const ModelWeights& w, const ModelConfig& c, int layer, int expert);

}  // namespace ossrun
