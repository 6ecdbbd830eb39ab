// mxfp4_moe_gemm: kernels, then the launcher (see the header for the stages).
//
// Grouped GEMM tiles. A CTA computes 128 weight rows x up to BN (64 or 128) sorted positions of one slot (mma
// M = weight rows, N = tokens, as in bf16_gemm.cu), K advancing 32 values (one MXFP4 block per row) per step:
//   - the tile's scale bytes (128 rows x K/32, one contiguous run of the scales tensor) go to shared memory
//     once, at the start;
//   - per step, a ring of stages receives the raw 16-byte blocks of the 128 rows and the 64 positions' bf16
//     hi and lo inputs by cp.async;
//   - the raw blocks of step kt+1 are dequantized to a swizzled bf16 tile (E2M1 table, E8M0 scale; both exact
//     in bf16) while the mma of step kt read the other of two bf16 tiles: one barrier per step.
// gate_up rows are taken in an order that puts gate j and up j in the same thread's accumulators: within each
// group of 16 tile rows, rows 0-7 are gates 8g..8g+7 (checkpoint rows 16g + 2i) and rows 8-15 the matching ups
// (rows 16g + 2i + 1), so the SwiGLU needs no exchange between lanes.
#include <string>

#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mma_sm80.cuh"
#include "gpu_kernels/mxfp4_device.cuh"
#include "gpu_kernels/mxfp4_moe_gemm.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using namespace mma_sm80;
using device_util::bf16_value;

constexpr int kErrorBadSlot = 1;
constexpr int kErrorMisaligned = 2;

// Grouped GEMM tiles: 128 weight rows x BN positions, 8 warps as 4 (rows) x 2 (positions).
constexpr int kBM = 128, kWarpsM = 4;
constexpr int kThreads = 256;
constexpr int kWarpM = 32, kMTiles = kWarpM / 16;
constexpr int kMaxBlocksPerRow = kMoeMaxK / 32;
constexpr int kScaleBytes = kBM * kMaxBlocksPerRow;   // 16 KiB
constexpr int kRawBytes = kBM * 16;                    // one block per row per step
constexpr int kWeightTileBytes = kBM * kTileRowBytes;  // one dequantized bf16 tile
constexpr int kSmallestBN = 64;                        // sizes the tile table

template <int BN, int STAGES>
struct MoeTileShape {
  static constexpr int kBN = BN, kStages = STAGES;
  static constexpr int kWarpN = BN / 2, kNPairs = kWarpN / 16;
  static constexpr int kStageBytes = kRawBytes + 2 * BN * kTileRowBytes;  // raw blocks, hi and lo tiles
  static constexpr int kSmemBytes = kScaleBytes + STAGES * kStageBytes + 2 * kWeightTileBytes + 16 * 4;
  static_assert(STAGES >= 3, "the dequantization runs one step ahead of the mma");
  static_assert(kSmemBytes <= 99 * 1024, "fits the opt-in shared memory of sm_86/89/120 too");
};
// 64 positions, 4 stages (72 KiB); 128 positions, 3 stages (86 KiB): half the dequantization per mma.
using Tile64 = MoeTileShape<64, 4>;
using Tile128 = MoeTileShape<128, 3>;

constexpr int kMetaThreads = 1024;

enum class Proj { GateUp, Down };

struct MetaArgs {
  const ExpertSlotMxfp4* slots;  // (n_slots)
  const int32_t* choice_slots;   // (n, k)
  int n_choices, n_slots;        // n * k
  int* counts;                   // (n_slots)
  int* offsets;                  // (n_slots)
  int* first_tile;               // (n_slots)
  int* positions;                // (n, k)
  int4* tiles;                   // (max_tiles)
  int* n_tiles;                  // (1)
  int* error;                    // (1)
  int tile_positions;            // BN of the GEMM launches
};

struct GroupedArgs {
  const ExpertSlotMxfp4* slots;
  const int4* tiles;
  const int* n_tiles;
  const uint16_t* in_hi;  // (positions, K): gathered x (gate_up) or activations (down)
  const uint16_t* in_lo;
  int K, rows;            // K = H, rows = 2I (gate_up); K = I, rows = H (down)
  uint16_t* act_hi;       // gate_up output (positions, I)
  uint16_t* act_lo;
  float* y;               // down output (positions, H)
  SwigluParams swiglu;
};

