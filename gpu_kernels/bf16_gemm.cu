// bf16_gemm: kernels, then the launcher.
//
// Two launches: split (x fp32 -> hi, lo bf16 in the workspace), then the GEMM. The GEMM's CTA computes a tile
// of BM weight rows x BN tokens; its warps each hold a (BM / WARPS_M) x (BN / WARPS_N) piece of the tile in
// mma accumulators. The mma's M dimension is the weight rows and N the tokens: W (rows, K) and x (n, K) are
// both K-contiguous, so both operands come through plain ldmatrix from swizzled shared tiles (mma_sm80.cuh).
// K advances 32 at a time through a ring of STAGES shared-memory stages filled by cp.async (one barrier per
// step). For every weight fragment the warp issues two mma per token fragment: one with hi, one with lo.
//
// CTA order: the token tile varies fastest, so the CTAs that share a weight tile run together and W is read
// from DRAM about once while x (n x K x 4 bytes) stays in L2.
#include <string>

#include "gpu_kernels/bf16_gemm.cuh"
#include "gpu_kernels/bf16_matvec.cuh"
#include "gpu_kernels/cuda_check.cuh"
#include "gpu_kernels/device_util.cuh"
#include "gpu_kernels/mma_sm80.cuh"
#include "gpu_kernels/persistent_grid.cuh"
#include "src/model/error.h"

