#include "src/synth/shard_plan.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <stdexcept>

namespace ossrun::synth {
namespace {

// The original (OpenAI) name of a HF tensor, and its position among the tensors split from the same original
// one (q, k, v of the fused qkv).
struct OriginalKey {
  std::string name;
  int part = 0;
  bool operator<(const OriginalKey& o) const { return name != o.name ? name < o.name : part < o.part; }
};

OriginalKey original_key(const std::string& hf) {
  static const std::map<std::string, OriginalKey> kLayerSuffix = {
      {"input_layernorm.weight", {"attn.norm.scale"}},
      {"self_attn.q_proj.weight", {"attn.qkv.weight", 0}},
      {"self_attn.k_proj.weight", {"attn.qkv.weight", 1}},
      {"self_attn.v_proj.weight", {"attn.qkv.weight", 2}},
      {"self_attn.q_proj.bias", {"attn.qkv.bias", 0}},
      {"self_attn.k_proj.bias", {"attn.qkv.bias", 1}},
      {"self_attn.v_proj.bias", {"attn.qkv.bias", 2}},
      {"self_attn.o_proj.weight", {"attn.out.weight"}},
      {"self_attn.o_proj.bias", {"attn.out.bias"}},
      {"self_attn.sinks", {"attn.sinks"}},
      {"post_attention_layernorm.weight", {"mlp.norm.scale"}},
      {"mlp.router.weight", {"mlp.gate.weight"}},
      {"mlp.router.bias", {"mlp.gate.bias"}},
      {"mlp.experts.gate_up_proj_blocks", {"mlp.mlp1_weight.blocks"}},
      {"mlp.experts.gate_up_proj_scales", {"mlp.mlp1_weight.scales"}},
      {"mlp.experts.gate_up_proj", {"mlp.mlp1_weight"}},
      {"mlp.experts.gate_up_proj_bias", {"mlp.mlp1_bias"}},
      {"mlp.experts.down_proj_blocks", {"mlp.mlp2_weight.blocks"}},
      {"mlp.experts.down_proj_scales", {"mlp.mlp2_weight.scales"}},
      {"mlp.experts.down_proj", {"mlp.mlp2_weight"}},
      {"mlp.experts.down_proj_bias", {"mlp.mlp2_bias"}},
  };
  if (hf == "model.embed_tokens.weight") return {"embedding.weight"};
  if (hf == "model.norm.weight") return {"norm.scale"};
  if (hf == "lm_head.weight") return {"unembedding.weight"};
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) == 0) {
    const size_t dot = hf.find('.', prefix.size());
    if (dot != std::string::npos) {
      auto it = kLayerSuffix.find(hf.substr(dot + 1));
      if (it != kLayerSuffix.end())
        return {"block." + hf.substr(prefix.size(), dot - prefix.size()) + "." + it->second.name, it->second.part};
    }
  }
  throw std::logic_error("shard plan: '" + hf + "' is not a gpt-oss tensor name");
}

std::string shard_name(size_t index, size_t last) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", index, last);
  return buf;
}

}  // namespace

std::vector<size_t> published_key_order(const std::vector<TensorSpec>& specs) {
  std::vector<std::pair<OriginalKey, size_t>> keyed;
  for (size_t i = 0; i < specs.size(); ++i) keyed.emplace_back(original_key(specs[i].name), i);
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> order;
  for (const auto& k : keyed) order.push_back(k.second);
  return order;
}

ShardPlan plan_shards(const std::vector<TensorSpec>& specs, uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) throw std::invalid_argument("shard plan: the shard size cap must be positive");
  std::vector<std::vector<size_t>> groups;
  uint64_t filled = 0;
  ShardPlan plan;
  for (size_t i : published_key_order(specs)) {
    const uint64_t bytes = specs[i].nbytes();
    if (groups.empty() || (filled + bytes > max_shard_bytes && filled > 0)) {
      groups.emplace_back();
      filled = 0;
    }
    groups.back().push_back(i);
    filled += bytes;
    plan.total_size += bytes;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<size_t>& members = groups[g];
    // safetensors' serializer: descending dtype (BF16 before U8), then name.
    std::sort(members.begin(), members.end(), [&](size_t a, size_t b) {
      const bool a_bf16 = specs[a].dtype == DType::BF16, b_bf16 = specs[b].dtype == DType::BF16;
      return a_bf16 != b_bf16 ? a_bf16 : specs[a].name < specs[b].name;
    });
    ShardFile f;
    f.name = shard_name(g, groups.size() - 1);
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    for (size_t i : members) {
      const uint64_t begin = f.data_bytes, end = begin + specs[i].nbytes();
      header[specs[i].name] = {{"dtype", std::string(dtype_name(specs[i].dtype))}, {"shape", specs[i].shape}, {"data_offsets", {begin, end}}};
      f.tensors.push_back({i, begin, end});
      f.data_bytes = end;
    }
    f.header = header.dump();
    f.header.append((8 - f.header.size() % 8) % 8, ' ');
    plan.files.push_back(std::move(f));
  }
  return plan;
}

nlohmann::ordered_json ShardPlan::index_json(const std::vector<TensorSpec>& specs) const {
  std::vector<const std::string*> file_of(specs.size(), nullptr);
  for (const ShardFile& f : files)
    for (const ShardTensor& t : f.tensors) file_of[t.spec] = &f.name;
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  for (size_t i : published_key_order(specs)) map[specs[i].name] = *file_of[i];
  return {{"metadata", {{"total_size", total_size}}}, {"weight_map", map}};
}

}  // namespace ossrun::synth