// ---------------------------------------------------------------------------------------------------------
// Stage 1: routing metadata (one CTA)

__device__ bool slot_aligned(const ExpertSlotMxfp4& s) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(s.gate_up_blocks) | reinterpret_cast<uintptr_t>(s.gate_up_scales) |
                         reinterpret_cast<uintptr_t>(s.down_blocks) | reinterpret_cast<uintptr_t>(s.down_scales);
  return bits % 16 == 0;
}

// Inclusive sum over the CTA (kMetaThreads threads); every thread calls it.
__device__ long long block_inclusive_sum(long long v, long long* warp_totals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const long long u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    long long t = warp_totals[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const long long u = __shfl_up_sync(0xffffffffu, t, o);
      if (lane >= o) t += u;
    }
    warp_totals[lane] = t;
  }
  __syncthreads();
  const long long before = warp > 0 ? warp_totals[warp - 1] : 0;
  const long long result = v + before;
  __syncthreads();  // warp_totals is reused by the next call
  return result;
}

__global__ void __launch_bounds__(kMetaThreads) moe_routing_metadata_kernel(const MetaArgs a) {
  __shared__ long long warp_totals[32];
  __shared__ long long chunk_total;
  const int tid = threadIdx.x;
  for (int s = tid; s < a.n_slots; s += kMetaThreads) a.counts[s] = 0;
  __syncthreads();
  // Rank of each choice among its slot's choices (the order within a slot does not change any result).
  for (int i = tid; i < a.n_choices; i += kMetaThreads) {
    const int s = a.choice_slots[i];
    int rank = -1;
    if (s != -1) {
      if (s < -1 || s >= a.n_slots)
        atomicOr(a.error, kErrorBadSlot);
      else if (!slot_aligned(a.slots[s]))
        atomicOr(a.error, kErrorMisaligned);
      else
        rank = atomicAdd(a.counts + s, 1);
    }
    a.positions[i] = rank;
  }
  __syncthreads();
  // Exclusive prefix sums of the counts (positions) and of the tiles per slot, 1024 slots at a time; the
  // two sums travel packed in one 64-bit value (each stays below 2^31).
  long long running = 0;
  for (int base = 0; base < a.n_slots; base += kMetaThreads) {
    const int s = base + tid;
    const long long c = s < a.n_slots ? a.counts[s] : 0;
    const long long packed = (c << 32) | ((c + a.tile_positions - 1) / a.tile_positions);
    const long long inclusive = block_inclusive_sum(packed, warp_totals);
    if (s < a.n_slots) {
      const long long before = running + inclusive - packed;
      a.offsets[s] = static_cast<int>(before >> 32);
      a.first_tile[s] = static_cast<int>(before & 0xffffffffLL);
    }
    if (tid == kMetaThreads - 1) chunk_total = inclusive;
    __syncthreads();
    running += chunk_total;
    __syncthreads();
  }
  if (tid == 0) *a.n_tiles = static_cast<int>(running & 0xffffffffLL);
  for (int i = tid; i < a.n_choices; i += kMetaThreads)
    if (a.positions[i] >= 0) a.positions[i] += a.offsets[a.choice_slots[i]];
  for (int s = tid; s < a.n_slots; s += kMetaThreads) {
    const int c = a.counts[s], first = a.first_tile[s], offset = a.offsets[s];
    const int bn = a.tile_positions;
    for (int j = 0; j * bn < c; ++j) a.tiles[first + j] = make_int4(s, offset + j * bn, min(bn, c - j * bn), 0);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Stage 2: gather. One CTA per choice: x[t] -> hi, lo rows at the choice's sorted position.

__global__ void moe_gather_split_bf16_kernel(const float* __restrict__ x, const int* __restrict__ positions, int k,
                                             int H, uint16_t* __restrict__ hi, uint16_t* __restrict__ lo) {
  const int choice = blockIdx.x, p = positions[choice];
  if (p < 0) return;
  const float4* src = reinterpret_cast<const float4*>(x + static_cast<long long>(choice / k) * H);
  uint2* dst_hi = reinterpret_cast<uint2*>(hi + static_cast<long long>(p) * H);
  uint2* dst_lo = reinterpret_cast<uint2*>(lo + static_cast<long long>(p) * H);
  for (int i = threadIdx.x; i < H / 4; i += blockDim.x) split_bf16x4(src[i], dst_hi[i], dst_lo[i]);
}

// ---------------------------------------------------------------------------------------------------------
// Stages 3 and 4: grouped GEMM

// The checkpoint row (relative to the tile's first row) that tile row m holds.
template <Proj P>
__device__ __forceinline__ int weight_row(int m) {
  if constexpr (P == Proj::GateUp) {
    const int i = m & 15;
    return (m & ~15) + (i < 8 ? 2 * i : 2 * (i - 8) + 1);
  } else {
    return m;
  }
}

struct TileSmem {
  uint8_t* scales;  // (valid rows, G) in checkpoint row order
  uint32_t stages;  // shared address of stage 0: raw blocks (kBM, 16), then hi and lo tiles (BN, 32) bf16
  uint32_t weights;  // shared address of two dequantized tiles (kBM, 32) bf16
  char* raw_base;   // generic pointer to stage 0 (the dequantization reads raw blocks with plain loads)
  char* weight_base;
  const float* e2m1;  // (16)
};

template <Proj P, class T>
__device__ __forceinline__ void load_step(const GroupedArgs& a, const TileSmem& sm, const uint8_t* blocks, int kt,
                                          int valid_rows, int p0, int count) {
  const int tid = threadIdx.x, G = a.K / 32;
  const uint32_t stage = sm.stages + (kt % T::kStages) * T::kStageBytes;
  if (tid < kBM) {
    const int r = weight_row<P>(tid);
    const bool ok = r < valid_rows;
    cp_async16(stage + tid * 16, ok ? blocks + (static_cast<size_t>(r) * G + kt) * 16 : blocks, ok);
  }
  const uint32_t s_hi = stage + kRawBytes, s_lo = s_hi + T::kBN * kTileRowBytes;
#pragma unroll
  for (int i = 0; i < T::kBN * 4 / kThreads; ++i) {
    const int c = tid + i * kThreads, r = c >> 2, ch = c & 3;
    const bool ok = r < count;
    const size_t off = ok ? static_cast<size_t>(p0 + r) * a.K + kt * kTileK + ch * 8 : 0;
    cp_async16(s_hi + tile_offset(r, ch), a.in_hi + off, ok);
    cp_async16(s_lo + tile_offset(r, ch), a.in_lo + off, ok);
  }
}

// Raw blocks of step kt -> bf16 tile `buf`. Thread: tile row tid / 2, values 16 * (tid % 2) .. +15.
template <Proj P, class T>
__device__ __forceinline__ void dequantize_step(const TileSmem& sm, int kt, int buf, int G, int valid_rows) {
  const int tid = threadIdx.x, m = tid >> 1, h = tid & 1;
  const int r = weight_row<P>(m);
  const uint2 q = *reinterpret_cast<const uint2*>(sm.raw_base + (kt % T::kStages) * T::kStageBytes + m * 16 + h * 8);
  const float scale = r < valid_rows ? mxfp4_device::e8m0_value(sm.scales[r * G + kt]) : 0.0f;
  uint32_t packed[8];
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const uint32_t bytes = w == 0 ? q.x : q.y;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const float lo = sm.e2m1[(bytes >> (8 * b)) & 15u] * scale, hi = sm.e2m1[(bytes >> (8 * b + 4)) & 15u] * scale;
      packed[4 * w + b] = __byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632);  // both exact in bf16
    }
  }
  char* tile = sm.weight_base + buf * kWeightTileBytes;
  *reinterpret_cast<uint4*>(tile + tile_offset(m, 2 * h)) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  *reinterpret_cast<uint4*>(tile + tile_offset(m, 2 * h + 1)) = make_uint4(packed[4], packed[5], packed[6], packed[7]);
}