namespace ossrun::gpu {
namespace {

using namespace mma_sm80;

template <int BM, int BN, int WARPS_M, int WARPS_N, int STAGES, int MIN_CTAS>
struct GemmShape {
  static constexpr int kBM = BM, kBN = BN, kWarpsM = WARPS_M, kStages = STAGES, kMinCtas = MIN_CTAS;
  static constexpr int kThreads = 32 * WARPS_M * WARPS_N;
  static constexpr int kWarpM = BM / WARPS_M, kWarpN = BN / WARPS_N;
  static constexpr int kMTiles = kWarpM / 16, kNPairs = kWarpN / 16;  // m16 tiles; pairs of n8 tiles
  static constexpr int kStageBytes = (BM + 2 * BN) * kTileRowBytes;  // W tile, x hi tile, x lo tile
  static constexpr int kSmemBytes = STAGES * kStageBytes;
  static_assert(kWarpM % 16 == 0 && kWarpN % 16 == 0, "warp tiles are whole m16 tiles and n16 pairs");
  static_assert((BM * 4) % kThreads == 0 && (BN * 4) % kThreads == 0, "copies divide evenly over threads");
};
// Compute-bound batches: warp tile 64 rows x 32 tokens (64 fp32 accumulators per thread), 96 KiB of stages.
using WideShape = GemmShape<128, 128, 2, 4, 4, 2>;
// Memory-bound batches: more, smaller CTAs (the x tile no bigger than the W tile), a deeper ring.
using NarrowShape = GemmShape<64, 32, 2, 2, 6, 4>;
// Up to this many tokens, Auto makes one bf16_matvec call per token (it streams W at ~94% of the copy
// bandwidth; H100: 2 calls for q take 23 us, the narrow GEMM 32 us).
constexpr int kMatvecMaxN = 2;

struct GemmArgs {
  const uint16_t* W;     // (rows, K)
  const uint16_t* bias;  // (rows) or nullptr
  const uint16_t* x_hi;  // (n, K)
  const uint16_t* x_lo;  // (n, K)
  float* y;              // (n, rows)
  int n;
  long long rows;
  int K;
  int token_tiles;  // ceil(n / BN)
};

// ---------------------------------------------------------------------------------------------------------
// Kernels

// hi[i], lo[i] = split of x[i], four at a time (count a multiple of 4).
__global__ void split_bf16_kernel(const float4* __restrict__ x, uint2* __restrict__ hi, uint2* __restrict__ lo,
                                  long long count4) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count4;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    split_bf16x4(x[i], hi[i], lo[i]);
}

template <class S>
__device__ __forceinline__ void load_stage(const GemmArgs& a, uint32_t stage, int kt, long long row0, int tok0) {
  const int tid = threadIdx.x;
  const uint32_t s_w = stage, s_hi = s_w + S::kBM * kTileRowBytes, s_lo = s_hi + S::kBN * kTileRowBytes;
  const int k_elem = kt * kTileK;
#pragma unroll
  for (int i = 0; i < S::kBM * 4 / S::kThreads; ++i) {
    const int c = tid + i * S::kThreads, r = c >> 2, ch = c & 3;
    const long long row = row0 + r;
    const bool ok = row < a.rows;
    cp_async16(s_w + tile_offset(r, ch), ok ? a.W + row * a.K + k_elem + ch * 8 : a.W, ok);
  }
#pragma unroll
  for (int i = 0; i < S::kBN * 4 / S::kThreads; ++i) {
    const int c = tid + i * S::kThreads, r = c >> 2, ch = c & 3;
    const int tok = tok0 + r;
    const bool ok = tok < a.n;
    const long long off = ok ? static_cast<long long>(tok) * a.K + k_elem + ch * 8 : 0;
    cp_async16(s_hi + tile_offset(r, ch), a.x_hi + off, ok);
    cp_async16(s_lo + tile_offset(r, ch), a.x_lo + off, ok);
  }
}

// y[tok][row] = sum_k W[row][k] (x_hi + x_lo)[tok][k] + bias[row] for one BM x BN tile.
template <class S>
__global__ void __launch_bounds__(S::kThreads, S::kMinCtas) bf16_gemm_split_kernel(const GemmArgs a) {
  extern __shared__ __align__(128) char smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_m = warp % S::kWarpsM, warp_n = warp / S::kWarpsM;
  const long long row0 = static_cast<long long>(blockIdx.x / a.token_tiles) * S::kBM;
  const int tok0 = static_cast<int>(blockIdx.x % a.token_tiles) * S::kBN;
  const int KT = a.K / kTileK;
  const uint32_t base = smem_address(smem);

  float acc[S::kMTiles][2 * S::kNPairs][4];
#pragma unroll
  for (int i = 0; i < S::kMTiles; ++i)
#pragma unroll
    for (int j = 0; j < 2 * S::kNPairs; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0.0f;

#pragma unroll
  for (int s = 0; s < S::kStages - 1; ++s) {
    if (s < KT) load_stage<S>(a, base + s * S::kStageBytes, s, row0, tok0);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<S::kStages - 2>();
    __syncthreads();  // stage kt is complete for every thread; stage kt-1 is free for refilling
    const int next = kt + S::kStages - 1;
    if (next < KT) load_stage<S>(a, base + (next % S::kStages) * S::kStageBytes, next, row0, tok0);
    cp_async_commit();

    const uint32_t s_w = base + (kt % S::kStages) * S::kStageBytes;
    const uint32_t s_hi = s_w + S::kBM * kTileRowBytes, s_lo = s_hi + S::kBN * kTileRowBytes;
#pragma unroll
    for (int k0 = 0; k0 < kTileK; k0 += 16) {
      uint32_t af[S::kMTiles][4], bh[S::kNPairs][4], bl[S::kNPairs][4];
#pragma unroll
      for (int i = 0; i < S::kMTiles; ++i) load_a_fragment(af[i], s_w, warp_m * S::kWarpM + 16 * i, k0, lane);
#pragma unroll
      for (int p = 0; p < S::kNPairs; ++p) {
        load_b_fragments(bh[p], s_hi, warp_n * S::kWarpN + 16 * p, k0, lane);
        load_b_fragments(bl[p], s_lo, warp_n * S::kWarpN + 16 * p, k0, lane);
      }
#pragma unroll
      for (int i = 0; i < S::kMTiles; ++i)
#pragma unroll
        for (int j = 0; j < 2 * S::kNPairs; ++j) {
          const int p = j >> 1, h = (j & 1) * 2;
          mma_bf16_16816(acc[i][j], af[i], bh[p][h], bh[p][h + 1]);
          mma_bf16_16816(acc[i][j], af[i], bl[p][h], bl[p][h + 1]);
        }
    }
  }

  // Accumulator v of tile (i, j): row g (+8 for v >= 2), token 2t + (v & 1), with g = lane / 4, t = lane % 4.
#pragma unroll
  for (int i = 0; i < S::kMTiles; ++i)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const long long row = row0 + warp_m * S::kWarpM + 16 * i + 8 * half + (lane >> 2);
      if (row >= a.rows) continue;
      const float b = a.bias ? device_util::bf16_value(a.bias[row]) : 0.0f;
#pragma unroll
      for (int j = 0; j < 2 * S::kNPairs; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int tok = tok0 + warp_n * S::kWarpN + 8 * j + 2 * (lane & 3) + e;
          if (tok < a.n) a.y[static_cast<long long>(tok) * a.rows + row] = acc[i][j][2 * half + e] + b;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Launcher

template <class S>
void launch_gemm(const GemmArgs& base_args, cudaStream_t stream) {
  GemmArgs a = base_args;
  a.token_tiles = (a.n + S::kBN - 1) / S::kBN;
  const long long row_tiles = (a.rows + S::kBM - 1) / S::kBM;
  const long long ctas = row_tiles * a.token_tiles;
  if (ctas > 0x7fffffffLL) throw InputError("bf16_gemm: " + std::to_string(ctas) + " tiles exceed one launch");
  resident_ctas(reinterpret_cast<const void*>(bf16_gemm_split_kernel<S>), S::kThreads, S::kSmemBytes);  // smem opt-in
  bf16_gemm_split_kernel<S><<<static_cast<unsigned>(ctas), S::kThreads, S::kSmemBytes, stream>>>(a);
  OSSRUN_CUDA_CHECK_LAUNCH();
}

int sm_count() {
  int device = 0, sms = 0;
  OSSRUN_CUDA_CHECK(cudaGetDevice(&device));
  OSSRUN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

}  // namespace

const char* bf16_gemm_tile_name(Bf16GemmTile tile) {
  switch (tile) {
    case Bf16GemmTile::Auto: return "auto";
    case Bf16GemmTile::Wide: return "wide";
    case Bf16GemmTile::Narrow: return "narrow";
  }
  return "?";
}

Bf16GemmWorkspace::Bf16GemmWorkspace(int max_n, int max_K) : max_n_(max_n), max_K_(max_K) {
  if (max_n < 1) throw InputError("Bf16GemmWorkspace: max_n must be at least 1, got " + std::to_string(max_n));
  if (max_K < kTileK || max_K % kTileK != 0)
    throw InputError("Bf16GemmWorkspace: max_K must be a positive multiple of 32, got " + std::to_string(max_K));
  x_hi_ = DeviceBuffer<uint16_t>(static_cast<size_t>(max_n) * max_K);
  x_lo_ = DeviceBuffer<uint16_t>(static_cast<size_t>(max_n) * max_K);
}

void bf16_gemm(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int n, int64_t rows, int K,
               Bf16GemmWorkspace& ws, cudaStream_t stream, Bf16GemmTile tile) {
  if (K <= 0 || K % kTileK != 0 || K > ws.max_K())
    throw InputError("bf16_gemm: K = " + std::to_string(K) + "; the kernel needs a positive multiple of 32 up to " +
                     "the workspace's " + std::to_string(ws.max_K()));
  if (n < 0 || n > ws.max_n())
    throw InputError("bf16_gemm: n = " + std::to_string(n) + "; the workspace takes 0 to " +
                     std::to_string(ws.max_n()) + " tokens");
  if (rows < 0) throw InputError("bf16_gemm: negative row count " + std::to_string(rows));
  if (reinterpret_cast<uintptr_t>(W) % 16 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0)
    throw InputError("bf16_gemm: W and x must be 16-byte aligned");
  if (n == 0 || rows == 0) return;
  if (tile == Bf16GemmTile::Auto && n <= kMatvecMaxN) {
    for (int t = 0; t < n; ++t)
      bf16_matvec(W, bias, x + static_cast<size_t>(t) * K, y + static_cast<size_t>(t) * rows, rows, K, stream);
    return;
  }

  const long long count4 = static_cast<long long>(n) * K / 4;
  const long long blocks = (count4 + 255) / 256;
  split_bf16_kernel<<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(
      reinterpret_cast<const float4*>(x), reinterpret_cast<uint2*>(ws.x_hi_.get()),
      reinterpret_cast<uint2*>(ws.x_lo_.get()), count4);
  OSSRUN_CUDA_CHECK_LAUNCH();

  const GemmArgs args{W, bias, ws.x_hi_.get(), ws.x_lo_.get(), y, n, rows, K, 0};
  if (tile == Bf16GemmTile::Auto) {
    const long long wide_ctas =
        ((rows + WideShape::kBM - 1) / WideShape::kBM) * ((n + WideShape::kBN - 1) / WideShape::kBN);
    tile = 4 * wide_ctas >= 3 * sm_count() ? Bf16GemmTile::Wide : Bf16GemmTile::Narrow;
  }
  if (tile == Bf16GemmTile::Wide)
    launch_gemm<WideShape>(args, stream);
  else
    launch_gemm<NarrowShape>(args, stream);
}

}  // namespace ossrun::gpu
