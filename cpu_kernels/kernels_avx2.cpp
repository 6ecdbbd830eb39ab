// AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; run only after cpu_features.cpp checked them).
//
// No static object here may need code to initialise it (it would run at start-up on any CPU): vector constants
// are built inside the functions, tables are constexpr data.
//
// MXFP4 decode. A 32-byte load holds two blocks, one per 128-bit lane. The low and high nibbles select, through
// vpshufb on 16-entry tables, byte 2 and byte 3 of the fp32 value kE2M1[nibble] (bytes 0 and 1 are zero for every
// E2M1 value). Interleaving those two bytes gives each value as a bf16 word, and a word pair in a dword yields two
// fp32 vectors by a shift and a mask. The decoded values come out in a fixed permutation of the block's element
// order, so x is permuted once per call into the same order (permute_x_mxfp4) instead of shuffling the weights
// back. The E8M0 scale multiplies each block's partial sums once, as an fp32 power of two.
#include <immintrin.h>

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

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 bf16 values widened to fp32 (exact: bf16 is the top half of fp32).
inline __m256 load_bf16x8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// ---- bf16 matvec ------------------------------------------------------------------------------------------------
// bf16 reads need two integer ops per 8 values, far below what memory delivers, so the plain widening suffices.

// out[i] = W[i, :] . x for R consecutive rows of W (row stride K); the rows share the loads of x.
template <int R>
void dot_bf16_rows(const uint16_t* W, const float* x, int64_t K, float* out) {
  __m256 acc[R][2];
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
    for (int i = 0; i < R; ++i) {
      const uint16_t* w = W + i * K + k;
      acc[i][0] = _mm256_fmadd_ps(load_bf16x8(w), x0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(load_bf16x8(w + 8), x1, acc[i][1]);
    }
  }
  if (k + 8 <= K) {
    const __m256 x0 = _mm256_loadu_ps(x + k);
    for (int i = 0; i < R; ++i) acc[i][0] = _mm256_fmadd_ps(load_bf16x8(W + i * K + k), x0, acc[i][0]);
    k += 8;
  }
  for (int i = 0; i < R; ++i) {
    float s = hsum(_mm256_add_ps(acc[i][0], acc[i][1]));
    for (int64_t t = k; t < K; ++t) s += bf16_value(W[i * K + t]) * x[t];
    out[i] = s;
  }
}

void matvec_bf16_avx2(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t r0,
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

void matvec_bf16_t_avx2(const uint16_t* W, const uint16_t* bias, const float* x, float* y, int64_t K, int64_t cols,
                        int64_t c0, int64_t c1) {
  constexpr int kVecs = 8;  // 64 columns per pass over K: 8 independent accumulators
  int64_t c = c0;
  for (; c + 8 * kVecs <= c1; c += 8 * kVecs) {
    __m256 acc[kVecs];
    for (auto& a : acc) a = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      const __m256 xk = _mm256_broadcast_ss(x + k);
      const uint16_t* w = W + k * cols + c;
      for (int v = 0; v < kVecs; ++v) acc[v] = _mm256_fmadd_ps(load_bf16x8(w + 8 * v), xk, acc[v]);
    }
    for (int v = 0; v < kVecs; ++v) {
      const __m256 b = bias ? load_bf16x8(bias + c + 8 * v) : _mm256_setzero_ps();
      _mm256_storeu_ps(y + c + 8 * v, _mm256_add_ps(acc[v], b));
    }
  }
  for (; c + 8 <= c1; c += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; ++k) acc = _mm256_fmadd_ps(load_bf16x8(W + k * cols + c), _mm256_broadcast_ss(x + k), acc);
    _mm256_storeu_ps(y + c, _mm256_add_ps(acc, bias ? load_bf16x8(bias + c) : _mm256_setzero_ps()));
  }
  for (; c < c1; ++c) {  // fewer than 8 columns left
    float acc = 0.0f;
    for (int64_t k = 0; k < K; ++k) acc += bf16_value(W[k * cols + c]) * x[k];
    y[c] = acc + bias_value(bias, c);
  }
}

// ---- MXFP4 ------------------------------------------------------------------------------------------------------

// Byte `byte` of the fp32 bit pattern of kE2M1[n], for n = 0..15, repeated for both 128-bit lanes.
struct E2m1ByteTable {
  uint8_t bytes[32];
  constexpr explicit E2m1ByteTable(int byte) : bytes{} {
    for (int i = 0; i < 32; ++i) {
      const uint32_t bits = __builtin_bit_cast(uint32_t, mxfp4::kE2M1[i % 16]);
      bytes[i] = static_cast<uint8_t>(bits >> (8 * byte));
    }
  }
};
inline constexpr E2m1ByteTable kE2m1Byte2{2};
inline constexpr E2m1ByteTable kE2m1Byte3{3};

// Where decoded vector v (of 8) takes its values from: lane L, position i holds element kDecodedOffset[v] + 4i
// of block 2p + L (see decode_block_pair).
constexpr int kDecodedOffset[8] = {0, 2, 16, 18, 1, 3, 17, 19};