__device__ __forceinline__ float clamped_swiglu(float gate, float up, SwigluParams p) {
  gate = fminf(gate, p.limit);                                 // upper bound only
  up = fminf(fmaxf(up, -p.limit), p.limit);                    // both sides
  return gate / (1.0f + expf(-p.alpha * gate)) * (up + 1.0f);  // gate * sigmoid(alpha * gate) * (up + 1)
}

template <Proj P, class T>
__global__ void __launch_bounds__(kThreads) moe_grouped_gemm_mxfp4_kernel(const GroupedArgs a) {
  constexpr int kStages = T::kStages, kStageBytes = T::kStageBytes, kNPairs = T::kNPairs, kWarpN = T::kWarpN;
  const int tile_index = blockIdx.y;
  if (tile_index >= *a.n_tiles) return;
  extern __shared__ __align__(128) char smem[];
  const int4 tile = a.tiles[tile_index];
  const int p0 = tile.y, count = tile.z;
  const ExpertSlotMxfp4 slot = a.slots[tile.x];
  const int row0 = blockIdx.x * kBM, valid_rows = min(kBM, a.rows - row0);
  const int G = a.K / 32, KT = G;
  const uint8_t* blocks =
      (P == Proj::GateUp ? slot.gate_up_blocks : slot.down_blocks) + static_cast<size_t>(row0) * G * 16;
  const uint8_t* scales = (P == Proj::GateUp ? slot.gate_up_scales : slot.down_scales) + static_cast<size_t>(row0) * G;
  const uint16_t* bias = (P == Proj::GateUp ? slot.gate_up_bias : slot.down_bias) + row0;

  TileSmem sm;
  sm.scales = reinterpret_cast<uint8_t*>(smem);
  sm.raw_base = smem + kScaleBytes;
  sm.weight_base = sm.raw_base + kStages * kStageBytes;
  sm.stages = smem_address(sm.raw_base);
  sm.weights = smem_address(sm.weight_base);
  float* e2m1 = reinterpret_cast<float*>(sm.weight_base + 2 * kWeightTileBytes);
  sm.e2m1 = e2m1;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp % kWarpsM, warp_n = warp / kWarpsM;
  if (tid < 16) e2m1[tid] = mxfp4_device::e2m1_value(tid);

  // The tile's scales: valid_rows * G contiguous bytes, 16-byte aligned (row0 * G is a multiple of 16).
  const int scale_bytes = valid_rows * G, full_chunks = scale_bytes / 16;
  const uint32_t s_scales = smem_address(sm.scales);
  for (int c = tid; c < full_chunks; c += kThreads) cp_async16(s_scales + c * 16, scales + c * 16, true);
  for (int b = full_chunks * 16 + tid; b < scale_bytes; b += kThreads) sm.scales[b] = scales[b];

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load_step<P, T>(a, sm, blocks, s, valid_rows, p0, count);
    cp_async_commit();  // the scales travel with stage 0
  }
  cp_async_wait<kStages - 2>();
  __syncthreads();  // stage 0, the scales and the table are in place
  dequantize_step<P, T>(sm, 0, 0, G, valid_rows);

  float acc[kMTiles][2 * kNPairs][4];
