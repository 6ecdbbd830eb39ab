// The CPU kernels the engine calls, as a table of function pointers per instruction set.
//
// Kernels are pure functions over pointers and sizes: they know nothing of layers, caches or policies.
// Each ISA's implementations live in their own translation unit compiled with their own flags
// (kernels_scalar.cpp, kernels_avx2.cpp, kernels_avx512.cpp); the variant is chosen at run time from
// CPUID + XGETBV (cpu_features.h), never from the build machine. The scalar table is the reference every
// other variant is tested against.
//
// Work splitting: every kernel takes a half-open range of output rows [r0, r1) so the thread pool can give
// each worker its own rows; a kernel never writes outside its range. Kernels keep no state and allocate nothing,
// so any number of threads may call them at once. Weight pointers point at the whole tensor (row 0), outputs at
// the whole output vector: row r is read at W + r * (row size) and written at y[r].
// Layouts (safetensors order): bf16 weights (rows, K) row-major as raw uint16 bits; MXFP4 weights as blocks
// (rows, K/32, 16) u8 and scales (rows, K/32) u8 (src/model/mxfp4.h). Activations are fp32. Accumulation fp32.
// Preconditions (the caller checks shapes once, at load): K >= 1, and K a multiple of 32 for MXFP4.
// Results of different variants agree to fp32 rounding (summation order differs), not bit for bit, except
// dequantize_mxfp4_bf16, which is exact and identical everywhere. An E8M0 scale byte of 255 decodes to +inf as
// in the reference loaders, so such a block yields inf or NaN outputs.
//
// The SIMD MXFP4 kernels permute x once per call into a stack buffer in the order their decode produces; for K
// above 16384 (gpt-oss has K = 2880) they run the scalar kernel instead.
#pragma once
#include <cstdint>

namespace ossrun::cpu {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };
const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512"

// The clamped SwiGLU of gpt-oss (gpt-oss.md §4): gate <- min(gate, limit); up <- clamp(up, -limit, limit);
// a = gate * sigmoid(alpha * gate) * (up + 1).
struct SwigluParams {
  float alpha = 1.702f;
  float limit = 7.0f;
};

struct KernelTable {
  Isa isa;

  // y[r] = W[r, :] . x + bias[r] for r in [r0, r1). W: (rows, K) bf16. bias: (rows) bf16 or nullptr.
  void (*matvec_bf16)(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t r0, int64_t r1);

  // Transposed layout (transformers' dense experts): y[c] = sum_k W[k, c] x[k] + bias[c] for c in [c0, c1).
  // W: (K, cols) bf16, row stride `cols`.
  void (*matvec_bf16_t)(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t cols,
                        int64_t c0, int64_t c1);

  // y[r] = W[r, :] . x + bias[r] for r in [r0, r1), W in MXFP4. K is a multiple of 32.
  void (*matvec_mxfp4)(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x, float* y,
                       int64_t K, int64_t r0, int64_t r1);

  // One expert's gate_up projection fused with the SwiGLU: h = W x + bias over the (2I, K) MXFP4 weight
  // whose row 2j is gate j and row 2j+1 is up j; a[j] = swiglu(h[2j], h[2j+1]) for j in [j0, j1).
  void (*gate_up_swiglu_mxfp4)(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x,
                               float* a, int64_t K, int64_t j0, int64_t j1, SwigluParams p);

  // Dequantizes MXFP4 rows [r0, r1) into bf16 out (rows, K) (prefill feeds these tiles to oneDNN).
  void (*dequantize_mxfp4_bf16)(const uint8_t* blocks, const uint8_t* scales, uint16_t* out, int64_t K, int64_t r0,
                                int64_t r1);

  // The sum of the little-endian u64 words of [p, p + bytes), mod 2^64; bytes a multiple of 256, p 64-byte
  // aligned. Not a model kernel: the memory bandwidth probe's loop, with each ISA's widest loads (narrow loads
  // read measurably slower on a busy machine, which would flatter every ratio against the probe).
  uint64_t (*stream_read)(const uint8_t* p, int64_t bytes);
};

// True when this CPU (and OS, for the wider register state) can run the variant.
bool isa_supported(Isa isa);
// The widest supported variant, unless OSSRUN_ISA=scalar|avx2|avx512 in the environment asks for another
// (an unsupported request is an error naming what the CPU lacks).
Isa default_isa();
// The table for `isa`; throws std::runtime_error when the CPU cannot run it.
const KernelTable& kernels(Isa isa);
inline const KernelTable& default_kernels() { return kernels(default_isa()); }

}  // namespace ossrun::cpu
