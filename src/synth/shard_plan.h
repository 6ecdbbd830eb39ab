// How a checkpoint's tensors are split into safetensors shards, laid out exactly as the published gpt-oss
// checkpoints are (gpt-oss.md §2.3):
//  - key order: transformers' converter walks the original checkpoint's tensor names in sorted order
//    ("block.0.attn.norm.scale", ..., "block.10...", ..., "embedding.weight", "norm.scale",
//    "unembedding.weight"; a fused qkv becomes q, k, v) and fills shards greedily: a tensor that would take
//    the shard past the cap (4.8 GB) starts the next one;
//  - names model-00000-of-0000N.safetensors, zero-based, N = the LAST index;
//  - inside a shard, safetensors' own order: BF16 tensors before U8 ones, each by name; the header is compact
//    JSON in data order with no __metadata__, padded with spaces to a multiple of 8.
// For the 20b shape this reproduces the published files to the byte in size (4,792,272,488 + 4,798,702,184 +
// 4,170,342,232).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/model/tensor_specs.h"

namespace ossrun::synth {

constexpr uint64_t kDefaultMaxShardBytes = 4'800'000'000;  // transformers' converter: 4.8 GB

struct ShardTensor {
  size_t spec = 0;     // index into the specs the plan was made from
  uint64_t begin = 0;  // data_offsets in the shard's data section
  uint64_t end = 0;
};

struct ShardFile {
  std::string name;                  // model-0000i-of-0000N.safetensors
  std::string header;                // the JSON header, padded; the file starts with its length as u64 LE
  std::vector<ShardTensor> tensors;  // in data order
  uint64_t data_bytes = 0;

  uint64_t data_offset() const { return 8 + header.size(); }  // where the data section starts in the file
  uint64_t file_size() const { return data_offset() + data_bytes; }
};

struct ShardPlan {
  std::vector<ShardFile> files;
  uint64_t total_size = 0;  // sum of tensor bytes (the index's metadata.total_size)

  // model.safetensors.index.json: {"metadata": {"total_size"}, "weight_map": {name: file}} in key order.
  nlohmann::ordered_json index_json(const std::vector<TensorSpec>& specs) const;
};

// The order transformers' converter wrote the tensors in (see above). Throws std::logic_error for a name that
// is not a gpt-oss tensor.
std::vector<size_t> published_key_order(const std::vector<TensorSpec>& specs);

// Greedy sharding in published key order. max_shard_bytes must be positive; a tensor larger than the cap gets
// a shard of its own.
ShardPlan plan_shards(const std::vector<TensorSpec>& specs, uint64_t max_shard_bytes);

}  // namespace ossrun::synth
