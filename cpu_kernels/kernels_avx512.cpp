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

// How far ahead of the current read the weight kernels prefetch. On a 16-core Sapphire Rapids Xeon the hardware
// prefetchers alone left 16 threads of bf16 matvec at 91 GB/s against a 110 GB/s read stream; prefetching 4 KiB
// ahead gave 108 (1 KiB: 98, 2 KiB: 104). Prefetches past the end of a tensor are harmless (they never fault).
constexpr int64_t kPrefetchBytes = 4096;
inline void prefetch_ahead(const void* p) {
  _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
}

// W[r, :] . x for one bf16 row. One row at a time so that each thread reads one sequential stream (interleaving
// rows cost half the bandwidth on Zen 5); four accumulators hide the FMA latency.
float dot_bf16_row(const uint16_t* w, const float* x, int64_t K) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {  // 128 bytes: two cache lines
    prefetch_ahead(w + k);
    prefetch_ahead(w + k + 32);
    for (int v = 0; v < 4; ++v) {
      acc[v] = _mm512_fmadd_ps(load_bf16x16(w + k + 16 * v), _mm512_loadu_ps(x + k + 16 * v), acc[v]);
    }
  }
  for (; k < K; k += 16) {  // the last 1..63 values, the final group masked
    const int64_t n = K - k < 16 ? K - k : 16;
    acc[0] = _mm512_fmadd_ps(load_bf16x16(w + k, n), _mm512_maskz_loadu_ps(first_lanes(n), x + k), acc[0]);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

void matvec_bf16_avx512(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t r0,
                        int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) y[r] = dot_bf16_row(W + r * K, x, K) + bias_value(bias, r);
}

// Transposed layout: accumulators for a band of columns live in registers while K rows stream by; each row is
// visited once per band, so wider bands mean fewer, longer reads (a band kept in L1 instead measured 5x slower).
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

// W[r, :] . x for one MXFP4 row (blocks: its K/2 bytes, scales: its K/32 bytes); xp from permute_x_mxfp4.
// One row at a time on purpose: a thread then reads one sequential stream, which the hardware prefetchers follow
// at full speed; interleaving two rows halved the achieved bandwidth on Zen 5. Two accumulators (even and odd
// blocks) hide the FMA latency instead.
float dot_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, const float* xp, int64_t K) {
  const __m512 table = _mm512_loadu_ps(mxfp4::kE2M1);
  const int64_t G = K / kBlock;
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  auto accumulate_block = [&](int64_t g, __m512& a) {
    const __m512i bytes =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks + g * kBlockBytes)));
    const __m512 even = _mm512_permutexvar_ps(bytes, table);                       // low nibbles
    const __m512 odd = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table);  // high nibbles
    __m512 s = _mm512_mul_ps(even, _mm512_load_ps(xp + g * kBlock));
    s = _mm512_fmadd_ps(odd, _mm512_load_ps(xp + g * kBlock + 16), s);
    a = _mm512_fmadd_ps(s, _mm512_set1_ps(kE8m0.value[scales[g]]), a);
  };
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    if ((g & 3) == 0) prefetch_ahead(blocks + g * kBlockBytes);  // one cache line per 4 blocks
    accumulate_block(g, acc[0]);
    accumulate_block(g + 1, acc[1]);
  }
  if (g < G) accumulate_block(g, acc[0]);
  return hsum(_mm512_add_ps(acc[0], acc[1]));
}

void matvec_mxfp4_avx512(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x, float* y,
                         int64_t K, int64_t r0, int64_t r1) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().matvec_mxfp4(blocks, scales, bias, x, y, K, r0, r1);
  alignas(64) float xp[kMaxMxfp4K];
  permute_x_mxfp4(x, K, xp);
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t r = r0; r < r1; ++r) {
    y[r] = dot_mxfp4_row(blocks + r * row_bytes, scales + r * row_scales, xp, K) + bias_value(bias, r);
  }
}

void gate_up_swiglu_mxfp4_avx512(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x,
                                 float* a, int64_t K, int64_t j0, int64_t j1, SwigluParams p) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().gate_up_swiglu_mxfp4(blocks, scales, bias, x, a, K, j0, j1, p);
  alignas(64) float xp[kMaxMxfp4K];
  permute_x_mxfp4(x, K, xp);
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t j = j0; j < j1; ++j) {  // row 2j is gate j, row 2j+1 up j: read one after the other
    const int64_t g = 2 * j, u = 2 * j + 1;
    const float gate = dot_mxfp4_row(blocks + g * row_bytes, scales + g * row_scales, xp, K) + bias_value(bias, g);
    const float up = dot_mxfp4_row(blocks + u * row_bytes, scales + u * row_scales, xp, K) + bias_value(bias, u);
    a[j] = swiglu(gate, up, p);
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

uint64_t stream_read_avx512(const uint8_t* p, int64_t bytes) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  for (int64_t i = 0; i < bytes; i += 256) {
    for (int j = 0; j < 4; ++j) acc[j] = _mm512_add_epi64(acc[j], _mm512_load_si512(p + i + 64 * j));
  }
  const __m512i s = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, s);
  uint64_t sum = 0;
  for (uint64_t lane : lanes) sum += lane;
  return sum;
}

constexpr KernelTable kAvx512Table = {
    .isa = Isa::Avx512,
    .matvec_bf16 = matvec_bf16_avx512,
    .matvec_bf16_t = matvec_bf16_t_avx512,
    .matvec_mxfp4 = matvec_mxfp4_avx512,
    .gate_up_swiglu_mxfp4 = gate_up_swiglu_mxfp4_avx512,
    .dequantize_mxfp4_bf16 = dequantize_mxfp4_bf16_avx512,
    .stream_read = stream_read_avx512,
};

}  // namespace

const KernelTable& avx512_kernel_table() { return kAvx512Table; }

}  // namespace ossrun::cpu