#pragma unroll
  for (int i = 0; i < kMTiles; ++i)
#pragma unroll
    for (int j = 0; j < 2 * kNPairs; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0.0f;

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 3>();
    __syncthreads();  // stage kt+1 landed; bf16 tile kt is complete; the slots of step kt-1 are free
    if (kt + kStages - 1 < KT) load_step<P, T>(a, sm, blocks, kt + kStages - 1, valid_rows, p0, count);
    cp_async_commit();
    if (kt + 1 < KT) dequantize_step<P, T>(sm, kt + 1, (kt + 1) & 1, G, valid_rows);

    const uint32_t s_w = sm.weights + (kt & 1) * kWeightTileBytes;
    const uint32_t s_hi = sm.stages + (kt % kStages) * kStageBytes + kRawBytes, s_lo = s_hi + T::kBN * kTileRowBytes;
#pragma unroll
    for (int k0 = 0; k0 < kTileK; k0 += 16) {
      uint32_t af[kMTiles][4], bh[kNPairs][4], bl[kNPairs][4];
#pragma unroll
      for (int i = 0; i < kMTiles; ++i) load_a_fragment(af[i], s_w, warp_m * kWarpM + 16 * i, k0, lane);
#pragma unroll
      for (int p = 0; p < kNPairs; ++p) {
        load_b_fragments(bh[p], s_hi, warp_n * kWarpN + 16 * p, k0, lane);
        load_b_fragments(bl[p], s_lo, warp_n * kWarpN + 16 * p, k0, lane);
      }
#pragma unroll
      for (int i = 0; i < kMTiles; ++i)
#pragma unroll
        for (int j = 0; j < 2 * kNPairs; ++j) {
          const int p = j >> 1, hh = (j & 1) * 2;
          mma_bf16_16816(acc[i][j], af[i], bh[p][hh], bh[p][hh + 1]);
          mma_bf16_16816(acc[i][j], af[i], bl[p][hh], bl[p][hh + 1]);
        }
    }
  }

  // Accumulator v of tile (i, j): tile row g (+8 for v >= 2), position column 2t + (v & 1).
  const int g = lane >> 2, t2 = 2 * (lane & 3);
