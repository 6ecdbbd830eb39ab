// attention_decode: the split-keys kernel, the merge kernel, then the workspace and the launcher.
//
// attention_decode_bf16_kernel, CTA (split, KV head g), kThreads threads, tiles of kTile keys:
//   1. cp.async brings the tile's K rows (padded, see kKStride) and V rows into shared memory;
//   2. each thread scores two keys against half of the G query heads of the group (q in shared memory,
//      pre-scaled into log2 units, read as broadcasts): S (G, kTile);
//   3. warp w updates the online softmax of heads w, w + 4, ... (max, rescale factor, p = exp2(S - max));
//   4. the threads share the G x head_dim outputs, each adding p-weighted V rows to its own accumulators.
// Each K and V row is read from global memory once per group of query heads.
#include <algorithm>
#include <cmath>
#include <string>

#include "gpu_kernels/attention_decode.cuh"
#include "gpu_kernels/attention_device.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using attention_device::bf16x8_to_float;
using attention_device::cp_async16;
using attention_device::cp_async_commit;
using attention_device::cp_async_wait_all;
using attention_device::first_visible_key;
using attention_device::kLog2e;

constexpr int kThreads = 128;
constexpr int kTile = kThreads;         // keys per tile: two per thread (and half the heads) when scoring
constexpr int kScoreStride = kTile + 4; // floats per head row of S (keeps later sections 16-byte aligned)
constexpr int kCtasPerSmTarget = 4;     // splits aim at this many CTAs per SM over all KV heads
constexpr int kMaxSplits = 1024;        // keeps the merge kernel's shared memory (2 floats a split) small

// Padded K row stride in bf16: 16-byte reads of consecutive rows then fall in different banks.
template <int D>
constexpr int kKStride = D + 8;

// Dynamic shared memory of the split kernel for G query heads per KV head.
template <int D>
constexpr size_t decode_smem_bytes(int G) {
  return sizeof(float) * (2 * G * D + G * kScoreStride + 3 * kAttnMaxGroup) +
         sizeof(uint16_t) * (kTile * kKStride<D> + kTile * D);
}

struct DecodeArgs {
  int G, n_kv_heads, window, capacity, splits;
  float scale_log2;  // scale * log2(e)
};

