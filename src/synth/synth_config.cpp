#include "src/synth/synth_config.h"

#include <cmath>
#include <set>

#include "src/model/error.h"
#include "src/model/json_file.h"

namespace ossrun::synth {
namespace {

using nlohmann::json;

constexpr int64_t kBosToken = 199998;           // <|startoftext|>
constexpr int64_t kPadToken = 199999;           // <|endoftext|>
constexpr int64_t kReturnToken = 200002;        // <|return|>
constexpr int64_t kCallToken = 200012;          // <|call|>

// The values both published models share (gpt-oss.md §1.1).
ModelConfig gpt_oss_base() {
  ModelConfig c;
  c.hidden_size = 2880;
  c.intermediate_size = 2880;
  c.num_attention_heads = 64;
  c.num_key_value_heads = 8;
  c.head_dim = 64;
  c.num_experts_per_tok = 4;
  c.vocab_size = 201088;
  c.sliding_window = 128;
  c.max_position_embeddings = 131072;
  c.eos_token_ids = {kReturnToken};
  c.pad_token_id = kPadToken;
  return c;  // RopeConfig, norms, SwiGLU and MXFP4 defaults are the published ones
}

void alternate_layer_types(ModelConfig& c) {
  c.layer_types.clear();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    c.layer_types.push_back(i % 2 == 0 ? LayerType::SlidingAttention : LayerType::FullAttention);
}

json read_json_object(const std::filesystem::path& path) {
  const json j = read_json_file(path, "--config-json");
  if (!j.is_object()) throw InputError(path.string() + ": --config-json needs a JSON object of config.json fields");
  return j;
}

// "a.b.c=value" -> j["a"]["b"]["c"] = value; returns the top-level key.
std::string apply_set(json& j, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("--set '" + assignment + "': expected key=value (e.g. --set rope_theta=10000)");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // a bare word is a string
  json* node = &j;
  size_t start = 0;
  for (;;) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw InputError("--set '" + assignment + "': empty component in key '" + key + "'");
    if (!node->is_object()) throw InputError("--set '" + assignment + "': '" + key.substr(0, start - 1) + "' is not an object");
    node = &(*node)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  *node = std::move(value);
  return key.substr(0, key.find('.'));
}

}  // namespace

std::vector<std::string> synth_preset_names() { return {"tiny", "tiny-chat", "gpt-oss-20b", "gpt-oss-120b"}; }

ModelConfig synth_preset(const std::string& name) {
  ModelConfig c = gpt_oss_base();
  if (name == "gpt-oss-20b") {
    c.num_hidden_layers = 24;
    c.num_local_experts = 32;
  } else if (name == "gpt-oss-120b") {
    c.num_hidden_layers = 36;
    c.num_local_experts = 128;
  } else if (name == "tiny") {  // the shape checked against transformers in gpt-oss.md §11
    c.num_hidden_layers = 3;
    c.hidden_size = 256;
    c.intermediate_size = 192;
    c.num_local_experts = 8;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 2;
    c.vocab_size = 1000;
    c.sliding_window = 8;
    c.eos_token_ids.clear();  // the harmony ids lie outside a 1000-token vocabulary
    c.pad_token_id = -1;
  } else if (name == "tiny-chat") {  // the full o200k_harmony vocabulary, so text and chat prompts tokenize into it
    c.num_hidden_layers = 3;
    c.hidden_size = 64;
    c.intermediate_size = 64;
    c.num_local_experts = 8;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.sliding_window = 8;
  } else {
    std::string names;
    for (const std::string& n : synth_preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw InputError("unknown preset '" + name + "' (presets: " + names + ")");
  }
  alternate_layer_types(c);
  return c;
}

SynthConfig resolve_synth_config(const SynthConfigRequest& request) {
  const ModelConfig preset = synth_preset(request.preset);
  json j = model_config_to_json(preset);
  std::set<std::string> named;  // top-level keys the request sets explicitly

  if (request.expert_format) {
    ModelConfig with_format = preset;
    with_format.expert_format = *request.expert_format;
    const json reference = model_config_to_json(with_format);
    if (reference.contains("quantization_config")) j["quantization_config"] = reference["quantization_config"];
    else j.erase("quantization_config");
    named.insert("quantization_config");
  }
  for (const auto& [key, value] : request.fields) {
    j[key] = value;
    named.insert(key);
  }
  for (const auto& path : request.config_json_files) {
    const json patch = read_json_object(path);
    j.merge_patch(patch);
    for (auto it = patch.begin(); it != patch.end(); ++it) named.insert(it.key());
  }
  for (const std::string& s : request.sets) named.insert(apply_set(j, s));

  // Keep what the request did not name consistent with what it did.
  if (!named.count("layer_types") && j.contains("num_hidden_layers") && j["num_hidden_layers"].is_number_integer() &&
      j["num_hidden_layers"].get<int64_t>() > 0 && j["num_hidden_layers"].get<int64_t>() <= 1024) {
    json types = json::array();
    for (int64_t i = 0; i < j["num_hidden_layers"].get<int64_t>(); ++i)
      types.push_back(layer_type_name(i % 2 == 0 ? LayerType::SlidingAttention : LayerType::FullAttention));
    j["layer_types"] = types;
  }
  if (named.count("num_experts_per_tok") && !named.count("experts_per_token")) j["experts_per_token"] = j["num_experts_per_tok"];
  if (named.count("experts_per_token") && !named.count("num_experts_per_tok")) j["num_experts_per_tok"] = j["experts_per_token"];
  if (j.contains("vocab_size") && j["vocab_size"].is_number_integer()) {
    const int64_t vocab = j["vocab_size"].get<int64_t>();
    auto fits = [&](const json& id) { return id.is_number_integer() && id.get<int64_t>() < vocab; };
    if (!named.count("pad_token_id") && j.contains("pad_token_id") && !fits(j["pad_token_id"])) j.erase("pad_token_id");
    if (!named.count("eos_token_id") && j.contains("eos_token_id")) {
      json& eos = j["eos_token_id"];
      if (eos.is_array()) {
        json kept = json::array();
        for (const json& id : eos)
          if (fits(id)) kept.push_back(id);
        eos = kept;
      }
      if ((eos.is_array() && eos.empty()) || (!eos.is_array() && !fits(eos))) j.erase("eos_token_id");
    }
  }

  SynthConfig out;
  out.config = parse_model_config(j, "synthetic checkpoint config (preset " + request.preset + " with overrides)");
  out.document = std::move(j);
  return out;
}

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  static const std::pair<const char*, double> kUnits[] = {{"", 1},      {"B", 1},         {"kB", 1e3},     {"KB", 1e3},
                                                          {"MB", 1e6},  {"GB", 1e9},      {"TB", 1e12},    {"KiB", 1024.0},
                                                          {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used > 0 && text[0] != '-' && text[0] != '+') {
    const std::string unit = text.substr(used);
    for (const auto& [name, factor] : kUnits) {
      if (unit != name) continue;
      const double bytes = number * factor;
      if (std::isfinite(bytes) && bytes >= 1 && bytes < 1.8e19) return static_cast<uint64_t>(bytes);
    }
  }
  throw InputError(what + " '" + text + "': expected a positive byte count such as 4800000000, 4.8GB or 512MiB");
}

json generation_config_json(const ModelConfig& c) {
  json g;
  if (kBosToken < c.vocab_size) g["bos_token_id"] = kBosToken;
  g["do_sample"] = true;
  json eos = json::array();
  for (int64_t id : {kReturnToken, kPadToken, kCallToken})
    if (id < c.vocab_size) eos.push_back(id);
  if (!eos.empty()) g["eos_token_id"] = eos;
  if (kPadToken < c.vocab_size) g["pad_token_id"] = kPadToken;
  g["transformers_version"] = "4.55.0.dev0";
  return g;
}

}  // namespace ossrun::synth
