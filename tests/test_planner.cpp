// The memory planner: budgets are hard limits for every shape and budget, the leftovers are too small for
// one more slice, per-layer slots follow router statistics (and are optimal), the JSON reads back, and
// budgets that are too small say what would fit.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "offload/model_shapes.h"
#include "offload/memory_plan.h"
#include "offload/plan_format.h"
#include "src/model/error.h"
#include "src/model/inspect.h"
#include "tests/support/safetensors_writer.h"

using namespace ossrun;
using namespace ossrun::offload;

namespace {

constexpr uint64_t GiB = uint64_t{1} << 30, MiB = uint64_t{1} << 20;

PlanRequest request(const ModelConfig& c, uint64_t vram, uint64_t ram, int64_t ctx = 8192, int64_t chunk = 512) {
  PlanRequest r;
  r.config = c;
  r.vram_budget = vram;
  r.ram_budget = ram;
  r.context = ctx;
  r.prefill_chunk = chunk;
  return r;
}

// The number after "FLAG " in an error message (the suggestion it makes), or -1.
int64_t suggested(const std::string& msg, const std::string& flag) {
  const size_t at = msg.find(flag + " ");
  if (at == std::string::npos) return -1;
  size_t end = at + flag.size() + 1;
  int64_t n = 0;
  bool digits = false;
  for (; end < msg.size() && msg[end] >= '0' && msg[end] <= '9'; ++end, digits = true) n = n * 10 + (msg[end] - '0');
  return digits ? n : -1;
}

std::string plan_error(const PlanRequest& r) {
  try {
    plan_memory(r);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Everything a plan must satisfy; reports the first broken rule.
void check_plan(const PlanRequest& r, const CheckpointSummary& s, const MemoryPlan& p) {
  const ModelConfig& c = r.config;
  const int L = static_cast<int>(c.num_hidden_layers), E = static_cast<int>(c.num_local_experts);
  const uint64_t slice = s.expert_slice_bytes;
  REQUIRE(p.layers.size() == static_cast<size_t>(L));
  CHECK(p.gpu.used() <= r.vram_budget);
  CHECK(p.host.used() <= r.ram_budget);
  CHECK(p.gpu.experts == static_cast<uint64_t>(p.gpu_slots()) * slice);
  CHECK(p.host.locked_experts == static_cast<uint64_t>(p.locked_experts()) * slice);
  int mapped = 0;
  uint64_t kv = 0;
  for (const LayerPlacement& l : p.layers) {
    CHECK(l.gpu_slots >= 0);
    CHECK(l.locked_experts >= 0);
    CHECK(l.gpu_slots + l.locked_experts + l.mapped_experts == E);
    CHECK(l.gpu_hit_rate + l.locked_hit_rate <= 1.0 + 1e-9);
    mapped += l.mapped_experts;
    kv += l.kv_bytes;
  }
  CHECK(p.mapped.experts == static_cast<uint64_t>(mapped) * slice);
  // Every expert byte is somewhere, once.
  CHECK(p.gpu.experts + p.host.locked_experts + p.mapped.experts == s.by_component[static_cast<size_t>(Component::Experts)].bytes);
  if (p.cpu_only) {
    CHECK(r.vram_budget == 0);
    CHECK(p.gpu.used() == 0);
    CHECK(p.host.kv_cache == kv);
  } else {
    CHECK(p.gpu.kv_cache == kv);
    CHECK(p.gpu.lm_head == s.by_component[static_cast<size_t>(Component::LmHead)].bytes);
    // Nothing wasted: another slot would not fit, or every expert has one.
    CHECK((r.vram_budget - p.gpu.used() < slice || p.gpu_slots() == L * E));
    CHECK(p.mapped.embedding == (c.tie_word_embeddings ? 0 : s.by_component[static_cast<size_t>(Component::Embedding)].bytes));
  }
  CHECK((r.ram_budget - p.host.used() < slice || p.gpu_slots() + p.locked_experts() == L * E));
  // Uniform routing: the slots are spread evenly.
  if (!p.from_router_stats) {
    auto [lo, hi] = std::minmax_element(p.layers.begin(), p.layers.end(),
                                        [](const auto& a, const auto& b) { return a.gpu_slots < b.gpu_slots; });
    CHECK(hi->gpu_slots - lo->gpu_slots <= 1);
  }
}

}  // namespace

TEST_CASE("planner: budgets are never exceeded, for the 20b and 120b shapes and many budgets") {
  ModelConfig tied = gpt_oss_20b_config();
  tied.tie_word_embeddings = true;
  int planned = 0, refused = 0;
  for (const ModelConfig& c : {gpt_oss_20b_config(), gpt_oss_120b_config(), tied, test::micro_config()}) {
    const CheckpointSummary summary = summarize(c);
    for (uint64_t vram : {uint64_t{0}, 1 * GiB, 3 * GiB, 4 * GiB + 123457, 8 * GiB, 16 * GiB, 48 * GiB, 141 * GiB}) {
      for (uint64_t ram : {64 * MiB, 2 * GiB, 24 * GiB + 77, 64 * GiB, 256 * GiB}) {
        for (int64_t ctx : {int64_t{1}, int64_t{8192}, c.max_position_embeddings}) {
          for (int64_t chunk : {1, 512, 4096}) {
            const PlanRequest r = request(c, vram, ram, ctx, chunk);
            const std::string err = plan_error(r);
            if (!err.empty()) {
              ++refused;
              continue;
            }
            CAPTURE(c.num_hidden_layers);
            CAPTURE(vram);
            CAPTURE(ram);
            CAPTURE(ctx);
            CAPTURE(chunk);
            check_plan(r, summary, plan_memory(r));
            ++planned;
          }
        }
      }
    }
  }
  CHECK(planned > 500);
  CHECK(refused > 50);
}

TEST_CASE("planner: a 20b plan on an 8 GiB GPU, by the numbers") {
  const ModelConfig c = gpt_oss_20b_config();
  const MemoryPlan p = plan_memory(request(c, 8 * GiB, 16 * GiB, 8192, 512));
  // Dense weights (gpt-oss.md §2.1): attention (q, k, v, o with biases, sinks) and lm_head.
  const uint64_t attention_per_layer = 2 * (4096 * 2880 + 4096 + 2 * (512 * 2880 + 512) + 2880 * 4096 + 2880 + 64);
  CHECK(p.gpu.attention == 24 * attention_per_layer);
  CHECK(p.gpu.lm_head == 201088ull * 2880 * 2);
  CHECK(p.gpu.embedding == 0);
  // KV: 12 full layers keep 8192 positions, 12 sliding layers 128 - 1 + 512; 2 KiB per position and layer.
  CHECK(p.gpu.kv_cache == (12 * 8192 + 12 * 639) * 2048ull);
  CHECK(p.layers[0].type == LayerType::SlidingAttention);
  CHECK(p.layers[0].kv_positions == 639);
  CHECK(p.layers[1].kv_positions == 8192);
  CHECK(p.expert_slice_bytes == 13219200 + 17280);
  CHECK(p.gpu_slots() == static_cast<int>((8 * GiB - p.gpu.dense() - p.gpu.kv_cache - p.gpu.workspace) / p.expert_slice_bytes));
  CHECK(p.gpu_slots() > 24 * 8);  // about a quarter of the experts and more
  CHECK(p.gpu_hit_rate() == doctest::Approx(p.gpu_slots() / (24.0 * 32)).epsilon(0.05));
  // With a context of 100 tokens the sliding layers keep all of it.
  CHECK(plan_memory(request(c, 8 * GiB, 16 * GiB, 100, 512)).layers[0].kv_positions == 100);
  // Everything fits on an 80 GiB GPU.
  const MemoryPlan big = plan_memory(request(c, 80 * GiB, 16 * GiB));
  CHECK(big.gpu_slots() == 24 * 32);
  CHECK(big.gpu_hit_rate() == doctest::Approx(1.0));
  CHECK(big.host.locked_experts == 0);
}

TEST_CASE("planner: router statistics give more slots to concentrated layers, optimally") {
  ModelConfig c = test::micro_config();  // 2 layers, 4 experts, top-2
  c.num_hidden_layers = 3;
  c.layer_types = {LayerType::SlidingAttention, LayerType::FullAttention, LayerType::SlidingAttention};
  const uint64_t slice = summarize(c).expert_slice_bytes;
  PlanRequest r = request(c, 0, 0, 64, 16);
  // Layer 0 routes almost always to experts 0 and 1; layer 1 is uniform; layer 2 in between.
  r.expert_share = {{0.98, 0.96, 0.03, 0.03}, {0.5, 0.5, 0.5, 0.5}, {0.9, 0.5, 0.4, 0.2}};
  r.stats_tokens = 1e6;
  const MemoryPlan all = plan_memory(request(c, 1 * GiB, 1 * GiB, 64, 16));
  const uint64_t required = all.gpu.dense() + all.gpu.kv_cache + all.gpu.workspace;
  for (int slots = 0; slots <= 12; ++slots) {
    r.vram_budget = required + slots * slice + slice / 2;
    r.ram_budget = 1 * GiB;
    const MemoryPlan p = plan_memory(r);
    REQUIRE(p.gpu_slots() == slots);
    // Exhaustive: the best split of `slots` over the three layers.
    double best = 0;
    for (int a = 0; a <= 4; ++a)
      for (int b = 0; b <= 4; ++b) {
        const int d = slots - a - b;
        if (d < 0 || d > 4) continue;
        double hits = 0;
        const int n[3] = {a, b, d};
        for (int l = 0; l < 3; ++l) {
          std::vector<double> sorted = r.expert_share[l];
          std::sort(sorted.rbegin(), sorted.rend());
          for (int i = 0; i < n[l]; ++i) hits += sorted[i];
        }
        best = std::max(best, hits);
      }
    CAPTURE(slots);
    CHECK(p.gpu_hit_rate() * 3 * 2 == doctest::Approx(best).epsilon(1e-3));
  }
  r.vram_budget = required + 2 * slice;
  const MemoryPlan two = plan_memory(r);
  CHECK(two.layers[0].gpu_slots == 2);  // the concentrated layer takes both
  CHECK(two.from_router_stats);
  // Little evidence moves the expected hit rates little (blended with uniform routing).
  r.stats_tokens = 1;
  const MemoryPlan weak = plan_memory(r);
  CHECK(weak.layers[0].gpu_hit_rate < 0.51);
  CHECK(two.layers[0].gpu_hit_rate > 0.96);
  r.expert_share[1] = {0.5, 0.5, 0.5};
  CHECK_THROWS_WITH_AS(plan_memory(r), doctest::Contains("router statistics for 3 experts"), InputError);
  r.expert_share[1] = {0.5, 0.5, 1.5, 0.5};
  CHECK_THROWS_WITH_AS(plan_memory(r), doctest::Contains("outside [0, 1]"), InputError);
}

TEST_CASE("planner: CPU-only plans lock the dense weights first, then hot experts") {
  const ModelConfig c = gpt_oss_20b_config();
  const MemoryPlan p = plan_memory(request(c, 0, 8 * GiB, 4096, 128));
  CHECK(p.cpu_only);
  CHECK(p.host.kv_cache > 0);
  CHECK(p.host.locked_dense > 2 * GiB);
  CHECK(p.mapped.dense == 0);
  CHECK(p.locked_experts() > 0);
  const MemoryPlan small = plan_memory(request(c, 0, 1 * GiB, 4096, 128));
  CHECK(small.host.locked_dense == 0);
  CHECK(small.mapped.dense > 2 * GiB);
  CHECK(format_plan(small).find("CPU-only") != std::string::npos);
}

TEST_CASE("planner: budgets too small say what would fit") {
  const ModelConfig c = gpt_oss_20b_config();
  // 3 GiB holds the 20b dense weights with a short context, not 131072 tokens.
  const std::string msg = plan_error(request(c, 3 * GiB, 16 * GiB, 131072, 512));
  INFO(msg);
  CHECK(msg.find("VRAM budget 3.00 GiB cannot hold the dense part at context 131072") != std::string::npos);
  CHECK(msg.find("CPU-only (--vram 0)") != std::string::npos);
  const int64_t fits = suggested(msg, "--ctx");
  REQUIRE(fits > 0);
  CHECK(plan_error(request(c, 3 * GiB, 16 * GiB, fits, 512)).empty());
  CHECK_FALSE(plan_error(request(c, 3 * GiB, 16 * GiB, fits + 1, 512)).empty());

  const std::string none = plan_error(request(c, 1 * GiB, 16 * GiB));
  CHECK(none.find("No context fits") != std::string::npos);

  const std::string ram = plan_error(request(c, 0, 512 * MiB, 131072, 512));
  CHECK(ram.find("a CPU-only plan at context 131072 needs") != std::string::npos);
  const int64_t ram_fits = suggested(ram, "--ctx");
  REQUIRE(ram_fits > 0);
  CHECK(plan_error(request(c, 0, 512 * MiB, ram_fits, 512)).empty());
  CHECK_FALSE(plan_error(request(c, 0, 512 * MiB, ram_fits + 1, 512)).empty());

  const std::string staging = plan_error(request(c, 8 * GiB, 256 * MiB, 8192, 4096));
  INFO(staging);
  CHECK(staging.find("pinned staging") != std::string::npos);
  const int64_t chunk_fits = suggested(staging, "--chunk");
  REQUIRE(chunk_fits > 0);
  CHECK(plan_error(request(c, 8 * GiB, 256 * MiB, 8192, chunk_fits)).empty());
  CHECK_FALSE(plan_error(request(c, 8 * GiB, 256 * MiB, 8192, chunk_fits + 1)).empty());

  CHECK(plan_error(request(c, 8 * GiB, 8 * GiB, 0)).find("context 0 is outside 1..131072") != std::string::npos);
  CHECK(plan_error(request(c, 8 * GiB, 8 * GiB, 200000)).find("outside 1..131072") != std::string::npos);
}

TEST_CASE("planner: the JSON reads back into the same plan; bad JSON is an error") {
  PlanRequest r = request(gpt_oss_120b_config(), 24 * GiB, 64 * GiB, 32768, 256);
  r.expert_share.assign(36, std::vector<double>(128, 4.0 / 128));
  for (int l = 0; l < 36; ++l) r.expert_share[l][l % 128] = 0.7;
  r.stats_tokens = 5000;
  for (const PlanRequest& req : {r, request(gpt_oss_20b_config(), 0, 8 * GiB)}) {
    const MemoryPlan p = plan_memory(req);
    const nlohmann::json j = plan_to_json(p);
    CHECK(plan_from_json(nlohmann::json::parse(j.dump())) == p);
    CHECK(j["gpu"]["used"] == p.gpu.used());
  }
  nlohmann::json j = plan_to_json(plan_memory(r));
  j["layers"][3].erase("gpu_slots");
  CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("\"gpu_slots\" is missing"), InputError);
  j = plan_to_json(plan_memory(r));
  j["gpu"]["experts"] = j["gpu"]["budget"];
  CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("exceed the budget"), InputError);
  j = plan_to_json(plan_memory(r));
  j["context"] = "long";
  CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("\"context\" has the wrong type"), InputError);
  j = plan_to_json(plan_memory(r));
  j["layers"][0]["mapped_experts"] = 1000;
  CHECK_THROWS_AS(plan_from_json(j), InputError);
}