// The keys of position pos: [first, pos]; chunk size and the number of live chunks. False when the cache
// cannot serve pos.
struct KeySplit {
  int first, per, live;
};
__device__ __forceinline__ bool split_keys(int pos, int window, int capacity, int splits, KeySplit& ks) {
  if (pos < 0 || (window == 0 && pos >= capacity)) return false;
  ks.first = first_visible_key(pos, window);
  const int keys = pos + 1 - ks.first;
  const int even = (keys + splits - 1) / splits;
  ks.per = even > kDecodeMinKeysPerSplit ? even : kDecodeMinKeysPerSplit;
  ks.live = (keys + ks.per - 1) / ks.per;
  return true;
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    attention_decode_bf16_kernel(const float* __restrict__ q, const uint16_t* __restrict__ k_cache,
                                 const uint16_t* __restrict__ v_cache, const int32_t* __restrict__ pos_ptr,
                                 DecodeArgs a, float* __restrict__ partials) {
  const int split = blockIdx.x, g = blockIdx.y, tid = threadIdx.x, G = a.G;
  const int pos = *pos_ptr;
  KeySplit ks;
  if (!split_keys(pos, a.window, a.capacity, a.splits, ks) || split >= ks.live) return;
  const int j0 = ks.first + split * ks.per;
  const int j1 = min(pos + 1, j0 + ks.per);

  extern __shared__ __align__(16) float smem[];
  float* qs = smem;                         // (G, D) pre-scaled query heads of the group
  float* acc = qs + G * D;                  // (G, D) unnormalized outputs
  float* S = acc + G * D;                   // (G, kScoreStride) scores, then p
  float* m = S + G * kScoreStride;          // (G) running max, log2 units
  float* l = m + kAttnMaxGroup;             // (G) running sum of p
  float* r = l + kAttnMaxGroup;             // (G) this tile's rescale factor
  uint16_t* kt = reinterpret_cast<uint16_t*>(r + kAttnMaxGroup);  // (kTile, kKStride) bf16
  uint16_t* vt = kt + kTile * kKStride<D>;                         // (kTile, D) bf16

  const float* qg = q + static_cast<long long>(g) * G * D;
  for (int i = tid; i < G * D; i += kThreads) {
    qs[i] = qg[i] * a.scale_log2;
    acc[i] = 0.0f;
  }
  if (tid < G) m[tid] = -INFINITY, l[tid] = 0.0f;
  const long long row_stride = static_cast<long long>(a.n_kv_heads) * D;  // bf16 per cache row

  for (int jt = j0; jt < j1; jt += kTile) {
    const int nt = min(kTile, j1 - jt);
    for (int c = tid; c < nt * (D / 8); c += kThreads) {
      const int t = c / (D / 8), part = c % (D / 8);
      const long long src = ((jt + t) % a.capacity) * row_stride + g * D + part * 8;
      cp_async16(kt + t * kKStride<D> + part * 8, k_cache + src);
      cp_async16(vt + t * D + part * 8, v_cache + src);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();  // also orders the q/acc/m/l initialization and the previous tile's V step

    // 2. Scores: thread tid takes keys t0 = tid % 64 and t0 + 64 against the heads h = tid / 64 (mod 2), so
    //    each q read from shared memory serves two keys.
    {
      const int t0 = tid & 63, parity = tid >> 6;
      float ka[D], kb[D];
#pragma unroll
      for (int c = 0; c < D / 8; ++c) {
        bf16x8_to_float(*reinterpret_cast<const uint4*>(kt + t0 * kKStride<D> + c * 8), ka + c * 8);
        bf16x8_to_float(*reinterpret_cast<const uint4*>(kt + (t0 + 64) * kKStride<D> + c * 8), kb + c * 8);
      }
      for (int h = parity; h < G; h += 2) {
        const float4* qh = reinterpret_cast<const float4*>(qs + h * D);
        float sa = 0.0f, sb = 0.0f;
#pragma unroll
        for (int c = 0; c < D / 4; ++c) {
          const float4 x = qh[c];
          sa = fmaf(x.x, ka[4 * c], sa);
          sb = fmaf(x.x, kb[4 * c], sb);
          sa = fmaf(x.y, ka[4 * c + 1], sa);
          sb = fmaf(x.y, kb[4 * c + 1], sb);
          sa = fmaf(x.z, ka[4 * c + 2], sa);
          sb = fmaf(x.z, kb[4 * c + 2], sb);
          sa = fmaf(x.w, ka[4 * c + 3], sa);
          sb = fmaf(x.w, kb[4 * c + 3], sb);
        }
        // Rows past the tile's keys hold stale or uninitialized data: their scores never enter.
        S[h * kScoreStride + t0] = t0 < nt ? sa : -INFINITY;
        S[h * kScoreStride + t0 + 64] = t0 + 64 < nt ? sb : -INFINITY;
      }
    }
    __syncthreads();

    // 3. Online softmax, one warp per head.
    const int lane = tid & 31;
    for (int h = tid >> 5; h < G; h += kThreads / 32) {
      float* sh = S + h * kScoreStride;
      float tmax = -INFINITY;
#pragma unroll
      for (int i = 0; i < kTile / 32; ++i) tmax = fmaxf(tmax, sh[lane + 32 * i]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
      const float m_new = fmaxf(m[h], tmax);  // finite: the tile has at least one key
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < kTile / 32; ++i) {
        const float p = exp2f(sh[lane + 32 * i] - m_new);
        sh[lane + 32 * i] = p;
        sum += p;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      __syncwarp();
      if (lane == 0) {
        const float rescale = exp2f(m[h] - m_new);  // 0 on the first tile (m = -inf)
        l[h] = l[h] * rescale + sum;
        m[h] = m_new;
        r[h] = rescale;
      }
    }
    __syncthreads();

    // 4. acc = acc * r + p V, four output columns per slot.
    for (int slot = tid; slot < G * D / 4; slot += kThreads) {
      const int h = slot / (D / 4), c4 = slot % (D / 4);
      const float* ph = S + h * kScoreStride;
      float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      auto add = [&](float p, int t) {
        const uint2 w = *reinterpret_cast<const uint2*>(vt + t * D + c4 * 4);
        sum.x = fmaf(p, __uint_as_float(w.x << 16), sum.x);
        sum.y = fmaf(p, __uint_as_float(w.x & 0xffff0000u), sum.y);
        sum.z = fmaf(p, __uint_as_float(w.y << 16), sum.z);
        sum.w = fmaf(p, __uint_as_float(w.y & 0xffff0000u), sum.w);
      };
      int t = 0;
#pragma unroll 2
      for (; t + 4 <= nt; t += 4) {  // p of four keys in one read
        const float4 p4 = *reinterpret_cast<const float4*>(ph + t);
        add(p4.x, t);
        add(p4.y, t + 1);
        add(p4.z, t + 2);
        add(p4.w, t + 3);
      }
      for (; t < nt; ++t) add(ph[t], t);
      float4* a4 = reinterpret_cast<float4*>(acc) + slot;
      const float rh = r[h];
      float4 cur = *a4;
      cur.x = fmaf(cur.x, rh, sum.x);
      cur.y = fmaf(cur.y, rh, sum.y);
      cur.z = fmaf(cur.z, rh, sum.z);
      cur.w = fmaf(cur.w, rh, sum.w);
      *a4 = cur;
    }
    __syncthreads();  // the next tile overwrites kt, vt and S
  }

  for (int i = tid; i < G * (D + 2); i += kThreads) {
    const int h = i / (D + 2), c = i % (D + 2);
    const float val = c == 0 ? m[h] : c == 1 ? l[h] : acc[h * D + c - 2];
    partials[(static_cast<long long>(g * G + h) * a.splits + split) * (D + 2) + c] = val;
  }
}

// Block h merges the live splits' states of query head h with its sink into out[h][:]. The loads are spread
// over the block so they are in flight together: thread s < live brings (max, sum) of split s to shared
// memory; warp 0 forms the weights; thread (group, c) then sums column c over the splits s = group mod
// kMergeGroups<D>, eight loads at a time, and the groups' sums are added.
constexpr int kMergeThreads = 256;
template <int D>
constexpr int kMergeGroups = kMergeThreads / D;

template <int D>
__global__ void __launch_bounds__(kMergeThreads)
    attention_decode_merge_kernel(const float* __restrict__ partials, const float* __restrict__ sinks,
                                  const int32_t* __restrict__ pos_ptr, DecodeArgs a, float* __restrict__ out) {
  extern __shared__ __align__(16) float msm[];
  float* w = msm;                                   // (splits) max, then weight 2^(m_s - M)
  float* l = w + a.splits;                          // (splits) sums
  float* part = l + a.splits;                       // (kMergeGroups, D) column sums per group
  float* den = part + kMergeGroups<D> * D;          // (1)
  const int h = blockIdx.x, tid = threadIdx.x;
  KeySplit ks;
  if (!split_keys(*pos_ptr, a.window, a.capacity, a.splits, ks)) {
    if (tid < D) out[h * D + tid] = NAN;  // a position the cache cannot serve: loud, never stale
    return;
  }
  const float* p = partials + static_cast<long long>(h) * a.splits * (D + 2);
  for (int s = tid; s < ks.live; s += kMergeThreads) w[s] = p[s * (D + 2)], l[s] = p[s * (D + 2) + 1];
  __syncthreads();
  if (tid < 32) {
    const float sink = sinks[h] * kLog2e;
    float M = sink;
    for (int s = tid; s < ks.live; s += 32) M = fmaxf(M, w[s]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    float sum = 0.0f;
    for (int s = tid; s < ks.live; s += 32) {
      const float ws = exp2f(w[s] - M);
      w[s] = ws;
      sum = fmaf(l[s], ws, sum);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (tid == 0) *den = exp2f(sink - M) + sum;
  }
  __syncthreads();
  const int group = tid / D, c = tid % D;
  float num = 0.0f;
  for (int s0 = group; s0 < ks.live; s0 += 8 * kMergeGroups<D>) {
    float v[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int s = s0 + u * kMergeGroups<D>;
      v[u] = s < ks.live ? p[s * (D + 2) + 2 + c] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int s = s0 + u * kMergeGroups<D>;
      if (s < ks.live) num = fmaf(v[u], w[s], num);
    }
  }
  part[group * D + c] = num;
  __syncthreads();
  if (tid < D) {
    float total = 0.0f;
    for (int g = 0; g < kMergeGroups<D>; ++g) total += part[g * D + tid];
    out[h * D + tid] = total / *den;
  }
}

template <int D>
size_t merge_smem_bytes(int splits) {
  return sizeof(float) * (2 * splits + kMergeGroups<D> * D + 1);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

AttentionDecodeWorkspace::AttentionDecodeWorkspace(const AttnShape& largest, int max_ctx) {
  validate_attn_shape(largest, "AttentionDecodeWorkspace");
  if (max_ctx <= 0) throw InputError("AttentionDecodeWorkspace: max_ctx " + std::to_string(max_ctx) + " must be positive");
  int device = 0, sms = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int wanted = (kCtasPerSmTarget * sms + largest.n_kv_heads - 1) / largest.n_kv_heads;
  const int useful = (max_ctx + kDecodeMinKeysPerSplit - 1) / kDecodeMinKeysPerSplit;
  splits_ = std::max(1, std::min({wanted, useful, kMaxSplits}));
  n_heads_ = largest.n_heads;
  head_dim_ = largest.head_dim;
  partials_ = DeviceBuffer<float>(static_cast<size_t>(n_heads_) * splits_ * (head_dim_ + 2));
  // Raised here, outside any graph capture, for the largest group.
  attention_device::dispatch_head_dim(largest.head_dim, "AttentionDecodeWorkspace", [](auto d) {
    constexpr int D = decltype(d)::value;
    OSSRUN_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(attention_decode_bf16_kernel<D>),
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(decode_smem_bytes<D>(kAttnMaxGroup))));
  });
}

void attention_decode(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const float* sinks,
                      const int32_t* pos, const AttnShape& s, float* out, AttentionDecodeWorkspace& ws,
                      cudaStream_t stream) {
  validate_attn_shape(s, "attention_decode");
  if (s.head_dim != ws.head_dim() || s.n_heads > ws.n_heads())
    throw InputError("attention_decode: shape (" + std::to_string(s.n_heads) + " heads of " +
                     std::to_string(s.head_dim) + ") does not fit the workspace (" + std::to_string(ws.n_heads()) +
                     " heads of " + std::to_string(ws.head_dim()) + ")");
  if (!q || !k_cache || !v_cache || !sinks || !pos || !out) throw InputError("attention_decode: null pointer");
  if (!aligned16(q) || !aligned16(k_cache) || !aligned16(v_cache))
    throw InputError("attention_decode: q and the caches must be 16-byte aligned");
  const DecodeArgs a{s.n_heads / s.n_kv_heads, s.n_kv_heads, s.window, s.capacity, ws.splits(), s.scale * kLog2e};
  attention_device::dispatch_head_dim(s.head_dim, "attention_decode", [&](auto d) {
    constexpr int D = decltype(d)::value;
    attention_decode_bf16_kernel<D><<<dim3(ws.splits(), s.n_kv_heads), kThreads, decode_smem_bytes<D>(a.G), stream>>>(
        q, k_cache, v_cache, pos, a, ws.partials());
    OSSRUN_CUDA_CHECK_LAUNCH();
    attention_decode_merge_kernel<D>
        <<<s.n_heads, kMergeThreads, merge_smem_bytes<D>(ws.splits()), stream>>>(ws.partials(), sinks, pos, a, out);
    OSSRUN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ossrun::gpu
