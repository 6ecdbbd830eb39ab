#include "src/model/checkpoint.h"

#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "src/model/error.h"
#include "src/model/json_file.h"
#include "src/model/tensor_specs.h"

namespace ossrun {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

// The shard file names the index maps tensors to, checked to be plain names inside the directory.
std::map<std::string, std::string> read_weight_map(const fs::path& index_path) {
  const json j = read_json_file(index_path);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw InputError(index_path.string() + ": has no \"weight_map\" object");
  std::map<std::string, std::string> map;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it->is_string()) throw InputError(index_path.string() + ": weight_map entry for '" + it.key() + "' is not a file name");
    std::string shard = it->get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw InputError(index_path.string() + ": weight_map names '" + shard + "' for tensor '" + it.key() +
                       "', which is not a file name in the checkpoint directory");
    map.emplace(it.key(), std::move(shard));
  }
  return map;
}

void check_against_spec(const TensorView& t, const TensorSpec& spec, const fs::path& file) {
  if (t.dtype != spec.dtype || t.shape != spec.shape) {
    TensorView want;
    want.dtype = spec.dtype;
    want.shape = spec.shape;
    throw InputError(file.string() + ": tensor '" + spec.name + "' is " + t.describe() + " but config.json implies " +
                     want.describe());
  }
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw InputError(dir.string() + ": not a directory (expected a Hugging Face checkpoint directory with config.json)");
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = dir;
  ck->config_ = load_model_config(dir / "config.json");
  ck->map_shards();
  ck->bind_weights();
  return ck;
}

void Checkpoint::map_shards() {
  const fs::path index_path = dir_ / kIndexFile;
  if (fs::exists(index_path)) {
    const auto weight_map = read_weight_map(index_path);
    std::map<std::string, const SafetensorsFile*> by_file;
    for (const auto& [tensor, file] : weight_map) {
      if (by_file.count(file)) continue;
      const fs::path p = dir_ / file;
      if (!fs::exists(p))
        throw InputError(index_path.string() + ": names shard '" + file + "' (for tensor '" + tensor + "'), which is not in " +
                         dir_.string());
      shards_.push_back(std::make_unique<SafetensorsFile>(p));
      by_file[file] = shards_.back().get();
    }
    for (const auto& [tensor, file] : weight_map) {
      const SafetensorsFile* shard = by_file.at(file);
      if (!shard->contains(tensor))
        throw InputError(index_path.string() + ": says tensor '" + tensor + "' is in " + file + ", but that shard has no such tensor");
      index_[tensor] = shard;
    }
    return;
  }
  const fs::path single = dir_ / kSingleFile;
  if (!fs::exists(single)) {
    int shards_seen = 0;
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".safetensors") ++shards_seen;
    throw InputError(dir_.string() + ": has neither " + kIndexFile + " nor " + kSingleFile +
                     (shards_seen ? " (found " + std::to_string(shards_seen) + " .safetensors files but no index naming them)" : ""));
  }
  shards_.push_back(std::make_unique<SafetensorsFile>(single));
  for (const auto& [name, entry] : shards_.back()->entries()) index_[name] = shards_.back().get();
}

TensorView Checkpoint::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw InputError(dir_.string() + ": no tensor named '" + name + "'");
  return it->second->view(name);
}

void Checkpoint::bind_weights() {
  const auto specs = expected_tensors(config_);
  std::unordered_map<std::string, TensorView> views;
  std::set<std::string> expected;
  for (const TensorSpec& spec : specs) {
    expected.insert(spec.name);
    auto it = index_.find(spec.name);
    if (it == index_.end()) {
      std::string hint;
      const bool has_bf16_experts = index_.count(layer_tensor_name(0, "mlp.experts.gate_up_proj")) != 0;
      const bool has_mxfp4_experts = index_.count(layer_tensor_name(0, "mlp.experts.gate_up_proj_blocks")) != 0;
      if (spec.component == Component::Experts && config_.expert_format == ExpertFormat::MXFP4 && has_bf16_experts)
        hint = " (config.json declares MXFP4 experts in quantization_config, but the files hold unquantized BF16 experts)";
      if (spec.component == Component::Experts && config_.expert_format == ExpertFormat::BF16 && has_mxfp4_experts)
        hint = " (the files hold MXFP4 experts, but config.json has no quantization_config {\"quant_method\": \"mxfp4\"})";
      TensorView want;
      want.dtype = spec.dtype;
      want.shape = spec.shape;
      throw InputError(dir_.string() + ": tensor '" + spec.name + "' is missing; config.json implies " + want.describe() + hint);
    }
    TensorView v = it->second->view(spec.name);
    check_against_spec(v, spec, it->second->path());
    views.emplace(spec.name, std::move(v));
  }
  for (const auto& [name, shard] : index_)
    if (!expected.count(name)) unused_.push_back(name);

  auto take = [&](const std::string& name) { return views.at(name); };
  weights_.embed = take("model.embed_tokens.weight");
  weights_.final_norm = take("model.norm.weight");
  weights_.lm_head = config_.tie_word_embeddings ? weights_.embed : take("lm_head.weight");
  weights_.layers.resize(config_.num_hidden_layers);
  for (int l = 0; l < config_.num_hidden_layers; ++l) {
    auto t = [&](const char* suffix) { return take(layer_tensor_name(l, suffix)); };
    LayerWeights& w = weights_.layers[l];
    w.input_norm = t("input_layernorm.weight");
    w.q_weight = t("self_attn.q_proj.weight");
    w.q_bias = t("self_attn.q_proj.bias");
    w.k_weight = t("self_attn.k_proj.weight");
    w.k_bias = t("self_attn.k_proj.bias");
    w.v_weight = t("self_attn.v_proj.weight");
    w.v_bias = t("self_attn.v_proj.bias");
    w.o_weight = t("self_attn.o_proj.weight");
    w.o_bias = t("self_attn.o_proj.bias");
    w.sinks = t("self_attn.sinks");
    w.post_attention_norm = t("post_attention_layernorm.weight");
    w.router_weight = t("mlp.router.weight");
    w.router_bias = t("mlp.router.bias");
    if (config_.expert_format == ExpertFormat::MXFP4) {
      w.gate_up_blocks = t("mlp.experts.gate_up_proj_blocks");
      w.gate_up_scales = t("mlp.experts.gate_up_proj_scales");
      w.down_blocks = t("mlp.experts.down_proj_blocks");
      w.down_scales = t("mlp.experts.down_proj_scales");
    } else {
      w.gate_up_weight = t("mlp.experts.gate_up_proj");
      w.down_weight = t("mlp.experts.down_proj");
    }
    w.gate_up_bias = t("mlp.experts.gate_up_proj_bias");
    w.down_bias = t("mlp.experts.down_proj_bias");
  }
}

}  // namespace ossrun
