// attention_decode: one query against the bf16 KV cache of one layer (gpt-oss.md §5.2: GQA, causal or
// sliding window, sinks in the softmax denominator), written for CUDA graphs: the query's position is read
// on the device, so one captured launch serves every decode step.
//
// Flash-decoding: the visible keys are split into up to ws.splits() contiguous chunks; CTA (chunk, KV head)
// reads each of its keys' K and V rows once for all the query heads of the group and leaves a partial
// softmax state (max, sum, unnormalized output) per query head; a second kernel merges the chunks and the
// sink. The chunk size is derived on the device from the position (at least kDecodeMinKeysPerSplit keys), so
// a long context spreads over the whole GPU and CTAs past the live chunks exit at once.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/kv_cache.cuh"

namespace ossrun::gpu {

constexpr int kDecodeMinKeysPerSplit = 64;

// The partial softmax states of the split keys. Sized for the largest shape and context it will serve; the
// number of splits is fixed here (from the device's SM count and max_ctx), never at launch.
class AttentionDecodeWorkspace {
 public:
  AttentionDecodeWorkspace(const AttnShape& largest, int max_ctx);

  int splits() const { return splits_; }
  int n_heads() const { return n_heads_; }
  int head_dim() const { return head_dim_; }
  float* partials() const { return partials_.get(); }

 private:
  int n_heads_ = 0, head_dim_ = 0, splits_ = 0;
  DeviceBuffer<float> partials_;  // (n_heads, splits, head_dim + 2) f32: max (log2 units), sum, output
};

// q: (n_heads*head_dim) f32 at position *pos (device int32); its own key is already in the cache.
// k_cache/v_cache: (capacity, n_kv_heads, head_dim) bf16; sinks: (n_heads) f32; out: (n_heads*head_dim) f32.
// q and the caches 16-byte aligned. A *pos the cache cannot serve (negative, or >= capacity on a full layer)
// makes out NaN. Throws InputError (before any launch) for shapes the kernels or the workspace cannot take.
void attention_decode(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const float* sinks,
                      const int32_t* pos, const AttnShape& s, float* out, AttentionDecodeWorkspace& ws,
                      cudaStream_t stream);

}  // namespace ossrun::gpu