#pragma unroll
  for (int i = 0; i < kMTiles; ++i) {
    const int m = warp_m * kWarpM + 16 * i + g;  // tile row; m + 8 is the other half
    if constexpr (P == Proj::GateUp) {
      const int local = (m >> 4) * 8 + g;  // feature within the tile; rows 2 local and 2 local + 1
      if (2 * local >= valid_rows) continue;
      const int feature = row0 / 2 + local, I = a.rows / 2;
      const float b_gate = bf16_value(bias[2 * local]), b_up = bf16_value(bias[2 * local + 1]);
#pragma unroll
      for (int j = 0; j < 2 * kNPairs; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = warp_n * kWarpN + 8 * j + t2 + e;
          if (col >= count) continue;
          const float v = clamped_swiglu(acc[i][j][e] + b_gate, acc[i][j][2 + e] + b_up, a.swiglu);
          const SplitBf16 s = split_bf16(v);
          const size_t at = static_cast<size_t>(p0 + col) * I + feature;
          a.act_hi[at] = s.hi;
          a.act_lo[at] = s.lo;
        }
    } else {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int r = m + 8 * half;
        if (r >= valid_rows) continue;
        const float b = bf16_value(bias[r]);
#pragma unroll
        for (int j = 0; j < 2 * kNPairs; ++j)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int col = warp_n * kWarpN + 8 * j + t2 + e;
            if (col < count) a.y[static_cast<size_t>(p0 + col) * a.rows + row0 + r] = acc[i][j][2 * half + e] + b;
          }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Stage 5: scatter. out[t][h] += sum over c in order of weight[t][c] * y[position[t][c]][h]; 4 values a thread.

__global__ void moe_scatter_accumulate_kernel(const float* __restrict__ y, const int* __restrict__ positions,
                                              const float* __restrict__ weights, int n, int k, int H,
                                              float* __restrict__ out) {
  const int h4 = H / 4;
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long long>(n) * h4) return;
  const int t = static_cast<int>(i / h4), q = static_cast<int>(i % h4);
  float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int c = 0; c < k; ++c) {
    const int p = positions[t * k + c];
    if (p < 0) continue;
    const float w = weights[t * k + c];
    const float4 v = reinterpret_cast<const float4*>(y + static_cast<long long>(p) * H)[q];
    sum.x += w * v.x;
    sum.y += w * v.y;
    sum.z += w * v.z;
    sum.w += w * v.w;
  }
  float4* o = reinterpret_cast<float4*>(out) + i;
  float4 cur = *o;
  cur.x += sum.x;
  cur.y += sum.y;
  cur.z += sum.z;
  cur.w += sum.w;
  *o = cur;
}

// ---------------------------------------------------------------------------------------------------------
// Launcher

void check_width(const char* what, int v) {
  if (v <= 0 || v % 32 != 0 || v > kMoeMaxK)
    throw InputError(std::string("mxfp4_moe_gemm: ") + what + " = " + std::to_string(v) +
                     "; the kernels need a positive multiple of 32 no larger than " + std::to_string(kMoeMaxK));
}

// The most tiles of `bn` positions n_choices choices over n_slots slots can make: every slot's last tile may
// be partial.
long long max_tiles(long long n_choices, long long n_slots, int bn) {
  return n_choices / bn + (n_slots < n_choices ? n_slots : n_choices);
}

