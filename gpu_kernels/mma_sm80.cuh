// Tensor-core building blocks shared by the GEMM kernels (include from .cu files only): asynchronous
// global->shared copies, ldmatrix, mma.sync m16n8k16 bf16 -> f32 (all sm_80+, nothing Hopper-only), the
// swizzled shared-memory tile they read, and the split of an fp32 value into two bf16 parts.
//
// Tiles in shared memory hold rows of 32 bf16 (64 bytes, four 16-byte chunks). Chunk c of row r is stored at
// chunk position c ^ ((r >> 1) & 3): the 8 row addresses of one ldmatrix matrix then fall in 8 different
// 16-byte bank groups, and a warp's 16-byte copies of 8 whole rows fill 1024 contiguous bytes.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ossrun::gpu::mma_sm80 {

constexpr int kTileK = 32;         // bf16 per tile row
constexpr int kTileRowBytes = 64;  // bytes per tile row

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Byte offset of chunk `chunk` (0..3) of row `row` in a swizzled tile.
__device__ __forceinline__ uint32_t tile_offset(int row, int chunk) {
  return static_cast<uint32_t>(row * kTileRowBytes + ((chunk ^ ((row >> 1) & 3)) << 4));
}

// 16 bytes global -> shared, bypassing L1; when !valid the destination is zero-filled and nothing is read
// (src must still be a valid-looking address: callers pass the tensor's base).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most `Pending` of this thread's committed groups are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

// Four 8x8 b16 matrices; lane l gives the row address of matrix l / 8, row l % 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// d += a (16x16, row major) * b (16x8, column major), bf16 inputs, fp32 accumulation.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// A fragment (16 rows x 16 k) of a swizzled tile: rows m0.., k columns k0..k0+15 (k0 a multiple of 16).
// Matrices: 0 rows 0-7 k 0-7, 1 rows 8-15 k 0-7, 2 rows 0-7 k 8-15, 3 rows 8-15 k 8-15 (the mma A order).
__device__ __forceinline__ void load_a_fragment(uint32_t (&a)[4], uint32_t tile, int m0, int k0, int lane) {
  const int mat = lane >> 3;
  const int row = m0 + (lane & 7) + ((mat & 1) << 3);
  ldmatrix_x4(a, tile + tile_offset(row, (k0 >> 3) + (mat >> 1)));
}

// B fragments of two n8 tiles (16 n x 16 k) of a swizzled tile stored n-major (n rows, k contiguous):
// b[0], b[1] for columns n0..n0+7 and b[2], b[3] for n0+8..n0+15.
__device__ __forceinline__ void load_b_fragments(uint32_t (&b)[4], uint32_t tile, int n0, int k0, int lane) {
  const int mat = lane >> 3;
  const int row = n0 + (lane & 7) + ((mat >> 1) << 3);
  ldmatrix_x4(b, tile + tile_offset(row, (k0 >> 3) + (mat & 1)));
}

// x = hi + lo with hi = bf16(x) (round to nearest) and lo = bf16(x - hi): the pair carries about 16
// significant bits, and products with bf16 weights are exact in the fp32 accumulator.
struct SplitBf16 {
  uint16_t hi, lo;
};
__device__ __forceinline__ uint16_t bf16_round(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
__device__ __forceinline__ SplitBf16 split_bf16(float x) {
  const uint16_t hi = bf16_round(x);
  const float rest = x - __uint_as_float(static_cast<uint32_t>(hi) << 16);
  return {hi, bf16_round(rest)};
}
// Four consecutive values split into (hi pair words, lo pair words), low half first.
__device__ __forceinline__ void split_bf16x4(float4 v, uint2& hi, uint2& lo) {
  const SplitBf16 a = split_bf16(v.x), b = split_bf16(v.y), c = split_bf16(v.z), d = split_bf16(v.w);
  hi = make_uint2(a.hi | (static_cast<uint32_t>(b.hi) << 16), c.hi | (static_cast<uint32_t>(d.hi) << 16));
  lo = make_uint2(a.lo | (static_cast<uint32_t>(b.lo) << 16), c.lo | (static_cast<uint32_t>(d.lo) << 16));
}

}  // namespace ossrun::gpu::mma_sm80
