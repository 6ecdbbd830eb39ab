// Every tensor a gpt-oss checkpoint must hold, with dtype and shape derived from the config
// (gpt-oss.md §2.1). Validation, the synthetic checkpoint writer and `inspect` all read this one table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/model/config.h"
#include "src/model/dtype.h"

namespace ossrun {

enum class Component : uint8_t { Embedding, Attention, Norms, Router, Experts, LmHead };
const char* component_name(Component c);

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // safetensors order
  Component component;
  int layer;       // -1 for tensors outside the layers
  int64_t params;  // model parameters it holds (MXFP4 blocks: 2 per byte; scales: none)

  int64_t numel() const;
  uint64_t nbytes() const;
};

// The tensors of a checkpoint with this config, in layer order. Experts follow config.expert_format.
// A tied checkpoint (tie_word_embeddings) has no lm_head.weight.
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

// "model.layers.{layer}.{suffix}"
std::string layer_tensor_name(int layer, const std::string& suffix);

}  // namespace ossrun
