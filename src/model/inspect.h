// What `ossrun inspect` reports about a checkpoint: its shape, parameter count, and bytes per component.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "src/model/checkpoint.h"
#include "src/model/tensor_specs.h"

namespace ossrun {

struct ComponentTotals {
  int64_t params = 0;
  uint64_t bytes = 0;
};

struct CheckpointSummary {
  int64_t params = 0;           // all parameters (MXFP4 weights counted one per value)
  int64_t active_params = 0;    // per token: k experts instead of E, no embedding table
  uint64_t tensor_bytes = 0;    // sum of every expected tensor's bytes
  std::array<ComponentTotals, 6> by_component{};  // indexed by Component
  uint64_t expert_slice_bytes = 0;  // one (layer, expert) slice
  uint64_t kv_bytes_per_token = 0;  // bf16 K and V over all layers (sliding layers cap at the window)
};

// Computed from the config alone (the checkpoint was validated against the same table when opened).
CheckpointSummary summarize(const ModelConfig& c);

// The human-readable report.
std::string format_summary(const Checkpoint& ck, const CheckpointSummary& s);

}  // namespace ossrun
