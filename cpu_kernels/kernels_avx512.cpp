// AVX-512 F/BW/VL kernels (compiled with -mavx512f -mavx512bw -mavx512vl plus AVX2/FMA/F16C; run only after
// cpu_features.cpp checked the CPU and the OS's ZMM state).
//
// No static object here may need code to initialise it (it would run at start-up on any CPU): vector constants
// are built inside the functions, tables are constexpr data.
//
// MXFP4 decode. The 16 bytes of a block widen to 16 dwords (vpmovzxbd); vpermps indexes the 16-entry fp32 E2M1
// table with the low 4 bits of each dword, so the dword itself gives the even elements and the dword shifted
// right by 4 the odd ones. x is permuted once per call to match (per block: its 16 even elements, then its 16 odd
// ones). The E8M0 scale multiplies each block's partial sums once.
//
// VNNI and BF16 are not used: VNNI needs x quantized to int8 and VDPBF16PS needs x rounded to bf16, both of which
// change the numbers, and neither pays here, where the fp32 path already decodes faster than memory delivers
// (see `ossrun bench kernels`).
// GCC 12's AVX-512 headers build "undefined" vectors as `__m512 __Y = __Y;`, which its own -Wuninitialized
// then reports at every inlined use; the diagnostic belongs to the header, so it is silenced for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "cpu_kernels/kernel_helpers.h"
#include "cpu_kernels/kernels.h"
#include "src/model/mxfp4.h"

namespace ossrun::cpu {

const KernelTable& scalar_kernel_table();

namespace {

using mxfp4::kBlock;
using mxfp4::kBlockBytes;

// The permuted copy of x lives on the stack; larger K (none in gpt-oss, where K <= 4096) runs the scalar kernels.
constexpr int64_t kMaxMxfp4K = 16384;

// The sum of the 16 lanes. (Not _mm512_reduce_add_ps: with GCC 12 it trips -Wmaybe-uninitialized.)
inline float hsum(__m512 v) {
  const __m512 halves_swapped = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2));
  const __m256 s = _mm512_castps512_ps256(_mm512_add_ps(v, halves_swapped));
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  t = _mm_add_ss(t, _mm_movehdup_ps(t));
  return _mm_cvtss_f32(t);
}

// Lanes [0, n) set, n <= 16.
inline __mmask16 first_lanes(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// n <= 16 bf16 values widened to fp32 (exact); lanes from n on are zero and read nothing.
inline __m512 load_bf16x16(const uint16_t* p, int64_t n = 16) {
  const __m256i w = _mm256_maskz_loadu_epi16(first_lanes(n), p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(w), 16));
}

// ---- bf16 matvec ------------------------------------------------------------------------------------------------
// bf16 reads need two integer ops per 16 values, far below what memory delivers, so the plain widening suffices.

// out[i] = W[i, :] . x for R consecutive rows of W (row stride K); the rows share the loads of x.
template <int R>
void dot_bf16_rows(const uint16_t* W, const float* x, int64_t K, float* out) {
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int i = 0; i < R; ++i) {
      const uint16_t* w = W + i * K + k;
      acc[i][0] = _mm512_fmadd_ps(load_bf16x16(w), x0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(load_bf16x16(w + 16), x1, acc[i][1]);
    }
  }
  for (; k < K; k += 16) {  // the last 1..31 values, masked
    const int64_t n = K - k < 16 ? K - k : 16;
    const __m512 xk = _mm512_maskz_loadu_ps(first_lanes(n), x + k);
    for (int i = 0; i < R; ++i) acc[i][0] = _mm512_fmadd_ps(load_bf16x16(W + i * K + k, n), xk, acc[i][0]);
  }
  for (int i = 0; i < R; ++i) out[i] = hsum(_mm512_add_ps(acc[i][0], acc[i][1]));
}

void matvec_bf16_avx512(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t r0,
                        int64_t r1) {
  constexpr int R = 4;  // 4 rows x 2 accumulators keep both FMA pipes busy through the 4-cycle latency
  float out[R];
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    dot_bf16_rows<R>(W + r * K, x, K, out);
    for (int i = 0; i < R; ++i) y[r + i] = out[i] + bias_value(bias, r + i);
  }
  for (; r < r1; ++r) {
    dot_bf16_rows<1>(W + r * K, x, K, out);
    y[r] = out[0] + bias_value(bias, r);
  }
}

void matvec_bf16_t_avx512(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t cols,
                          int64_t c0, int64_t c1) {
  constexpr int kVecs = 8;  // 128 columns per pass over K: 8 independent accumulators
  int64_t c = c0;
  for (; c + 16 * kVecs <= c1; c += 16 * kVecs) {
    __m512 acc[kVecs];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      const __m512 xk = _mm512_set1_ps(x[k]);
      const uint16_t* w = W + k * cols + c;
      for (int v = 0; v < kVecs; ++v) acc[v] = _mm512_fmadd_ps(load_bf16x16(w + 16 * v), xk, acc[v]);
    }
    for (int v = 0; v < kVecs; ++v) {
      const __m512 b = bias ? load_bf16x16(bias + c + 16 * v) : _mm512_setzero_ps();
      _mm512_storeu_ps(y + c + 16 * v, _mm512_add_ps(acc[v], b));
    }
  }
  for (; c < c1; c += 16) {  // 16 columns at a time, the last group masked
    const int64_t n = c1 - c < 16 ? c1 - c : 16;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      acc = _mm512_fmadd_ps(load_bf16x16(W + k * cols + c, n), _mm512_set1_ps(x[k]), acc);
    }
    const __m512 b = bias ? load_bf16x16(bias + c, n) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(y + c, first_lanes(n), _mm512_add_ps(acc, b));
  }
}

