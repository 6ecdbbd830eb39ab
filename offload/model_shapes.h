// The published gpt-oss model shapes (gpt-oss.md §1), for planning and simulating without a checkpoint
// on disk (`ossrun plan --shape 120b`, synthetic traces) and for tests that must cover both real sizes.
#pragma once
#include <string_view>

#include "src/model/config.h"

namespace ossrun::offload {

ModelConfig gpt_oss_20b_config();   // 24 layers, 32 experts, top-4
ModelConfig gpt_oss_120b_config();  // 36 layers, 128 experts, top-4

// "20b" or "120b" (also "gpt-oss-20b", "gpt-oss-120b"); throws InputError naming the known shapes otherwise.
ModelConfig model_shape(std::string_view name);

}  // namespace ossrun::offload
