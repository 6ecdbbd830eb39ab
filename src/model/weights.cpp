#include "src/model/weights.h"

#include <stdexcept>
#include <string>

namespace ossrun {

uint64_t ExpertSlice::nbytes() const {
  uint64_t n = 0;
  for (const TensorView* v : {&gate_up_blocks, &gate_up_scales, &down_blocks, &down_scales, &gate_up_weight,
                              &down_weight, &gate_up_bias, &down_bias})
    n += v->bytes.size();
  return n;
}

ExpertSlice expert_slice(const ModelWeights& w, const ModelConfig& c, int layer, int expert) {
  if (layer < 0 || layer >= static_cast<int>(w.layers.size()))
    throw std::out_of_range("layer " + std::to_string(layer) + " outside [0, " + std::to_string(w.layers.size()) + ")");
  if (expert < 0 || expert >= c.num_local_experts)
    throw std::out_of_range("expert " + std::to_string(expert) + " outside [0, " + std::to_string(c.num_local_experts) + ")");
  const LayerWeights& lw = w.layers[layer];
  ExpertSlice s;
  s.layer = layer;
  s.expert = expert;
  s.format = c.expert_format;
  if (c.expert_format == ExpertFormat::MXFP4) {
    s.gate_up_blocks = lw.gate_up_blocks.slice_outer(expert);
    s.gate_up_scales = lw.gate_up_scales.slice_outer(expert);
    s.down_blocks = lw.down_blocks.slice_outer(expert);
    s.down_scales = lw.down_scales.slice_outer(expert);
  } else {
    s.gate_up_weight = lw.gate_up_weight.slice_outer(expert);
    s.down_weight = lw.down_weight.slice_outer(expert);
  }
  s.gate_up_bias = lw.gate_up_bias.slice_outer(expert);
  s.down_bias = lw.down_bias.slice_outer(expert);
  return s;
}

}  // namespace ossrun