// ---- MXFP4 ------------------------------------------------------------------------------------------------------

// xp = x with each block's 16 even elements first, then its 16 odd ones.
void permute_x_mxfp4(const float* x, int64_t K, float* xp) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t k = 0; k < K; k += kBlock) {
    const __m512 a = _mm512_loadu_ps(x + k), b = _mm512_loadu_ps(x + k + 16);
    _mm512_store_ps(xp + k, _mm512_permutex2var_ps(a, even, b));
    _mm512_store_ps(xp + k + 16, _mm512_permutex2var_ps(a, odd, b));
  }
}

// out[i] = W[row_i, :] . x for R MXFP4 rows, row i starting at blocks + i * K/2 and scales + i * K/32; xp from
// permute_x_mxfp4. Two accumulators per row (even and odd blocks) hide the FMA latency.
template <int R>
void dot_mxfp4_rows(const uint8_t* blocks, const uint8_t* scales, const float* xp, int64_t K, float* out) {
  const __m512 table = _mm512_loadu_ps(mxfp4::kE2M1);
  const int64_t G = K / kBlock, row_bytes = K / 2;
  __m512 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  auto accumulate_block = [&](int i, int64_t g, __m512& a) {
    const __m512i bytes =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + i * row_bytes + g * kBlockBytes)));
    const __m512 even = _mm512_permutexvar_ps(bytes, table);                         // low nibbles
    const __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);  // high nibbles
    __m512 s = _mm512_mul_ps(even, _mm512_load_ps(xp + g * kBlock));
    s = _mm512_fmadd_ps(odd, _mm512_load_ps(xp + g * kBlock + 16), s);
    a = _mm512_fmadd_ps(s, _mm512_set1_ps(kE8m0.value[scales[i * G + g]]), a);
  };
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    for (int i = 0; i < R; ++i) {
      accumulate_block(i, g, acc[i][0]);
      accumulate_block(i, g + 1, acc[i][1]);
    }
  }
  if (g < G) {
    for (int i = 0; i < R; ++i) accumulate_block(i, g, acc[i][0]);
  }
  for (int i = 0; i < R; ++i) out[i] = hsum(_mm512_add_ps(acc[i][0], acc[i][1]));
}

void matvec_mxfp4_avx512(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x, float* y,
                         int64_t K, int64_t r0, int64_t r1) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().matvec_mxfp4(blocks, scales, bias, x, y, K, r0, r1);
  alignas(64) float xp[kMaxMxfp4K];
  permute_x_mxfp4(x, K, xp);
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  constexpr int R = 2;
  float out[R];
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    dot_mxfp4_rows<R>(blocks + r * row_bytes, scales + r * row_scales, xp, K, out);
    for (int i = 0; i < R; ++i) y[r + i] = out[i] + bias_value(bias, r + i);
  }
  for (; r < r1; ++r) {
    dot_mxfp4_rows<1>(blocks + r * row_bytes, scales + r * row_scales, xp, K, out);
    y[r] = out[0] + bias_value(bias, r);
  }
}

void gate_up_swiglu_mxfp4_avx512(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x,
                                 float* a, int64_t K, int64_t j0, int64_t j1, SwigluParams p) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().gate_up_swiglu_mxfp4(blocks, scales, bias, x, a, K, j0, j1, p);
  alignas(64) float xp[kMaxMxfp4K];
  permute_x_mxfp4(x, K, xp);
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t j = j0; j < j1; ++j) {  // rows 2j (gate) and 2j+1 (up) are adjacent: one two-row pass
    float h[2];
    dot_mxfp4_rows<2>(blocks + 2 * j * row_bytes, scales + 2 * j * row_scales, xp, K, h);
    a[j] = swiglu(h[0] + bias_value(bias, 2 * j), h[1] + bias_value(bias, 2 * j + 1), p);
  }
}

void dequantize_mxfp4_bf16_avx512(const uint8_t* blocks, const uint8_t* scales, uint16_t* out, int64_t K, int64_t r0,
                                  int64_t r1) {
  const __m512 table = _mm512_loadu_ps(mxfp4::kE2M1);
  // Interleave even and odd elements back into natural order: 0..15 and 16..31.
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  const int64_t G = K / kBlock;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const __m512i bytes =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + (r * G + g) * kBlockBytes)));
      const __m512 scale = _mm512_set1_ps(kE8m0.value[scales[r * G + g]]);
      const __m512 even = _mm512_mul_ps(_mm512_permutexvar_ps(bytes, table), scale);
      const __m512 odd = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table), scale);
      // The values are exact, so truncating to the top 16 bits is the bf16 rounding.
      uint16_t* o = out + r * K + g * kBlock;
      for (int half = 0; half < 2; ++half) {
        const __m512 v = _mm512_permutex2var_ps(even, half == 0 ? first : second, odd);
        const __m256i words = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16 * half), words);
      }
    }
  }
}

constexpr KernelTable kAvx512Table = {
    .isa = Isa::Avx512,
    .matvec_bf16 = matvec_bf16_avx512,
    .matvec_bf16_t = matvec_bf16_t_avx512,
    .matvec_mxfp4 = matvec_mxfp4_avx512,
    .gate_up_swiglu_mxfp4 = gate_up_swiglu_mxfp4_avx512,
    .dequantize_mxfp4_bf16 = dequantize_mxfp4_bf16_avx512,
};

}  // namespace

const KernelTable& avx512_kernel_table() { return kAvx512Table; }

}  // namespace ossrun::cpu
