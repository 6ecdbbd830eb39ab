#include "tests/support/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "src/model/tensor_specs.h"

namespace ossrun::test {

void write_raw_safetensors(const std::filesystem::path& path, const std::string& header, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const RawTensor& t : tensors) {
    uint64_t begin = data.size();
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  header["__metadata__"] = {{"format", "pt"}};
  write_raw_safetensors(path, header.dump(), data);
}

ModelConfig micro_config(ExpertFormat format) {
  ModelConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.num_local_experts = 4;
  c.num_experts_per_tok = 2;
  c.vocab_size = 100;
  c.sliding_window = 8;
  c.max_position_embeddings = 4096;
  c.layer_types = {LayerType::SlidingAttention, LayerType::FullAttention};
  c.expert_format = format;
  c.eos_token_ids = {2};
  return c;
}

std::vector<RawTensor> micro_tensors(const ModelConfig& c) {
  std::vector<RawTensor> out;
  uint32_t state = 12345;
  for (const TensorSpec& s : expected_tensors(c)) {
    RawTensor t{s.name, s.dtype, s.shape, std::vector<uint8_t>(s.nbytes())};
    for (auto& b : t.bytes) {
      state = state * 1664525u + 1013904223u;
      b = static_cast<uint8_t>(state >> 24);
    }
    out.push_back(std::move(t));
  }
  return out;
}

void write_checkpoint(const std::filesystem::path& dir, const ModelConfig& c, const std::vector<RawTensor>& tensors, int shards) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << model_config_to_json(c).dump(2);
  if (shards == 1) {
    write_safetensors(dir / "model.safetensors", tensors);
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  uint64_t total = 0;
  const size_t per = (tensors.size() + shards - 1) / shards;
  for (int s = 0; s < shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s, shards - 1);
    std::vector<RawTensor> part;
    for (size_t i = s * per; i < std::min(tensors.size(), (s + 1) * per); ++i) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].name] = name;
      total += tensors[i].bytes.size();
    }
    write_safetensors(dir / name, part);
  }
  index["metadata"]["total_size"] = total;
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

}  // namespace ossrun::test
