// Prefill matmuls through oneDNN: Y (M, N) f32 = X (M, K) · Wᵀ + bias, with W (N, K) bf16 in nn.Linear layout
// (a dense weight, or an expert's MXFP4 rows dequantized by dequantize_mxfp4_bf16).
//
// oneDNN chooses its own code at run time (AMX or AVX512-BF16 where present, AVX2 elsewhere) and runs on its own
// OpenMP threads (OMP_NUM_THREADS) in this build. Primitives are cached by shape. The products are bf16 x bf16:
// oneDNN 2.6 has no f32 x bf16 matmul, so an f32 X is rounded to bf16 (nearest even) first, as the bf16
// references do; products are exact and accumulate in fp32.
//
// Not thread-safe: use one OnednnMatmul per calling thread. The header carries no oneDNN type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ossrun::cpu {

class OnednnMatmul {
 public:
  OnednnMatmul();
  ~OnednnMatmul();
  OnednnMatmul(const OnednnMatmul&) = delete;
  OnednnMatmul& operator=(const OnednnMatmul&) = delete;

  // X: (M, K) f32, rounded to bf16 before the product. W: (N, K) bf16. bias: (N) bf16 or nullptr. Y: (M, N) f32.
  void matmul_f32_bf16(const float* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M, int64_t N,
                       int64_t K);
  // X: (M, K) bf16. W: (N, K) bf16. bias: (N) bf16 or nullptr. Y: (M, N) f32.
  void matmul_bf16_bf16(const uint16_t* X, const uint16_t* W, const uint16_t* bias, float* Y, int64_t M, int64_t N,
                        int64_t K);

  // Primitives in the shape cache (bounded: it is cleared when it would pass kMaxCachedShapes).
  size_t cached_shapes() const;
  static constexpr size_t kMaxCachedShapes = 1024;

  // The instruction set oneDNN runs with on this machine, e.g. "avx512_core_amx", "avx2".
  static std::string isa();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ossrun::cpu
