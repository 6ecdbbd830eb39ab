// The memory plan as people read it (a table: totals per device, then one row per layer) and as
// programs read it (JSON, which reads back into the same plan).
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "offload/memory_plan.h"

namespace ossrun::offload {

std::string format_plan(const MemoryPlan& plan);

nlohmann::json plan_to_json(const MemoryPlan& plan);
// Throws InputError naming the missing or malformed field.
MemoryPlan plan_from_json(const nlohmann::json& j);

}  // namespace ossrun::offload
