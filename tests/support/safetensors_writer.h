// Test-only writers of safetensors files and small checkpoint directories, independent of the synthetic
// checkpoint generator, so the reader's tests can craft valid files and then break them one defect at a time.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "src/model/config.h"
#include "src/model/dtype.h"

namespace ossrun::test {

struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes a well-formed safetensors file holding `tensors` in the given order.
void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& tensors);
// Writes exactly: 8-byte length of `header`, `header`, `data` (for malformed files).
void write_raw_safetensors(const std::filesystem::path& path, const std::string& header, const std::vector<uint8_t>& data);
// Writes arbitrary bytes.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);

// A small valid gpt-oss config: 2 layers, hidden 64, intermediate 64, 4 experts top-2, 4 query / 2 KV heads x 16.
ModelConfig micro_config(ExpertFormat format = ExpertFormat::MXFP4);

// Every tensor `c` needs, filled with a deterministic byte pattern; `edit` may change the list before writing.
std::vector<RawTensor> micro_tensors(const ModelConfig& c);

// Writes config.json and the tensors into `dir`: a single model.safetensors when shards == 1, else `shards`
// files plus model.safetensors.index.json.
void write_checkpoint(const std::filesystem::path& dir, const ModelConfig& c, const std::vector<RawTensor>& tensors,
                      int shards = 1);

}  // namespace ossrun::test