template <Proj P, class T>
void launch_grouped(const GroupedArgs& a, long long tiles, cudaStream_t stream) {
  const void* kernel = reinterpret_cast<const void*>(moe_grouped_gemm_mxfp4_kernel<P, T>);
  resident_ctas(kernel, kThreads, T::kSmemBytes);  // raises the kernel's dynamic shared-memory limit once
  const dim3 grid((a.rows + kBM - 1) / kBM, static_cast<unsigned>(tiles));
  moe_grouped_gemm_mxfp4_kernel<P, T><<<grid, kThreads, T::kSmemBytes, stream>>>(a);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_both_projections(GroupedArgs g, long long n_choices, int n_slots, uint16_t* act_hi, uint16_t* act_lo,
                             float* y, int H, int I, cudaStream_t stream) {
  const long long tiles = max_tiles(n_choices, n_slots, T::kBN);
  launch_grouped<Proj::GateUp, T>(g, tiles, stream);
  g.in_hi = act_hi;
  g.in_lo = act_lo;
  g.K = I;
  g.rows = H;
  g.y = y;  // x's split is dead now
  launch_grouped<Proj::Down, T>(g, tiles, stream);
}

}  // namespace

const char* moe_gemm_tile_name(MoeGemmTile tile) {
  switch (tile) {
    case MoeGemmTile::Auto: return "auto";
    case MoeGemmTile::N64: return "n64";
    case MoeGemmTile::N128: return "n128";
  }
  return "?";
}

MoeGemmWorkspace::MoeGemmWorkspace(int max_n, int k, int n_slots, int hidden, int intermediate)
    : max_n_(max_n), k_(k), n_slots_(n_slots), hidden_(hidden), intermediate_(intermediate) {
  check_width("hidden size", hidden);
  check_width("intermediate size", intermediate);
  if (k < 1 || k > kMoeMaxChoices)
    throw InputError("MoeGemmWorkspace: k must be 1 to " + std::to_string(kMoeMaxChoices) + ", got " +
                     std::to_string(k));
  if (max_n < 1 || n_slots < 1)
    throw InputError("MoeGemmWorkspace: max_n and n_slots must be at least 1, got " + std::to_string(max_n) +
                     " and " + std::to_string(n_slots));
  const long long choices = static_cast<long long>(max_n) * k, tiles = max_tiles(choices, n_slots, kSmallestBN);
  if (tiles > 65535)
    throw InputError("MoeGemmWorkspace: " + std::to_string(max_n) + " tokens x " + std::to_string(k) +
                     " choices over " + std::to_string(n_slots) + " slots can make " + std::to_string(tiles) +
                     " tiles; one launch takes at most 65535");
  slot_counts_ = DeviceBuffer<int>(n_slots);
  slot_offsets_ = DeviceBuffer<int>(n_slots);
  slot_first_tile_ = DeviceBuffer<int>(n_slots);
  positions_ = DeviceBuffer<int>(choices);
  tiles_ = DeviceBuffer<int4>(tiles);
  n_tiles_ = DeviceBuffer<int>(1);
  x_split_or_y_ = DeviceBuffer<float>(choices * hidden);
  act_hi_ = DeviceBuffer<uint16_t>(choices * intermediate);
  act_lo_ = DeviceBuffer<uint16_t>(choices * intermediate);
  error_ = DeviceBuffer<int>(1);
  OSSRUN_CUDA_CHECK(cudaMemset(error_.get(), 0, error_.bytes()));
  OSSRUN_CUDA_CHECK(cudaDeviceSynchronize());  // launches may come on any stream, even non-blocking ones
}

void MoeGemmWorkspace::check_errors() {
  int flags = 0;
  OSSRUN_CUDA_CHECK(cudaMemcpy(&flags, error_.get(), sizeof flags, cudaMemcpyDeviceToHost));
  if (flags == 0) return;
  OSSRUN_CUDA_CHECK(cudaMemset(error_.get(), 0, sizeof flags));
  std::string msg = "mxfp4_moe_gemm:";
  if (flags & kErrorBadSlot) msg += " a choice named a slot outside the slot table (other than -1);";
  if (flags & kErrorMisaligned) msg += " an expert slot's blocks or scales pointer was not 16-byte aligned;";
  throw InputError(msg + " those choices contributed nothing");
}