struct Mxfp4Decoder {
  __m256i nibble_mask = _mm256_set1_epi8(0x0f);
  __m256i high_word_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  __m256i byte2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kE2m1Byte2.bytes));
  __m256i byte3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kE2m1Byte3.bytes));

  // The 64 values of two blocks (one per lane of v) as 8 fp32 vectors, unscaled, in the kDecodedOffset order.
  void decode_block_pair(__m256i v, __m256 f[8]) const {
    const __m256i lo = _mm256_and_si256(v, nibble_mask);                         // byte j: element 2j
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble_mask);  // byte j: element 2j+1
    const __m256i b2lo = _mm256_shuffle_epi8(byte2, lo), b3lo = _mm256_shuffle_epi8(byte3, lo);
    const __m256i b2hi = _mm256_shuffle_epi8(byte2, hi), b3hi = _mm256_shuffle_epi8(byte3, hi);
    // bf16 words: word m of each lane is element 2m (wa), 16+2m (wb), 2m+1 (wc), 17+2m (wd).
    const __m256i words[4] = {_mm256_unpacklo_epi8(b2lo, b3lo), _mm256_unpackhi_epi8(b2lo, b3lo),
                              _mm256_unpacklo_epi8(b2hi, b3hi), _mm256_unpackhi_epi8(b2hi, b3hi)};
    for (int w = 0; w < 4; ++w) {
      f[2 * w] = _mm256_castsi256_ps(_mm256_slli_epi32(words[w], 16));               // even words
      f[2 * w + 1] = _mm256_castsi256_ps(_mm256_and_si256(words[w], high_word_mask));  // odd words
    }
  }
};

// xp = x in the order decode_block_pair produces, 64 values per block pair; an odd last block's partner lanes are
// zero. xp holds 64 * ceil(K/64) floats.
void permute_x_mxfp4(const float* x, int64_t K, float* xp) {
  const int64_t G = K / kBlock;
  for (int64_t p = 0; p < (G + 1) / 2; ++p) {
    for (int v = 0; v < 8; ++v) {
      for (int lane = 0; lane < 2; ++lane) {
        const int64_t g = 2 * p + lane;
        for (int i = 0; i < 4; ++i) {
          xp[64 * p + 8 * v + 4 * lane + i] = g < G ? x[g * kBlock + kDecodedOffset[v] + 4 * i] : 0.0f;
        }
      }
    }
  }
}

// out[i] = W[row_i, :] . x for R MXFP4 rows, row i starting at blocks + i * K/2 and scales + i * K/32; xp from
// permute_x_mxfp4.
template <int R>
void dot_mxfp4_rows(const Mxfp4Decoder& dec, const uint8_t* blocks, const uint8_t* scales, const float* xp, int64_t K,
                    float* out) {
  const int64_t G = K / kBlock, row_bytes = K / 2;
  __m256 acc[R];
  for (auto& a : acc) a = _mm256_setzero_ps();
  auto accumulate_pair = [&](int i, __m256i v, const float* xq, float scale0, float scale1) {
    __m256 f[8];
    dec.decode_block_pair(v, f);
    __m256 s0 = _mm256_mul_ps(f[0], _mm256_load_ps(xq));
    __m256 s1 = _mm256_mul_ps(f[1], _mm256_load_ps(xq + 8));
    for (int t = 2; t < 8; t += 2) {
      s0 = _mm256_fmadd_ps(f[t], _mm256_load_ps(xq + 8 * t), s0);
      s1 = _mm256_fmadd_ps(f[t + 1], _mm256_load_ps(xq + 8 * t + 8), s1);
    }
    const __m256 scale = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(scale0)), _mm_set1_ps(scale1), 1);
    acc[i] = _mm256_fmadd_ps(_mm256_add_ps(s0, s1), scale, acc[i]);
  };
  int64_t p = 0;
  for (; 2 * p + 1 < G; ++p) {
    for (int i = 0; i < R; ++i) {
      const uint8_t* b = blocks + i * row_bytes + 2 * p * kBlockBytes;
      const uint8_t* s = scales + i * G + 2 * p;
      accumulate_pair(i, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), xp + 64 * p, kE8m0.value[s[0]],
                      kE8m0.value[s[1]]);
    }
  }
  if (2 * p < G) {  // odd block count: the last block alone in lane 0, zero weights, x and scale in lane 1
    for (int i = 0; i < R; ++i) {
      const uint8_t* b = blocks + i * row_bytes + 2 * p * kBlockBytes;
      const __m256i v = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
      accumulate_pair(i, v, xp + 64 * p, kE8m0.value[scales[i * G + 2 * p]], 0.0f);
    }
  }
  for (int i = 0; i < R; ++i) out[i] = hsum(acc[i]);
}

