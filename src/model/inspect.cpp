#include "src/model/inspect.h"

#include <cstdio>

namespace ossrun {
namespace {

std::string group_digits(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", n / double(1ull << 30));
  else if (n >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", n / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
  return buf;
}

}  // namespace

CheckpointSummary summarize(const ModelConfig& c) {
  CheckpointSummary s;
  for (const TensorSpec& t : expected_tensors(c)) {
    s.params += t.params;
    s.tensor_bytes += t.nbytes();
    auto& comp = s.by_component[static_cast<size_t>(t.component)];
    comp.params += t.params;
    comp.bytes += t.nbytes();
    if (t.component == Component::Experts && t.layer == 0) s.expert_slice_bytes += t.nbytes() / c.num_local_experts;
  }
  const auto& experts = s.by_component[static_cast<size_t>(Component::Experts)];
  const auto& embed = s.by_component[static_cast<size_t>(Component::Embedding)];
  s.active_params = s.params - embed.params - experts.params / c.num_local_experts * (c.num_local_experts - c.num_experts_per_tok);
  if (c.tie_word_embeddings) s.active_params += embed.params;  // the table is the unembedding too
  s.kv_bytes_per_token = static_cast<uint64_t>(2 * c.kv_dim() * 2 * c.num_hidden_layers);
  return s;
}

std::string format_summary(const Checkpoint& ck, const CheckpointSummary& s) {
  const ModelConfig& c = ck.config();
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("checkpoint   %s\n", ck.dir().c_str());
  add("files        %zu safetensors shard(s)\n", ck.shards().size());
  int sliding = 0;
  for (LayerType t : c.layer_types) sliding += t == LayerType::SlidingAttention;
  add("layers       %lld (%d sliding-window %lld, %lld full attention)\n", (long long)c.num_hidden_layers, sliding,
      (long long)c.sliding_window, (long long)c.num_hidden_layers - sliding);
  add("hidden       %lld, attention %lld query heads / %lld KV heads x %lld\n", (long long)c.hidden_size,
      (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.head_dim);
  add("experts      %lld per layer, top-%lld, intermediate %lld, %s\n", (long long)c.num_local_experts,
      (long long)c.num_experts_per_tok, (long long)c.intermediate_size, expert_format_name(c.expert_format));
  add("vocabulary   %lld\n", (long long)c.vocab_size);
  add("parameters   %s (%s active per token)\n", group_digits(s.params).c_str(), group_digits(s.active_params).c_str());
  add("tensor bytes %s (%s)\n", group_digits(s.tensor_bytes).c_str(), human_bytes(s.tensor_bytes).c_str());
  out += "\ncomponent    parameters          bytes\n";
  for (size_t i = 0; i < s.by_component.size(); ++i) {
    if (s.by_component[i].bytes == 0) continue;
    add("%-12s %-19s %s (%s)\n", component_name(static_cast<Component>(i)), group_digits(s.by_component[i].params).c_str(),
        group_digits(s.by_component[i].bytes).c_str(), human_bytes(s.by_component[i].bytes).c_str());
  }
  add("\nexpert slice %s bytes (%s) per (layer, expert)\n", group_digits(s.expert_slice_bytes).c_str(),
      human_bytes(s.expert_slice_bytes).c_str());
  add("KV cache     %s per token of context (bf16 K and V, all layers)\n", human_bytes(s.kv_bytes_per_token).c_str());
  if (!ck.unused_tensors().empty()) add("note         %zu tensor(s) in the files are not used by the model\n", ck.unused_tensors().size());
  add("verdict      OK: every tensor present with the dtype and shape config.json implies\n");
  return out;
}

}  // namespace ossrun