void mxfp4_moe_gemm(const ExpertSlotMxfp4* slots, int n_slots, const int32_t* choice_slots, const float* choice_weights,
                    int n, int k, const float* x, float* out, const MoeShape& shape, const SwigluParams& swiglu,
                    MoeGemmWorkspace& ws, cudaStream_t stream, MoeGemmTile tile) {
  const int H = shape.hidden, I = shape.intermediate;
  if (H != ws.hidden() || I != ws.intermediate())
    throw InputError("mxfp4_moe_gemm: the workspace was made for H=" + std::to_string(ws.hidden()) + ", I=" +
                     std::to_string(ws.intermediate()) + ", not H=" + std::to_string(H) + ", I=" + std::to_string(I));
  if (n_slots != shape.n_slots)
    throw InputError("mxfp4_moe_gemm: n_slots = " + std::to_string(n_slots) + " but shape.n_slots = " +
                     std::to_string(shape.n_slots));
  if (n_slots < 1 || n_slots > ws.n_slots())
    throw InputError("mxfp4_moe_gemm: " + std::to_string(n_slots) + " slots; the workspace takes 1 to " +
                     std::to_string(ws.n_slots()));
  if (n < 0 || n > ws.max_n())
    throw InputError("mxfp4_moe_gemm: n = " + std::to_string(n) + "; the workspace takes 0 to " +
                     std::to_string(ws.max_n()) + " tokens");
  if (k < 1 || k > ws.k())
    throw InputError("mxfp4_moe_gemm: k = " + std::to_string(k) + "; the workspace takes 1 to " +
                     std::to_string(ws.k()));
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0)
    throw InputError("mxfp4_moe_gemm: x and out must be 16-byte aligned");
  if (n == 0) return;

  const int n_choices = n * k;
  if (tile == MoeGemmTile::Auto)
    tile = static_cast<long long>(n_choices) >= 256LL * n_slots ? MoeGemmTile::N128 : MoeGemmTile::N64;
  const MetaArgs meta{slots,
                      choice_slots,
                      n_choices,
                      n_slots,
                      ws.slot_counts_.get(),
                      ws.slot_offsets_.get(),
                      ws.slot_first_tile_.get(),
                      ws.positions_.get(),
                      ws.tiles_.get(),
                      ws.n_tiles_.get(),
                      ws.error_.get(),
                      tile == MoeGemmTile::N128 ? Tile128::kBN : Tile64::kBN};
  moe_routing_metadata_kernel<<<1, kMetaThreads, 0, stream>>>(meta);
  OSSRUN_CUDA_CHECK_LAUNCH();

  // x split: hi in the first half of the buffer's bytes, lo in the second.
  uint16_t* x_hi = reinterpret_cast<uint16_t*>(ws.x_split_or_y_.get());
  uint16_t* x_lo = x_hi + static_cast<size_t>(ws.max_n()) * ws.k() * H;
  moe_gather_split_bf16_kernel<<<n_choices, 256, 0, stream>>>(x, ws.positions_.get(), k, H, x_hi, x_lo);
  OSSRUN_CUDA_CHECK_LAUNCH();

  const GroupedArgs g{slots, ws.tiles_.get(), ws.n_tiles_.get(), x_hi, x_lo, H, 2 * I,
                      ws.act_hi_.get(), ws.act_lo_.get(), nullptr, swiglu};
  if (tile == MoeGemmTile::N128)
    launch_both_projections<Tile128>(g, n_choices, n_slots, ws.act_hi_.get(), ws.act_lo_.get(),
                                     ws.x_split_or_y_.get(), H, I, stream);
  else
    launch_both_projections<Tile64>(g, n_choices, n_slots, ws.act_hi_.get(), ws.act_lo_.get(),
                                    ws.x_split_or_y_.get(), H, I, stream);

  const long long threads = static_cast<long long>(n) * (H / 4);
  moe_scatter_accumulate_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
      ws.x_split_or_y_.get(), ws.positions_.get(), choice_weights, n, k, H, out);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

}  // namespace ossrun::gpu
