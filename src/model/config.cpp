#include "src/model/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "src/model/error.h"
#include "src/model/json_file.h"

namespace ossrun {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(source_ + ": \"" + field + "\" " + what);
  }

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  // A positive integer no larger than `max`.
  int64_t count(const char* key, int64_t max) const {
    if (!has(key)) fail(key, "is missing");
    return count_value(key, j_[key], max);
  }
  int64_t count_or(const char* key, int64_t max, int64_t fallback) const {
    return has(key) ? count_value(key, j_[key], max) : fallback;
  }
  int64_t count_value(const std::string& key, const json& v, int64_t max) const {
    if (!v.is_number_integer()) fail(key, "must be an integer, found " + v.dump());
    int64_t n = v.get<int64_t>();
    if (n <= 0 || n > max) fail(key, "must be between 1 and " + std::to_string(max) + ", found " + std::to_string(n));
    return n;
  }
  // A finite number greater than zero.
  double positive(const std::string& key, const json& v) const {
    if (!v.is_number()) fail(key, "must be a number, found " + v.dump());
    double x = v.get<double>();
    if (!std::isfinite(x) || x <= 0) fail(key, "must be a finite number above 0, found " + v.dump());
    return x;
  }
  double positive_or(const char* key, double fallback) const { return has(key) ? positive(key, j_[key]) : fallback; }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(key, "must be true or false, found " + j_[key].dump());
    return j_[key].get<bool>();
  }
  const json& at(const char* key) const { return j_[key]; }

 private:
  const json& j_;
  std::string source_;
};

constexpr int64_t kMaxDim = 1 << 20;

RopeConfig parse_rope(const json& j, const Reader& r, const std::string& source) {
  RopeConfig rope;
  // transformers 5 nests everything in rope_parameters; published files use rope_scaling + rope_theta.
  const char* block_key = r.has("rope_parameters") ? "rope_parameters" : r.has("rope_scaling") ? "rope_scaling" : nullptr;
  if (r.has("rope_theta")) rope.theta = r.positive("rope_theta", j["rope_theta"]);
  if (!block_key) return rope;
  const json& b = j[block_key];
  if (!b.is_object()) r.fail(block_key, "must be an object, found " + b.dump());
  Reader br(b, source + " (" + block_key + ")");
  if (br.has("rope_theta")) rope.theta = br.positive("rope_theta", b["rope_theta"]);
  std::string type = "yarn";
  const char* type_key = b.contains("rope_type") ? "rope_type" : b.contains("type") ? "type" : nullptr;
  if (type_key) {
    if (!b[type_key].is_string()) br.fail(type_key, "must be a string");
    type = b[type_key].get<std::string>();
  }
  if (type == "default") {
    rope.yarn = false;
    return rope;
  }
  if (type != "yarn") br.fail(type_key, "is \"" + type + "\"; gpt-oss uses \"yarn\" (or \"default\")");
  rope.factor = br.positive_or("factor", rope.factor);
  if (rope.factor < 1) br.fail("factor", "must be at least 1");
  rope.beta_fast = br.positive_or("beta_fast", rope.beta_fast);
  rope.beta_slow = br.positive_or("beta_slow", rope.beta_slow);
  if (rope.beta_slow >= rope.beta_fast) br.fail("beta_slow", "must be below beta_fast");
  rope.original_max_position_embeddings =
      br.count_or("original_max_position_embeddings", kMaxDim * 16, rope.original_max_position_embeddings);
  rope.truncate = br.boolean_or("truncate", true);  // transformers' default when the key is absent
  return rope;
}

}  // namespace

