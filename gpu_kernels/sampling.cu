// DeviceSampler: the kernel (a persistent grid, phases apart by a software grid barrier), then the host side.
// The method is described in sampling.cuh.
//
// A prefix of the order (u desc, id asc) is held as (t, c): every token with u > t, and the c lowest-id tokens
// with u == t (c = kAllTies keeps them all). Cross-CTA data is read with __ldcg (L2, not the incoherent L1).
#include <algorithm>
#include <cmath>
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "gpu_kernels/sampling.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {

constexpr int kBuckets = 1024;  // 10 bits per radix level; u <= 0x3f800000, so u >> 20 < 1024

struct Histogram {
  unsigned count[kBuckets];
  unsigned long long mass[kBuckets];
};

// The histograms: level 0 over all tokens (shared by top-k and top-p), levels 1-2 of top-k, levels 1-2 of top-p.
enum HistogramIndex { kHistAll, kHistTopK1, kHistTopK2, kHistTopP1, kHistTopP2, kHistCount };

struct SamplerScratch {
  unsigned barrier_count;       // CTAs arrived at the current barrier; back to 0 when the last arrives
  unsigned barrier_generation;  // barriers completed, ever (wraps)
  unsigned long long argmax_key[kSamplerMaxCtas];  // per CTA: the ordered key of its largest logit
  unsigned bad[kSamplerMaxCtas];                   // per CTA: a NaN seen
  unsigned long long kept_mass[kSamplerMaxCtas];   // per CTA: mass of its tokens with u > t
  unsigned ties[kSamplerMaxCtas];                  // per CTA: its tokens with u == t
  Histogram hist[kHistCount];
};

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned long long kAllTies = ~0ull;

struct SampleArgs {
  const float* logits;
  long long vocab;
  DeviceSamplerParams p;
  double mass_scale;  // 2^s
  unsigned long long* step_counter;
  int32_t* token_out;
  uint32_t* keys;
  SamplerScratch* scratch;
};

// ---------------------------------------------------------------------------------------------------------
// Device helpers

// Ordered key of logit v at index i: larger value first, then the lower index; -0 == +0 (the CPU compares
// with >). A NaN is reported apart and ranks lowest.
__device__ __forceinline__ unsigned long long argmax_key(float v, long long i) {
  uint32_t b = __float_as_uint(v);
  if (v != v) return 0;
  if (b == 0x80000000u) b = 0;
  const uint32_t ordered = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<unsigned long long>(ordered) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
}

__device__ __forceinline__ unsigned long long fixed_mass(uint32_t u, double scale) {
  return __double2ull_rn(static_cast<double>(__uint_as_float(u)) * scale);
}

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
__device__ __forceinline__ T warp_inclusive_sum(T v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const T other = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += other;
  }
  return v;
}

