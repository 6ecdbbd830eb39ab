#include "offload/plan_format.h"

#include <cstdio>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "offload/byte_size.h"
#include "src/model/error.h"

namespace ossrun::offload {
namespace {

using nlohmann::json;

std::string line(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string row(const char* label, uint64_t bytes, const std::string& note = "") {
  return line("  %-16s %12s%s%s\n", label, format_bytes(bytes).c_str(), note.empty() ? "" : "  ", note.c_str());
}

std::string slices(int n, uint64_t slice) {
  return std::to_string(n) + " x " + format_bytes(slice);
}

// JSON readers that name the field on failure.
const json& at(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) throw InputError(std::string("memory plan JSON: \"") + key + "\" is missing");
  return j[key];
}
template <class T>
T get(const json& j, const char* key) {
  const json& v = at(j, key);
  bool ok;
  if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  else if constexpr (std::is_integral_v<T>) ok = v.is_number_integer() && (std::is_signed_v<T> || v.is_number_unsigned());
  else ok = v.is_number();
  if (!ok) throw InputError(std::string("memory plan JSON: \"") + key + "\" has the wrong type: " + v.dump());
  return v.get<T>();
}

}  // namespace

std::string format_plan(const MemoryPlan& p) {
  std::string out;
  const int L = static_cast<int>(p.layers.size());
  out += line("memory plan: %d layers x %d experts (top-%d), context %lld, prefill chunk %lld, expert slice %s\n", L,
              p.experts_per_layer, p.experts_per_token, static_cast<long long>(p.context),
              static_cast<long long>(p.prefill_chunk), format_bytes(p.expert_slice_bytes).c_str());
  if (p.cpu_only) {
    out += "\nGPU   none: a CPU-only plan (every layer runs on the CPU)\n";
  } else {
    out += line("\nGPU   budget %s, planned %s (%s unused)\n", format_bytes(p.gpu.budget).c_str(),
                format_bytes(p.gpu.used()).c_str(), format_bytes(p.gpu.budget - p.gpu.used()).c_str());
    out += row("attention", p.gpu.attention, "q/k/v/o, biases, sinks");
    out += row("router", p.gpu.router);
    out += row("norms", p.gpu.norms);
    out += row("lm_head", p.gpu.lm_head);
    if (p.gpu.embedding) out += row("embedding", p.gpu.embedding, "tied to lm_head");
    out += row("KV cache", p.gpu.kv_cache, "bf16; sliding layers keep window - 1 + chunk");
    out += row("workspace", p.gpu.workspace, "activations of one chunk, logits, kernel scratch");
    out += row("expert slots", p.gpu.experts, slices(p.gpu_slots(), p.expert_slice_bytes));
  }
  out += line("\nRAM   budget %s, planned %s (%s unused)\n", format_bytes(p.host.budget).c_str(),
              format_bytes(p.host.used()).c_str(), format_bytes(p.host.budget - p.host.used()).c_str());
  if (!p.cpu_only) out += row("pinned staging", p.host.pinned_staging, "2 upload slices, activation exchange");
  if (p.cpu_only) out += row("KV cache", p.host.kv_cache);
  out += row("workspace", p.host.workspace, p.cpu_only ? "activations, logits, dequantized tiles" : "CPU experts, dequantized tiles");
  if (p.cpu_only) out += row("locked dense", p.host.locked_dense, p.host.locked_dense ? "mlock" : "does not fit: read from the mmap");
  out += row("locked experts", p.host.locked_experts, slices(p.locked_experts(), p.expert_slice_bytes) + ", mlock");
  out += "\nmmap  read on demand through the page cache\n";
  if (p.mapped.embedding) out += row("embedding", p.mapped.embedding, "one row per token is read");
  if (p.mapped.dense) out += row("dense", p.mapped.dense);
  int mapped = 0;
  for (const auto& l : p.layers) mapped += l.mapped_experts;
  out += row("experts", p.mapped.experts, slices(mapped, p.expert_slice_bytes));

  out += "\nlayer  attention  KV positions     KV cache  GPU slots  locked  mmap  GPU hits  GPU+locked\n";
  for (int i = 0; i < L; ++i) {
    const LayerPlacement& l = p.layers[i];
    out += line("%5d  %-9s  %12lld  %11s  %9d  %6d  %4d  %7.1f%%  %9.1f%%\n", i,
                l.type == LayerType::SlidingAttention ? "sliding" : "full", static_cast<long long>(l.kv_positions),
                format_bytes(l.kv_bytes).c_str(), l.gpu_slots, l.locked_experts, l.mapped_experts, 100 * l.gpu_hit_rate,
                100 * (l.gpu_hit_rate + l.locked_hit_rate));
  }
  out += line("total  %-9s  %12s  %11s  %9d  %6d  %4d  %7.1f%%  %9.1f%%\n", "", "",
              format_bytes(p.cpu_only ? p.host.kv_cache : p.gpu.kv_cache).c_str(), p.gpu_slots(), p.locked_experts(),
              mapped, 100 * p.gpu_hit_rate(), 100 * (p.gpu_hit_rate() + p.locked_hit_rate()));
  out += p.from_router_stats ? "hit rates: expected from the saved router statistics\n"
                             : "hit rates: expected if routing were uniform (no router statistics yet)\n";
  return out;
}

json plan_to_json(const MemoryPlan& p) {
  json layers = json::array();
  for (const LayerPlacement& l : p.layers)
    layers.push_back({{"attention", layer_type_name(l.type)},
                      {"kv_positions", l.kv_positions},
                      {"kv_bytes", l.kv_bytes},
                      {"gpu_slots", l.gpu_slots},
                      {"locked_experts", l.locked_experts},
                      {"mapped_experts", l.mapped_experts},
                      {"gpu_hit_rate", l.gpu_hit_rate},
                      {"locked_hit_rate", l.locked_hit_rate}});
  return {{"cpu_only", p.cpu_only},
          {"from_router_stats", p.from_router_stats},
          {"context", p.context},
          {"prefill_chunk", p.prefill_chunk},
          {"experts_per_layer", p.experts_per_layer},
          {"experts_per_token", p.experts_per_token},
          {"expert_slice_bytes", p.expert_slice_bytes},
          {"gpu",
           {{"budget", p.gpu.budget},
            {"attention", p.gpu.attention},
            {"router", p.gpu.router},
            {"norms", p.gpu.norms},
            {"lm_head", p.gpu.lm_head},
            {"embedding", p.gpu.embedding},
            {"kv_cache", p.gpu.kv_cache},
            {"workspace", p.gpu.workspace},
            {"experts", p.gpu.experts},
            {"used", p.gpu.used()}}},
          {"ram",
           {{"budget", p.host.budget},
            {"pinned_staging", p.host.pinned_staging},
            {"workspace", p.host.workspace},
            {"kv_cache", p.host.kv_cache},
            {"locked_dense", p.host.locked_dense},
            {"locked_experts", p.host.locked_experts},
            {"used", p.host.used()}}},
          {"mmap", {{"embedding", p.mapped.embedding}, {"dense", p.mapped.dense}, {"experts", p.mapped.experts}}},
          {"layers", std::move(layers)}};
}

MemoryPlan plan_from_json(const json& j) {
  if (!j.is_object()) throw InputError("memory plan JSON: not an object");
  MemoryPlan p;
  p.cpu_only = get<bool>(j, "cpu_only");
  p.from_router_stats = get<bool>(j, "from_router_stats");
  p.context = get<int64_t>(j, "context");
  p.prefill_chunk = get<int64_t>(j, "prefill_chunk");
  p.experts_per_layer = get<int>(j, "experts_per_layer");
  p.experts_per_token = get<int>(j, "experts_per_token");
  p.expert_slice_bytes = get<uint64_t>(j, "expert_slice_bytes");
  const json& g = at(j, "gpu");
  p.gpu = {get<uint64_t>(g, "budget"),   get<uint64_t>(g, "attention"), get<uint64_t>(g, "router"),
           get<uint64_t>(g, "norms"),    get<uint64_t>(g, "lm_head"),   get<uint64_t>(g, "embedding"),
           get<uint64_t>(g, "kv_cache"), get<uint64_t>(g, "workspace"), get<uint64_t>(g, "experts")};
  const json& h = at(j, "ram");
  p.host = {get<uint64_t>(h, "budget"),       get<uint64_t>(h, "pinned_staging"), get<uint64_t>(h, "workspace"),
            get<uint64_t>(h, "kv_cache"),     get<uint64_t>(h, "locked_dense"),   get<uint64_t>(h, "locked_experts")};
  const json& m = at(j, "mmap");
  p.mapped = {get<uint64_t>(m, "embedding"), get<uint64_t>(m, "dense"), get<uint64_t>(m, "experts")};
  const json& layers = at(j, "layers");
  if (!layers.is_array()) throw InputError("memory plan JSON: \"layers\" must be an array");
  for (const json& l : layers) {
    LayerPlacement lp;
    const json& type = at(l, "attention");
    if (type == "sliding_attention") lp.type = LayerType::SlidingAttention;
    else if (type == "full_attention") lp.type = LayerType::FullAttention;
    else throw InputError("memory plan JSON: layer attention " + type.dump() + " is not sliding_attention or full_attention");
    lp.kv_positions = get<int64_t>(l, "kv_positions");
    lp.kv_bytes = get<uint64_t>(l, "kv_bytes");
    lp.gpu_slots = get<int>(l, "gpu_slots");
    lp.locked_experts = get<int>(l, "locked_experts");
    lp.mapped_experts = get<int>(l, "mapped_experts");
    lp.gpu_hit_rate = get<double>(l, "gpu_hit_rate");
    lp.locked_hit_rate = get<double>(l, "locked_hit_rate");
    if (lp.gpu_slots < 0 || lp.locked_experts < 0 || lp.mapped_experts < 0 ||
        lp.gpu_slots + lp.locked_experts + lp.mapped_experts != p.experts_per_layer)
      throw InputError("memory plan JSON: a layer's gpu_slots + locked_experts + mapped_experts is not experts_per_layer");
    p.layers.push_back(lp);
  }
  if (p.gpu.used() > p.gpu.budget || p.host.used() > p.host.budget)
    throw InputError("memory plan JSON: the planned bytes exceed the budget");
  return p;
}

}  // namespace ossrun::offload