ModelConfig parse_model_config(const json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source + ": not a JSON object");
  Reader r(j, source);
  ModelConfig c;
  if (r.has("model_type") && j["model_type"] != "gpt_oss")
    r.fail("model_type", "is " + j["model_type"].dump() + "; ossrun runs \"gpt_oss\" models");

  c.hidden_size = r.count("hidden_size", kMaxDim);
  c.intermediate_size = r.count("intermediate_size", kMaxDim);
  c.num_hidden_layers = r.count("num_hidden_layers", 1024);
  c.num_attention_heads = r.count("num_attention_heads", 4096);
  c.num_key_value_heads = r.count_or("num_key_value_heads", 4096, c.num_attention_heads);
  c.head_dim = r.count_or("head_dim", 4096, c.hidden_size / c.num_attention_heads);
  c.vocab_size = r.count("vocab_size", 1 << 24);
  c.sliding_window = r.count_or("sliding_window", 1 << 24, 128);
  c.max_position_embeddings = r.count_or("max_position_embeddings", 1 << 24, 131072);
  c.rms_norm_eps = r.positive_or("rms_norm_eps", 1e-5);
  c.swiglu_limit = r.positive_or("swiglu_limit", 7.0);
  c.swiglu_alpha = r.positive_or("swiglu_alpha", 1.702);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);

  // Expert counts have two spellings each (the original config's names survive in published files).
  const char* e_key = r.has("num_local_experts") ? "num_local_experts" : "num_experts";
  c.num_local_experts = r.count(e_key, 1 << 16);
  c.num_experts_per_tok = r.count(r.has("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token", 1 << 16);
  if (r.has("num_experts_per_tok") && r.has("experts_per_token") && j["num_experts_per_tok"] != j["experts_per_token"])
    r.fail("experts_per_token", "is " + j["experts_per_token"].dump() + " but num_experts_per_tok is " + j["num_experts_per_tok"].dump());
  if (c.num_experts_per_tok > c.num_local_experts)
    r.fail("num_experts_per_tok", "is " + std::to_string(c.num_experts_per_tok) + ", more than the " +
                                      std::to_string(c.num_local_experts) + " experts per layer");

  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) + ") must divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + ")");
  if (c.head_dim % 2 != 0) r.fail("head_dim", "must be even for rotary embeddings, found " + std::to_string(c.head_dim));

  if (r.has("layer_types")) {
    const json& lt = j["layer_types"];
    if (!lt.is_array()) r.fail("layer_types", "must be an array");
    if (static_cast<int64_t>(lt.size()) != c.num_hidden_layers)
      r.fail("layer_types", "has " + std::to_string(lt.size()) + " entries but num_hidden_layers is " + std::to_string(c.num_hidden_layers));
    for (const json& t : lt) {
      if (t == "sliding_attention") c.layer_types.push_back(LayerType::SlidingAttention);
      else if (t == "full_attention") c.layer_types.push_back(LayerType::FullAttention);
      else r.fail("layer_types", "has " + t.dump() + "; expected \"sliding_attention\" or \"full_attention\"");
    }
  } else {  // gpt-oss alternates, starting with a sliding layer at index 0
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      c.layer_types.push_back(i % 2 == 0 ? LayerType::SlidingAttention : LayerType::FullAttention);
  }

  c.rope = parse_rope(j, r, source);

  c.expert_format = ExpertFormat::BF16;
  if (r.has("quantization_config")) {
    const json& q = j["quantization_config"];
    if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string())
      r.fail("quantization_config", "must be an object with a \"quant_method\" string");
    std::string m = q["quant_method"].get<std::string>();
    if (m != "mxfp4") r.fail("quantization_config", "has quant_method \"" + m + "\"; ossrun reads \"mxfp4\" or unquantized BF16 experts");
    c.expert_format = ExpertFormat::MXFP4;
  }
  if (c.expert_format == ExpertFormat::MXFP4) {
    if (c.hidden_size % 32) r.fail("hidden_size", "must be a multiple of 32 (the MXFP4 block) , found " + std::to_string(c.hidden_size));
    if (c.intermediate_size % 32)
      r.fail("intermediate_size", "must be a multiple of 32 (the MXFP4 block), found " + std::to_string(c.intermediate_size));
  }

  if (r.has("eos_token_id")) {
    const json& e = j["eos_token_id"];
    auto add = [&](const json& v) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.vocab_size)
        r.fail("eos_token_id", "must hold token ids below vocab_size, found " + v.dump());
      c.eos_token_ids.push_back(v.get<int64_t>());
    };
    if (e.is_array()) for (const json& v : e) add(v);
    else add(e);
  }
  if (r.has("pad_token_id")) {
    const json& p = j["pad_token_id"];
    if (!p.is_number_integer() || p.get<int64_t>() < 0 || p.get<int64_t>() >= c.vocab_size)
      r.fail("pad_token_id", "must be a token id below vocab_size, found " + p.dump());
    c.pad_token_id = p.get<int64_t>();
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& path) {
  return parse_model_config(read_json_file(path, "every checkpoint directory has a config.json"), path.string());
}

json model_config_to_json(const ModelConfig& c) {
  json j;
  j["architectures"] = {"GptOssForCausalLM"};
  j["model_type"] = "gpt_oss";
  j["attention_bias"] = true;
  j["attention_dropout"] = 0.0;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["head_dim"] = c.head_dim;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_local_experts"] = c.num_local_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["experts_per_token"] = c.num_experts_per_tok;
  j["vocab_size"] = c.vocab_size;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["swiglu_limit"] = c.swiglu_limit;
  // Published files omit swiglu_alpha (every reference hard-codes 1.702); write it only when it differs.
  if (c.swiglu_alpha != 1.702) j["swiglu_alpha"] = c.swiglu_alpha;
  j["sliding_window"] = c.sliding_window;
  json lt = json::array();
  for (LayerType t : c.layer_types) lt.push_back(layer_type_name(t));
  j["layer_types"] = lt;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["initial_context_length"] = c.rope.original_max_position_embeddings;
  j["rope_theta"] = c.rope.theta;
  if (c.rope.yarn)
    j["rope_scaling"] = {{"rope_type", "yarn"},
                         {"factor", c.rope.factor},
                         {"beta_fast", c.rope.beta_fast},
                         {"beta_slow", c.rope.beta_slow},
                         {"original_max_position_embeddings", c.rope.original_max_position_embeddings},
                         {"truncate", c.rope.truncate}};
  else  // an absent rope_scaling reads as gpt-oss's YaRN, so plain RoPE must be spelled out
    j["rope_scaling"] = {{"rope_type", "default"}};
  if (c.expert_format == ExpertFormat::MXFP4)
    j["quantization_config"] = {
        {"quant_method", "mxfp4"},
        {"modules_to_not_convert", {"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"}}};
  if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  j["router_aux_loss_coef"] = 0.9;
  j["output_router_logits"] = false;
  j["use_cache"] = true;
  j["initializer_range"] = 0.02;
  j["torch_dtype"] = "bfloat16";
  j["transformers_version"] = "4.55.0.dev0";
  return j;
}

const char* layer_type_name(LayerType t) {
  return t == LayerType::SlidingAttention ? "sliding_attention" : "full_attention";
}
const char* expert_format_name(ExpertFormat f) { return f == ExpertFormat::MXFP4 ? "mxfp4" : "bf16"; }

}  // namespace ossrun