// Exclusive prefix sum over the CTA in thread order; *total gets the sum. Deterministic (integers here).
template <typename T>
__device__ T block_exclusive_sum(T v, T* total) {
  __shared__ T warp_tot[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const T inc = warp_inclusive_sum(v);
  if (lane == 31) warp_tot[warp] = inc;
  __syncthreads();
  if (warp == 0) warp_tot[lane] = warp_inclusive_sum(warp_tot[lane]);
  __syncthreads();
  const T before = warp == 0 ? T(0) : warp_tot[warp - 1];
  *total = warp_tot[kWarps - 1];
  __syncthreads();  // warp_tot is reused by the next call
  return before + inc - v;
}

__device__ unsigned long long block_max(unsigned long long v) {
  __shared__ unsigned long long warp_max[kWarps];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const unsigned long long other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = v;
  __syncthreads();
  v = warp_max[0];
  for (int w = 1; w < kWarps; ++w) v = warp_max[w] > v ? warp_max[w] : v;
  __syncthreads();
  return v;
}

// All CTAs of the grid meet here; memory written before is visible after (through L2).
__device__ void grid_barrier(SamplerScratch* s) {
  __syncthreads();
  if (threadIdx.x == 0) {
    volatile unsigned* generation = &s->barrier_generation;
    const unsigned gen = *generation;  // cannot move on before this CTA arrives
    __threadfence();
    if (atomicAdd(&s->barrier_count, 1u) == gridDim.x - 1) {
      s->barrier_count = 0;
      __threadfence();
      atomicAdd(&s->barrier_generation, 1u);
    } else {
      while (*generation == gen) __nanosleep(32);
    }
    __threadfence();
  }
  __syncthreads();
}

// Adds the CTA's histogram of the tokens in [lo, hi) whose key matches `prefix` above bit shift + 10 (all of
// them when shift = 20) into `global`, by the 10-bit digit at `shift`. Own-thread keys: plain loads.
__device__ void add_histogram(const uint32_t* keys, long long lo, long long hi, int shift, uint32_t prefix,
                              double scale, Histogram* global, unsigned* s_count, unsigned long long* s_mass) {
  s_count[threadIdx.x] = 0;
  s_mass[threadIdx.x] = 0;
  __syncthreads();
  for (long long i = lo + threadIdx.x; i < hi; i += kThreads) {
    const uint32_t u = keys[i];
    if (shift == 20 || (u >> (shift + 10)) == prefix) {
      const uint32_t d = (u >> shift) & (kBuckets - 1);
      atomicAdd(&s_count[d], 1u);
      atomicAdd(&s_mass[d], fixed_mass(u, scale));
    }
  }
  __syncthreads();
  if (s_count[threadIdx.x] != 0) {
    atomicAdd(&global->count[threadIdx.x], s_count[threadIdx.x]);
    atomicAdd(&global->mass[threadIdx.x], s_mass[threadIdx.x]);
  }
}

// A radix-select step on a complete histogram: the bucket holding the element of 0-based rank `need` (by
// count) or the element where the running mass first reaches `need` (>= 1, by mass), counting from the top.
struct Bucket {
  uint32_t digit;
  unsigned long long above_count, above_mass;  // in the buckets above it
  unsigned long long count, mass;              // in it
};

__device__ Bucket select_bucket(const Histogram* h, bool by_mass, unsigned long long need) {
  __shared__ Bucket found;
  const uint32_t d = kBuckets - 1 - threadIdx.x;  // descending
  const unsigned long long c = __ldcg(&h->count[d]), m = __ldcg(&h->mass[d]);
  if (threadIdx.x == 0) found = Bucket{0, 0, 0, 0, 0};
  unsigned long long total;
  const unsigned long long above_c = block_exclusive_sum(c, &total);
  const unsigned long long above_m = block_exclusive_sum(m, &total);
  const bool here = by_mass ? (above_m < need && need <= above_m + m) : (above_c <= need && need < above_c + c);
  if (here) found = Bucket{d, above_c, above_m, c, m};
  __syncthreads();
  const Bucket b = found;
  __syncthreads();
  return b;
}

// The three levels of a radix select, level 0 on the complete all-token histogram. Returns the threshold t;
// *above_count / *above_mass get the totals of tokens with u > t, *need what is left of it inside t's ties.
__device__ uint32_t radix_select(SamplerScratch* s, const uint32_t* keys, long long lo, long long hi, double scale,
                                 bool by_mass, unsigned long long* need, Histogram* level1, Histogram* level2,
                                 unsigned long long* above_count, unsigned long long* above_mass,
                                 unsigned* s_count, unsigned long long* s_mass) {
  uint32_t t = 0;
  *above_count = *above_mass = 0;
  Histogram* levels[3] = {&s->hist[kHistAll], level1, level2};
  for (int level = 0; level < 3; ++level) {
    const int shift = 20 - 10 * level;
    if (level > 0) {
      add_histogram(keys, lo, hi, shift, t, scale, levels[level], s_count, s_mass);
      grid_barrier(s);
    }
    const Bucket b = select_bucket(levels[level], by_mass, *need);
    t = (t << 10) | b.digit;
    *above_count += b.above_count;
    *above_mass += b.above_mass;
    *need -= by_mass ? b.above_mass : b.above_count;
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Kernel

__global__ void __launch_bounds__(kThreads) device_sample_kernel(SampleArgs a) {
  __shared__ unsigned s_count[kBuckets];
  __shared__ unsigned long long s_mass[kBuckets];
  __shared__ int32_t s_token;
  SamplerScratch* s = a.scratch;
  const long long lo = a.vocab * blockIdx.x / gridDim.x, hi = a.vocab * (blockIdx.x + 1) / gridDim.x;

  // 1. Clear the histograms for this call; max, argmax and NaNs of this CTA's range.
  unsigned* hist_words = reinterpret_cast<unsigned*>(s->hist);
  constexpr long long kHistWords = sizeof(s->hist) / 4;
  for (long long i = static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x; i < kHistWords;
       i += static_cast<long long>(gridDim.x) * kThreads)
    hist_words[i] = 0;
  unsigned long long best = 0;
  bool nan = false;
  for (long long i = lo + threadIdx.x; i < hi; i += kThreads) {
    const float v = a.logits[i];
    nan |= v != v;
    const unsigned long long key = argmax_key(v, i);
    best = key > best ? key : best;
  }
  nan = __syncthreads_or(nan);
  best = block_max(best);
  if (threadIdx.x == 0) {
    s->argmax_key[blockIdx.x] = best;
    s->bad[blockIdx.x] = nan;
  }
  grid_barrier(s);

  // Every CTA reduces the partials to the same answer.
  const bool in = threadIdx.x < gridDim.x;
  nan = __syncthreads_or(in && __ldcg(&s->bad[threadIdx.x]));
  best = block_max(in ? __ldcg(&s->argmax_key[threadIdx.x]) : 0ull);
  const int32_t top = static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(best));
  const float max = nan ? 0.0f : a.logits[top];  // with a NaN, top may not be an index
  if (nan || !isfinite(max) || a.p.temperature == 0.0f) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      *a.token_out = nan || !isfinite(max) ? -1 : top;
      *a.step_counter += 1;
    }
    return;
  }

  // 2. Probabilities as the CPU computes them, their keys, and the all-token histogram.
  for (long long i = lo + threadIdx.x; i < hi; i += kThreads) {
    const float x = __fdiv_rn(__fsub_rn(a.logits[i], max), a.p.temperature);
    a.keys[i] = __float_as_uint(static_cast<float>(exp(static_cast<double>(x))));
  }
  add_histogram(a.keys, lo, hi, 20, 0, a.mass_scale, &s->hist[kHistAll], s_count, s_mass);
  grid_barrier(s);

  // 3. The kept prefix (t, c) and its mass.
  uint32_t t = 0;
  unsigned long long c = kAllTies, kept_mass = 0;
  if (a.p.top_k > 0 && a.p.top_k < a.vocab) {
    unsigned long long need = static_cast<unsigned long long>(a.p.top_k) - 1, above_count, above_mass;
    t = radix_select(s, a.keys, lo, hi, a.mass_scale, /*by_mass=*/false, &need, &s->hist[kHistTopK1],
                     &s->hist[kHistTopK2], &above_count, &above_mass, s_count, s_mass);
    c = need + 1;
    kept_mass = above_mass + c * fixed_mass(t, a.mass_scale);
  } else {
    unsigned long long total;
    block_exclusive_sum(__ldcg(&s->hist[kHistAll].mass[threadIdx.x]), &total);
    kept_mass = total;
  }
  if (a.p.top_p < 1.0f) {
    // The smallest prefix whose mass reaches top_p of the kept mass; it lies inside the top-k prefix.
    unsigned long long target = static_cast<unsigned long long>(ceil(static_cast<double>(a.p.top_p) * kept_mass));
    target = target < 1 ? 1 : target > kept_mass ? kept_mass : target;
    unsigned long long need = target, above_count, above_mass;
    const uint32_t tp = radix_select(s, a.keys, lo, hi, a.mass_scale, /*by_mass=*/true, &need, &s->hist[kHistTopP1],
                                     &s->hist[kHistTopP2], &above_count, &above_mass, s_count, s_mass);
    const unsigned long long m_t = fixed_mass(tp, a.mass_scale);  // > 0: t's bucket held mass
    const unsigned long long cp = (need + m_t - 1) / m_t;
    if (tp > t || (tp == t && cp < c)) t = tp, c = cp;
  }
  if (a.p.min_p > 0.0f) {
    const uint32_t floor_key = __float_as_uint(a.p.min_p);  // min_p * p(top), p(top) = 1
    if (floor_key > t) t = floor_key - 1, c = 0;
  }

  // 4. Per-CTA mass above t and ties at t, then CTA 0 draws.
  {
    unsigned long long mass = 0;
    unsigned n_ties = 0;
    for (long long i = lo + threadIdx.x; i < hi; i += kThreads) {
      const uint32_t u = a.keys[i];
      if (u > t) mass += fixed_mass(u, a.mass_scale);
      n_ties += u == t;
    }
    unsigned long long cta_mass;
    unsigned cta_ties;
    block_exclusive_sum(mass, &cta_mass);
    block_exclusive_sum(n_ties, &cta_ties);
    if (threadIdx.x == 0) {
      s->kept_mass[blockIdx.x] = cta_mass;
      s->ties[blockIdx.x] = cta_ties;
    }
  }
  grid_barrier(s);
  if (blockIdx.x != 0) return;

  const unsigned long long m_t = fixed_mass(t, a.mass_scale);
  __shared__ unsigned long long s_r;
  __shared__ int s_cta;
  __shared__ unsigned long long s_r_local, s_cta_ties;
  if (threadIdx.x == 0) {
    s_token = top;  // unreachable fallback: the draw below always finds a token
    s_cta = -1;
  }
  unsigned long long total_ties_u64;
  const unsigned my_ties = in ? __ldcg(&s->ties[threadIdx.x]) : 0u;
  const unsigned long long ties_before = block_exclusive_sum(static_cast<unsigned long long>(my_ties), &total_ties_u64);
  const unsigned long long kept_ties =
      c <= ties_before ? 0 : (c - ties_before < my_ties ? c - ties_before : my_ties);
  const unsigned long long my_mass = (in ? __ldcg(&s->kept_mass[threadIdx.x]) : 0ull) + kept_ties * m_t;
  unsigned long long total_mass;
  const unsigned long long mass_before = block_exclusive_sum(my_mass, &total_mass);
  if (threadIdx.x == 0) {
    const unsigned long long h = mix64(a.p.seed ^ mix64(*a.step_counter));
    s_r = __umul64hi(h, total_mass);  // uniform in [0, total_mass)
  }
  __syncthreads();
  const unsigned long long r = s_r;
  if (my_mass > 0 && mass_before <= r && r < mass_before + my_mass) {
    s_cta = threadIdx.x;
    s_r_local = r - mass_before;
    s_cta_ties = kept_ties;
  }
  __syncthreads();
  if (s_cta >= 0) {
    const long long clo = a.vocab * s_cta / gridDim.x, chi = a.vocab * (s_cta + 1) / gridDim.x;
    const unsigned long long r_local = s_r_local, cta_ties = s_cta_ties;
    unsigned long long mass_carry = 0, ties_carry = 0;
    for (long long base = clo; base < chi; base += kThreads) {
      const long long i = base + threadIdx.x;
      const uint32_t u = i < chi ? __ldcg(&a.keys[i]) : 0u;
      const bool tie = i < chi && u == t;
      unsigned long long tile_ties, tile_mass;
      const unsigned long long tie_rank = ties_carry + block_exclusive_sum(static_cast<unsigned long long>(tie), &tile_ties);
      const bool kept = i < chi && (u > t || (tie && tie_rank < cta_ties));
      const unsigned long long m = kept ? fixed_mass(u, a.mass_scale) : 0;
      const unsigned long long before = mass_carry + block_exclusive_sum(m, &tile_mass);
      if (m > 0 && before <= r_local && r_local < before + m) s_token = static_cast<int32_t>(i);
      mass_carry += tile_mass;
      ties_carry += tile_ties;
      if (mass_carry > r_local) break;  // the same in every thread: found in this tile
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    *a.token_out = s_token;
    *a.step_counter += 1;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Host side

void validate(const DeviceSamplerParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    throw InputError("temperature must be a finite number >= 0, found " + std::to_string(p.temperature));
  if (!(p.top_p > 0 && p.top_p <= 1)) throw InputError("top-p must be in (0, 1], found " + std::to_string(p.top_p));
  if (p.top_k < 0) throw InputError("top-k must be >= 0 (0 turns it off), found " + std::to_string(p.top_k));
  if (!(p.min_p >= 0 && p.min_p <= 1)) throw InputError("min-p must be in [0, 1], found " + std::to_string(p.min_p));
}

DeviceSampler::DeviceSampler(int64_t vocab, int max_ctas) : vocab_(vocab) {
  if (vocab < 1 || vocab > 0x7fffffff)
    throw InputError("DeviceSampler: vocabulary size " + std::to_string(vocab) + "; needs 1 .. 2^31 - 1");
  if (max_ctas < 0) throw InputError("DeviceSampler: max_ctas = " + std::to_string(max_ctas) + "; needs >= 0");
  int bits = 0;
  while ((int64_t{1} << bits) <= vocab) ++bits;
  mass_shift_ = 63 - bits;  // vocab * 2^s < 2^63
  const int64_t wanted = (vocab + kThreads - 1) / kThreads;
  const int resident = resident_ctas(reinterpret_cast<const void*>(device_sample_kernel), kThreads, 0);
  ctas_ = static_cast<int>(std::min<int64_t>({wanted, resident, kSamplerMaxCtas, max_ctas > 0 ? max_ctas : kSamplerMaxCtas}));
  keys_ = DeviceBuffer<uint32_t>(static_cast<size_t>(vocab));
  scratch_ = DeviceBuffer<unsigned char>(sizeof(SamplerScratch));
  OSSRUN_CUDA_CHECK(cudaMemset(scratch_.get(), 0, scratch_.bytes()));
}

void DeviceSampler::sample(const float* logits, const DeviceSamplerParams& p, const uint64_t* step_counter,
                           int32_t* token_out, cudaStream_t stream) {
  validate(p);
  // The counter is documented as incremented by the kernel; the interface keeps the const the engine expects.
  SampleArgs args{logits,
                  vocab_,
                  p,
                  std::ldexp(1.0, mass_shift_),
                  reinterpret_cast<unsigned long long*>(const_cast<uint64_t*>(step_counter)),
                  token_out,
                  keys_.get(),
                  reinterpret_cast<SamplerScratch*>(scratch_.get())};
  // All CTAs must be resident at once (the grid barrier): ctas_ is at most what fits on the device.
  device_sample_kernel<<<ctas_, kThreads, 0, stream>>>(args);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
