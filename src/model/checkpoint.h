// A Hugging Face gpt-oss checkpoint directory: config.json, the safetensors shards (through
// model.safetensors.index.json, or a single model.safetensors), all memory-mapped read-only.
// Opening validates everything the model needs (presence, dtype and shape of every tensor against the
// config), so the typed weights it hands out are safe to read.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/model/config.h"
#include "src/model/safetensors.h"
#include "src/model/weights.h"

namespace ossrun {

class Checkpoint {
 public:
  // Throws InputError naming the file, the tensor and what is wrong.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

  // Any tensor by name (also ones the model does not use); throws InputError when absent.
  TensorView tensor(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Names present in the files that the model does not use (reported by inspect, otherwise ignored).
  const std::vector<std::string>& unused_tensors() const { return unused_; }

  ExpertSlice expert(int layer, int expert) const { return expert_slice(weights_, config_, layer, expert); }

 private:
  Checkpoint() = default;
  void map_shards();
  void bind_weights();

  std::filesystem::path dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> index_;  // tensor name -> shard holding it
  ModelWeights weights_;
  std::vector<std::string> unused_;
};

}  // namespace ossrun