void matvec_mxfp4_avx2(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x, float* y,
                       int64_t K, int64_t r0, int64_t r1) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().matvec_mxfp4(blocks, scales, bias, x, y, K, r0, r1);
  alignas(32) float xp[kMaxMxfp4K + 2 * kBlock];
  permute_x_mxfp4(x, K, xp);
  const Mxfp4Decoder dec;
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  constexpr int R = 2;
  float out[R];
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    dot_mxfp4_rows<R>(dec, blocks + r * row_bytes, scales + r * row_scales, xp, K, out);
    for (int i = 0; i < R; ++i) y[r + i] = out[i] + bias_value(bias, r + i);
  }
  for (; r < r1; ++r) {
    dot_mxfp4_rows<1>(dec, blocks + r * row_bytes, scales + r * row_scales, xp, K, out);
    y[r] = out[0] + bias_value(bias, r);
  }
}

void gate_up_swiglu_mxfp4_avx2(const uint8_t* blocks, const uint8_t* scales, const uint16_t* bias, const float* x,
                               float* a, int64_t K, int64_t j0, int64_t j1, SwigluParams p) {
  if (K > kMaxMxfp4K) return scalar_kernel_table().gate_up_swiglu_mxfp4(blocks, scales, bias, x, a, K, j0, j1, p);
  alignas(32) float xp[kMaxMxfp4K + 2 * kBlock];
  permute_x_mxfp4(x, K, xp);
  const Mxfp4Decoder dec;
  const int64_t row_bytes = K / 2, row_scales = K / kBlock;
  for (int64_t j = j0; j < j1; ++j) {  // rows 2j (gate) and 2j+1 (up) are adjacent: one two-row pass
    float h[2];
    dot_mxfp4_rows<2>(dec, blocks + 2 * j * row_bytes, scales + 2 * j * row_scales, xp, K, h);
    a[j] = swiglu(h[0] + bias_value(bias, 2 * j), h[1] + bias_value(bias, 2 * j + 1), p);
  }
}

// Dequantization feeds prefill tiles, so it wants natural order: here the nibbles index an 8-entry fp32 table of
// magnitudes through vpermps, and the sign (nibble bit 3) is xored in. The table entries are pre-xored with
// (i << 28) so that one xor with (nibble << 28) both cancels that and sets the sign bit.
void dequantize_mxfp4_bf16_avx2(const uint8_t* blocks, const uint8_t* scales, uint16_t* out, int64_t K, int64_t r0,
                                int64_t r1) {
  alignas(32) uint32_t magnitude_bits[8];
  for (uint32_t i = 0; i < 8; ++i) magnitude_bits[i] = __builtin_bit_cast(uint32_t, mxfp4::kE2M1[i]) ^ (i << 28);
  const __m256 table = _mm256_load_ps(reinterpret_cast<const float*>(magnitude_bits));
  auto decode = [&](__m256i nibble_in_low_bits) {  // bits 0-3 of each dword: one nibble; higher bits ignored
    const __m256 magnitude = _mm256_permutevar8x32_ps(table, nibble_in_low_bits);
    return _mm256_xor_ps(magnitude, _mm256_castsi256_ps(_mm256_slli_epi32(nibble_in_low_bits, 28)));
  };
  const int64_t G = K / kBlock;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t* b = blocks + (r * G + g) * kBlockBytes;
      const __m256 scale = _mm256_set1_ps(kE8m0.value[scales[r * G + g]]);
      uint16_t* o = out + r * K + g * kBlock;
      for (int half = 0; half < 2; ++half) {  // bytes 8*half .. 8*half+7: elements 16*half .. 16*half+15
        const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * half)));
        const __m256 even = _mm256_mul_ps(decode(bytes), scale);                         // elements 0, 2, .., 14
        const __m256 odd = _mm256_mul_ps(decode(_mm256_srli_epi32(bytes, 4)), scale);  // elements 1, 3, .., 15
        // unpacklo gives elements 0-3 | 8-11, unpackhi 4-7 | 12-15; packus of the two (per lane) is 0-7 | 8-15.
        // The values are exact, so truncating to the top 16 bits is the bf16 rounding.
        const __m256i lo = _mm256_srli_epi32(_mm256_castps_si256(_mm256_unpacklo_ps(even, odd)), 16);
        const __m256i hi = _mm256_srli_epi32(_mm256_castps_si256(_mm256_unpackhi_ps(even, odd)), 16);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16 * half), _mm256_packus_epi32(lo, hi));
      }
    }
  }
}

constexpr KernelTable kAvx2Table = {
    .isa = Isa::Avx2,
    .matvec_bf16 = matvec_bf16_avx2,
    .matvec_bf16_t = matvec_bf16_t_avx2,
    .matvec_mxfp4 = matvec_mxfp4_avx2,
    .gate_up_swiglu_mxfp4 = gate_up_swiglu_mxfp4_avx2,
    .dequantize_mxfp4_bf16 = dequantize_mxfp4_bf16_avx2,
};

}  // namespace

const KernelTable& avx2_kernel_table() { return kAvx2Table; }

}  // namespace ossrun::cpu
