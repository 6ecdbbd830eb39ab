// attention_prefill: the two kernels (SIMT f32, and tensor cores), then the launcher.
//
// attention_prefill_bf16_kernel (SIMT, f32): CTA (query block, KV head g) of kThreads threads; thread r owns
// row r = (query r / G, query head r % G of the group), so a CTA covers kThreads / G queries. The query row
// (pre-scaled into log2 units) and its output accumulator live in registers. Tiles of kTile keys and values
// come into shared memory by cp.async; every thread then reads the same key at the same time (broadcast
// reads, no bank conflicts), scores kSub keys, rescales its accumulator once per kSub keys if the max grew,
// and adds the p-weighted value rows. Keys outside a row's causal window get no weight.
#include <algorithm>
#include <cmath>
#include <string>

#include <cuda_bf16.h>

#include "gpu_kernels/attention_device.cuh"
#include "gpu_kernels/attention_prefill.cuh"
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
constexpr int kTile = 64;  // keys per shared-memory tile
constexpr int kSub = 16;   // keys scored before the running max is updated

struct PrefillArgs {
  int n, pos0, G, n_heads, n_kv_heads, window, capacity, queries_per_cta;
  float scale_log2;  // scale * log2(e)
};

template <int D>
__global__ void __launch_bounds__(kThreads)
    attention_prefill_bf16_kernel(const float* __restrict__ q, const uint16_t* __restrict__ k_cache,
                                  const uint16_t* __restrict__ v_cache, const float* __restrict__ sinks,
                                  PrefillArgs a, float* __restrict__ out) {
  __shared__ __align__(16) uint16_t kt[kTile * D];  // (kTile, D) bf16
  __shared__ __align__(16) uint16_t vt[kTile * D];
  const int g = blockIdx.y, tid = threadIdx.x;
  const int q_begin = blockIdx.x * a.queries_per_cta;
  const int q_end = min(a.n, q_begin + a.queries_per_cta);
  const int qi = q_begin + tid / a.G, head = g * a.G + tid % a.G;
  const bool active = tid < a.queries_per_cta * a.G && qi < q_end;
  const int i = a.pos0 + qi;                   // this row's position
  const int lo = first_visible_key(i, a.window);  // its keys: [lo, i]

  float qr[D], acc[D];
  float m = -INFINITY, l = 0.0f;
  if (active) {
    const float4* q4 = reinterpret_cast<const float4*>(q + (static_cast<long long>(qi) * a.n_heads + head) * D);
#pragma unroll
    for (int c = 0; c < D / 4; ++c) {
      const float4 x = q4[c];
      qr[4 * c] = x.x * a.scale_log2;
      qr[4 * c + 1] = x.y * a.scale_log2;
      qr[4 * c + 2] = x.z * a.scale_log2;
      qr[4 * c + 3] = x.w * a.scale_log2;
    }
  }
#pragma unroll
  for (int c = 0; c < D; ++c) acc[c] = 0.0f;

  const long long row_stride = static_cast<long long>(a.n_kv_heads) * D;  // bf16 per cache row
  const int j_first = first_visible_key(a.pos0 + q_begin, a.window), j_last = a.pos0 + q_end - 1;
  for (int jt = j_first; jt <= j_last; jt += kTile) {
    const int nt = min(kTile, j_last + 1 - jt);
    __syncthreads();  // the previous tile is no longer read
    for (int c = tid; c < nt * (D / 8); c += kThreads) {
      const int t = c / (D / 8), part = c % (D / 8);
      const long long src = ((jt + t) % a.capacity) * row_stride + g * D + part * 8;
      cp_async16(kt + t * D + part * 8, k_cache + src);
      cp_async16(vt + t * D + part * 8, v_cache + src);
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    if (!active) continue;
    // This row's keys in the tile: [t_lo, t_hi).
    const int t_lo = max(0, lo - jt), t_hi = min(nt, i + 1 - jt);
    for (int tb = t_lo; tb < t_hi; tb += kSub) {
      float s[kSub];
      float bm = -INFINITY;
#pragma unroll
      for (int u = 0; u < kSub; ++u) {
        const int t = tb + u;
        float dot = 0.0f;
        if (t < t_hi) {
#pragma unroll
          for (int c = 0; c < D / 8; ++c) {
            float kf[8];
            bf16x8_to_float(*reinterpret_cast<const uint4*>(kt + t * D + c * 8), kf);
#pragma unroll
            for (int e = 0; e < 8; ++e) dot = fmaf(qr[8 * c + e], kf[e], dot);
          }
        }
        s[u] = t < t_hi ? dot : -INFINITY;
        bm = fmaxf(bm, s[u]);
      }
      if (bm > m) {
        const float r = exp2f(m - bm);  // 0 on the first keys (m = -inf)
        l *= r;
#pragma unroll
        for (int c = 0; c < D; ++c) acc[c] *= r;
        m = bm;
      }
#pragma unroll
      for (int u = 0; u < kSub; ++u) {
        const int t = tb + u;
        if (t < t_hi) {
          const float p = exp2f(s[u] - m);
          l += p;
#pragma unroll
          for (int c = 0; c < D / 8; ++c) {
            float vf[8];
            bf16x8_to_float(*reinterpret_cast<const uint4*>(vt + t * D + c * 8), vf);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[8 * c + e] = fmaf(p, vf[e], acc[8 * c + e]);
          }
        }
      }
    }
  }
  if (!active) return;
  // The sink joins the denominator only: out = acc 2^(m - M) / (2^(sink - M) + l 2^(m - M)).
  const float sink = sinks[head] * kLog2e;
  const float M = fmaxf(m, sink), w = exp2f(m - M);
  const float inv = w / (exp2f(sink - M) + l * w);
  float4* o4 = reinterpret_cast<float4*>(out + (static_cast<long long>(qi) * a.n_heads + head) * D);
#pragma unroll
  for (int c = 0; c < D / 4; ++c)
    o4[c] = make_float4(acc[4 * c] * inv, acc[4 * c + 1] * inv, acc[4 * c + 2] * inv, acc[4 * c + 3] * inv);
}

// attention_prefill_bf16_mma_kernel (tensor cores, mma.sync m16n8k16 bf16 -> f32, sm_80+): CTA (query block,
// KV head g) of kThreads threads; warp w owns rows 16w .. 16w+15 of the block's rows (query r / G, query
// head r % G), kMmaRows rows in all. Per tile of kTile keys: S = Q K^T, masked online softmax on the
// accumulator fragments, O += P V. K and V are exact bf16; q and p are not, so each is split into
// hi + lo bf16 halves (hi = bf16(x), lo = bf16(x - hi), about 16 significant bits together) and both
// halves are multiplied: the error stays near f32's, twice the tensor work.
constexpr int kMmaRows = 4 * 16;

__device__ __forceinline__ void mma_bf16_16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// x and y (x in the low half) as bf16x2 hi and lo words with hi + lo ~= (x, y).
__device__ __forceinline__ void split_bf16x2(float x, float y, uint32_t& hi, uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  const __nv_bfloat162 r = __floats2bfloat162_rn(x - __low2float(h), y - __high2float(h));
  hi = *reinterpret_cast<const uint32_t*>(&h);
  lo = *reinterpret_cast<const uint32_t*>(&r);
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    attention_prefill_bf16_mma_kernel(const float* __restrict__ q, const uint16_t* __restrict__ k_cache,
                                      const uint16_t* __restrict__ v_cache, const float* __restrict__ sinks,
                                      PrefillArgs a, float* __restrict__ out) {
  constexpr int KS = D + 8;  // padded row stride in bf16: the fragment loads below hit 32 different banks
  __shared__ __align__(16) uint16_t kt[kTile * KS];  // (kTile, KS) bf16
  __shared__ __align__(16) uint16_t vt[kTile * KS];
  const int g = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, quad = lane & 3, grp = lane >> 2;
  const int q_begin = blockIdx.x * a.queries_per_cta;
  const int q_end = min(a.n, q_begin + a.queries_per_cta);

  // This lane's two rows: fragment rows grp and grp + 8 of the warp's 16.
  bool act[2];
  int qi[2], head[2], ipos[2], lo[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = 16 * warp + grp + 8 * r;
    qi[r] = q_begin + row / a.G;
    head[r] = g * a.G + row % a.G;
    act[r] = row < a.queries_per_cta * a.G && qi[r] < q_end;
    ipos[r] = a.pos0 + qi[r];
    lo[r] = first_visible_key(ipos[r], a.window);
  }
  // Q as A fragments (pre-scaled into log2 units), hi and lo halves: k-step ks, registers 0..3.
  uint32_t qh[D / 16][4], ql[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks)
#pragma unroll
    for (int reg = 0; reg < 4; ++reg) {
      const int r = reg & 1, col = ks * 16 + 2 * quad + (reg >> 1) * 8;
      float2 x = make_float2(0.0f, 0.0f);
      if (act[r]) x = *reinterpret_cast<const float2*>(q + (static_cast<long long>(qi[r]) * a.n_heads + head[r]) * D + col);
      split_bf16x2(x.x * a.scale_log2, x.y * a.scale_log2, qh[ks][reg], ql[ks][reg]);
    }

  float o[D / 8][4];
#pragma unroll
  for (int dn = 0; dn < D / 8; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // l: this lane's part of the row sum

  const long long row_stride = static_cast<long long>(a.n_kv_heads) * D;
  const int j_first = first_visible_key(a.pos0 + q_begin, a.window), j_last = a.pos0 + q_end - 1;
  for (int jt = j_first; jt <= j_last; jt += kTile) {
    const int nt = min(kTile, j_last + 1 - jt);
    __syncthreads();
    for (int c = tid; c < kTile * (D / 8); c += kThreads) {
      const int t = c / (D / 8), part = c % (D / 8);
      if (t < nt) {
        const long long src = ((jt + t) % a.capacity) * row_stride + g * D + part * 8;
        cp_async16(kt + t * KS + part * 8, k_cache + src);
        cp_async16(vt + t * KS + part * 8, v_cache + src);
      } else {  // zeros past the last key: masked scores must not meet NaN or inf in V
        *reinterpret_cast<uint4*>(kt + t * KS + part * 8) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4*>(vt + t * KS + part * 8) = make_uint4(0, 0, 0, 0);
      }
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();

    // S = Q K^T: (16 rows, kTile keys) as kTile/8 accumulator tiles.
    float sc[kTile / 8][4];
#pragma unroll
    for (int n8 = 0; n8 < kTile / 8; ++n8) {
      sc[n8][0] = sc[n8][1] = sc[n8][2] = sc[n8][3] = 0.0f;
      const uint16_t* krow = kt + (n8 * 8 + grp) * KS + 2 * quad;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + ks * 16);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + ks * 16 + 8);
        mma_bf16_16816(sc[n8], qh[ks], b0, b1);
        mma_bf16_16816(sc[n8], ql[ks], b0, b1);
      }
    }
    // Mask, then the online softmax of each of the lane's two rows (a row spans the 4 lanes of a quad).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int n8 = 0; n8 < kTile / 8; ++n8)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = jt + n8 * 8 + 2 * quad + e;
          const bool ok = act[r] && j >= lo[r] && j <= ipos[r] && j - jt < nt;
          float& s = sc[n8][2 * r + e];
          s = ok ? s : -INFINITY;
          mx = fmaxf(mx, s);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[r], mx);
      const bool none = m_new == -INFINITY;  // no visible key so far
      const float rescale = none ? 1.0f : exp2f(m[r] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int n8 = 0; n8 < kTile / 8; ++n8)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& s = sc[n8][2 * r + e];
          s = none ? 0.0f : exp2f(s - m_new);
          sum += s;
        }
      l[r] = l[r] * rescale + sum;
      m[r] = m_new;
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) o[dn][2 * r] *= rescale, o[dn][2 * r + 1] *= rescale;
    }
    // O += P V, 16 keys per k-step; P's accumulator layout is the A fragment layout of the next product.
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      uint32_t ph[4], pl[4];
      split_bf16x2(sc[2 * kk][0], sc[2 * kk][1], ph[0], pl[0]);
      split_bf16x2(sc[2 * kk][2], sc[2 * kk][3], ph[1], pl[1]);
      split_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1], ph[2], pl[2]);
      split_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3], ph[3], pl[3]);
      const uint16_t* v0 = vt + (kk * 16 + 2 * quad) * KS + grp;
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) {
        const uint16_t* vp = v0 + dn * 8;
        const uint32_t b0 = vp[0] | static_cast<uint32_t>(vp[KS]) << 16;
        const uint32_t b1 = vp[8 * KS] | static_cast<uint32_t>(vp[9 * KS]) << 16;
        mma_bf16_16816(o[dn], ph, b0, b1);
        mma_bf16_16816(o[dn], pl, b0, b1);
      }
    }
  }
  // The sink joins the denominator only: out = O 2^(m - M) / (2^(sink - M) + l 2^(m - M)).
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (!act[r]) continue;
    const float sink = sinks[head[r]] * kLog2e;
    const float M = fmaxf(m[r], sink), w = exp2f(m[r] - M);
    const float inv = w / (exp2f(sink - M) + sum * w);
    float* orow = out + (static_cast<long long>(qi[r]) * a.n_heads + head[r]) * D + 2 * quad;
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn)
      *reinterpret_cast<float2*>(orow + dn * 8) = make_float2(o[dn][2 * r] * inv, o[dn][2 * r + 1] * inv);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void attention_prefill(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const float* sinks, int n,
                       int pos0, const AttnShape& s, float* out, cudaStream_t stream, AttentionPrefillKernel kernel) {
  validate_attn_shape(s, "attention_prefill");
  if (n < 0 || pos0 < 0)
    throw InputError("attention_prefill: n = " + std::to_string(n) + ", pos0 = " + std::to_string(pos0) +
                     "; both must be non-negative");
  if (n == 0) return;
  const long long end = static_cast<long long>(pos0) + n;  // one past the last position
  const long long span = s.window > 0 ? std::min(end, static_cast<long long>(s.window) - 1 + n) : end;
  if (span > s.capacity)
    throw InputError("attention_prefill: positions " + std::to_string(pos0) + " .. " + std::to_string(end - 1) +
                     " need " + std::to_string(span) + " cache rows at once; the cache has " +
                     std::to_string(s.capacity));
  if (!q || !k_cache || !v_cache || !sinks || !out) throw InputError("attention_prefill: null pointer");
  if (!aligned16(q) || !aligned16(out) || !aligned16(k_cache) || !aligned16(v_cache))
    throw InputError("attention_prefill: q, out and the caches must be 16-byte aligned");
  const int G = s.n_heads / s.n_kv_heads;
  const bool mma = kernel == AttentionPrefillKernel::Mma;
  const int rows = mma ? kMmaRows : kThreads;  // (query, query head) rows per CTA
  const PrefillArgs a{n, pos0, G, s.n_heads, s.n_kv_heads, s.window, s.capacity, rows / G, s.scale * kLog2e};
  const dim3 grid((n + a.queries_per_cta - 1) / a.queries_per_cta, s.n_kv_heads);
  attention_device::dispatch_head_dim(s.head_dim, "attention_prefill", [&](auto d) {
    constexpr int D = decltype(d)::value;
    if (mma)
      attention_prefill_bf16_mma_kernel<D><<<grid, kThreads, 0, stream>>>(q, k_cache, v_cache, sinks, a, out);
    else
      attention_prefill_bf16_kernel<D><<<grid, kThreads, 0, stream>>>(q, k_cache, v_cache, sinks, a, out);
    OSSRUN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ossrun::gpu
