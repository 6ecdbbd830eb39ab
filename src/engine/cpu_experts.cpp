#include "src/engine/cpu_experts.h"

#include <algorithm>
#include <cstring>

#include "src/engine/ops.h"

namespace ossrun::engine {
namespace {

// Output rows per tile in the grouped matvec path: 16 gate/up pairs of MXFP4 at H = 2880 are 49 KB.
constexpr int64_t kRowTile = 16;
// Matmul groups are padded to a multiple of this many rows (zeros), which bounds oneDNN's shape cache.
constexpr int64_t kMatmulRowAlign = 16;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

}  // namespace

void expert_gate_up_swiglu(const cpu::KernelTable& k, const ExpertSlice& s, const ExpertDims& d, const float* x,
                           float* a, float* h_scratch, int64_t j0, int64_t j1) {
  if (s.format == ExpertFormat::MXFP4) {
    k.gate_up_swiglu_mxfp4(s.gate_up_blocks.u8_data(), s.gate_up_scales.u8_data(), s.gate_up_bias.bf16_data(), x, a,
                           d.hidden, j0, j1, d.swiglu);
    return;
  }
  // bf16: transformers' transposed layout (H, 2I); column 2j is gate j, column 2j+1 is up j.
  k.matvec_bf16_t(s.gate_up_weight.bf16_data(), s.gate_up_bias.bf16_data(), x, h_scratch, d.hidden,
                  2 * d.intermediate, 2 * j0, 2 * j1);
  for (int64_t j = j0; j < j1; ++j) a[j] = swiglu(h_scratch[2 * j], h_scratch[2 * j + 1], d.swiglu.alpha, d.swiglu.limit);
}

void expert_down(const cpu::KernelTable& k, const ExpertSlice& s, const ExpertDims& d, const float* a, float* y,
                 int64_t r0, int64_t r1) {
  if (s.format == ExpertFormat::MXFP4)
    k.matvec_mxfp4(s.down_blocks.u8_data(), s.down_scales.u8_data(), s.down_bias.bf16_data(), a, y, d.intermediate, r0,
                   r1);
  else  // bf16: (I, H), transposed
    k.matvec_bf16_t(s.down_weight.bf16_data(), s.down_bias.bf16_data(), a, y, d.intermediate, d.hidden, r0, r1);
}

CpuExperts::CpuExperts(const Checkpoint& ck, CpuContext ctx, int64_t max_tokens) : ctx_(ctx), max_tokens_(max_tokens) {
  const ModelConfig& c = ck.config();
  dims_.hidden = c.hidden_size;
  dims_.intermediate = c.intermediate_size;
  dims_.swiglu.alpha = static_cast<float>(c.swiglu_alpha);
  dims_.swiglu.limit = static_cast<float>(c.swiglu_limit);
  n_experts_ = c.num_local_experts;
  k_ = c.num_experts_per_tok;
  format_ = c.expert_format;
  slices_.reserve(static_cast<size_t>(c.num_hidden_layers * n_experts_));
  for (int l = 0; l < c.num_hidden_layers; ++l)
    for (int e = 0; e < n_experts_; ++e) slices_.push_back(ck.expert(l, e));

  const size_t H = static_cast<size_t>(dims_.hidden), I = static_cast<size_t>(dims_.intermediate);
  const size_t rows = static_cast<size_t>(std::max(round_up(max_tokens_, kMatmulRowAlign), k_));
  active_.resize(static_cast<size_t>(k_));
  count_.resize(static_cast<size_t>(n_experts_));
  offset_.resize(static_cast<size_t>(n_experts_ + 1));
  pair_token_.resize(static_cast<size_t>(max_tokens_ * k_));
  pair_weight_.resize(static_cast<size_t>(max_tokens_ * k_));
  x_.resize(rows * H);
  a_.resize(rows * I);
  h_.resize(rows * 2 * I);
  y_.resize(rows * H);
  if (max_tokens_ >= kMinMatmulTokens && ctx_.matmul) {
    w1_.resize(2 * I * H);
    w2_.resize(H * I);
  }
}

uint64_t CpuExperts::workspace_bytes() const {
  return (active_.size() + count_.size() + offset_.size() + pair_token_.size()) * sizeof(int64_t) +
         (pair_weight_.size() + x_.size() + a_.size() + h_.size() + y_.size()) * sizeof(float) +
         (w1_.size() + w2_.size()) * sizeof(uint16_t);
}

std::string CpuExperts::describe() const { return std::string(expert_format_name(format_)) + " experts on the CPU"; }

void CpuExperts::run(const ExpertBatch& b) {
  if (b.n == 1)
    run_one_token(b);
  else
    run_grouped(b);
}

// Decode: the k experts of one token share each dispatch, so every thread has rows to do. Skipped choices
// (negative ids: served elsewhere) are left out before the rows are split.
void CpuExperts::run_one_token(const ExpertBatch& b) {
  const cpu::KernelTable& kt = *ctx_.kernels;
  const int64_t H = dims_.hidden, I = dims_.intermediate;
  int64_t m = 0;  // choices to compute, listed in active_
  for (int64_t i = 0; i < k_; ++i)
    if (b.ids[i] >= 0) active_[m++] = i;
  if (m == 0) {
    std::fill(b.out, b.out + H, 0.0f);
    return;
  }
  float* h = h_.data();
  ctx_.workers->for_rows(m * I, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 / I; i * I < r1; ++i) {
      const int64_t j0 = std::max(r0 - i * I, int64_t{0}), j1 = std::min(r1 - i * I, I);
      expert_gate_up_swiglu(kt, slice(b.layer, b.ids[active_[i]]), dims_, b.x, a_.data() + i * I,
                            h ? h + i * 2 * I : nullptr, j0, j1);
    }
  });
  ctx_.workers->for_rows(m * H, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 / H; i * H < r1; ++i) {
      const int64_t j0 = std::max(r0 - i * H, int64_t{0}), j1 = std::min(r1 - i * H, H);
      expert_down(kt, slice(b.layer, b.ids[active_[i]]), dims_, a_.data() + i * I, y_.data() + i * H, j0, j1);
    }
  });
  // Combine (gpt-oss.md §4 step 6): the down bias is inside the weighted sum.
  for (int64_t r = 0; r < H; ++r) {
    float acc = 0;
    for (int64_t i = 0; i < m; ++i) acc += b.weights[active_[i]] * y_[i * H + r];
    b.out[r] = acc;
  }
}

// Prefill: group the batch's (token, slot) pairs by expert, then run each expert once over its group.
void CpuExperts::run_grouped(const ExpertBatch& b) {
  const int64_t H = dims_.hidden;

  // Routing metadata: counts, offsets (exclusive prefix sum), then the pairs in expert order.
  std::fill(count_.begin(), count_.end(), 0);
  for (int64_t p = 0; p < b.n * k_; ++p)
    if (b.ids[p] >= 0) ++count_[b.ids[p]];
  offset_[0] = 0;
  for (int64_t e = 0; e < n_experts_; ++e) offset_[e + 1] = offset_[e] + count_[e];
  std::fill(count_.begin(), count_.end(), 0);
  for (int64_t p = 0; p < b.n * k_; ++p) {
    const int32_t e = b.ids[p];
    if (e < 0) continue;  // skipped: served elsewhere
    const int64_t at = offset_[e] + count_[e]++;
    pair_token_[at] = p / k_;
    pair_weight_[at] = b.weights[p];
  }

  std::fill(b.out, b.out + b.n * H, 0.0f);
  for (int64_t e = 0; e < n_experts_; ++e) {
    const int64_t g0 = offset_[e], m = count_[e];
    if (m == 0) continue;
    const ExpertSlice& s = slice(b.layer, static_cast<int>(e));
    for (int64_t g = 0; g < m; ++g)
      std::memcpy(x_.data() + g * H, b.x + pair_token_[g0 + g] * H, static_cast<size_t>(H) * sizeof(float));
    if (m >= kMinMatmulTokens && !w1_.empty())
      group_by_matmul(s, m);
    else
      group_by_matvec(s, m);
    // Scatter: each token appears at most once per expert, so the adds never collide.
    for (int64_t g = 0; g < m; ++g) {
      float* o = b.out + pair_token_[g0 + g] * H;
      const float w = pair_weight_[g0 + g];
      const float* y = y_.data() + g * H;
      for (int64_t r = 0; r < H; ++r) o[r] += w * y[r];
    }
  }
}

void CpuExperts::group_by_matvec(const ExpertSlice& s, int64_t m) {
  const cpu::KernelTable& kt = *ctx_.kernels;
  const int64_t H = dims_.hidden, I = dims_.intermediate;
  // Each tile of weight rows serves every token of the group while it is in cache.
  ctx_.workers->for_rows(I, kRowTile, [&](int64_t j0, int64_t j1) {
    for (int64_t t0 = j0; t0 < j1; t0 += kRowTile)
      for (int64_t g = 0; g < m; ++g)
        expert_gate_up_swiglu(kt, s, dims_, x_.data() + g * H, a_.data() + g * I, h_.data() + g * 2 * I, t0,
                              std::min(j1, t0 + kRowTile));
  });
  ctx_.workers->for_rows(H, kRowTile, [&](int64_t r0, int64_t r1) {
    for (int64_t t0 = r0; t0 < r1; t0 += kRowTile)
      for (int64_t g = 0; g < m; ++g)
        expert_down(kt, s, dims_, a_.data() + g * I, y_.data() + g * H, t0, std::min(r1, t0 + kRowTile));
  });
}

void CpuExperts::dequantize_tiles(const ExpertSlice& s) {
  const int64_t H = dims_.hidden, I = dims_.intermediate;
  if (s.format == ExpertFormat::MXFP4) {
    const cpu::KernelTable& kt = *ctx_.kernels;
    ctx_.workers->for_rows(2 * I + H, kRowTile, [&](int64_t r0, int64_t r1) {
      // Rows [0, 2I) are gate_up's, [2I, 2I + H) down's.
      if (r0 < 2 * I)
        kt.dequantize_mxfp4_bf16(s.gate_up_blocks.u8_data(), s.gate_up_scales.u8_data(), w1_.data(), H, r0,
                                 std::min(r1, 2 * I));
      if (r1 > 2 * I)
        kt.dequantize_mxfp4_bf16(s.down_blocks.u8_data(), s.down_scales.u8_data(), w2_.data(), I,
                                 std::max(r0, 2 * I) - 2 * I, r1 - 2 * I);
    });
    return;
  }
  // bf16: transformers' (in, out) layout transposed to (out, in).
  const uint16_t* gu = s.gate_up_weight.bf16_data();  // (H, 2I)
  const uint16_t* dn = s.down_weight.bf16_data();     // (I, H)
  ctx_.workers->for_rows(2 * I + H, kRowTile, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (r < 2 * I)
        for (int64_t k = 0; k < H; ++k) w1_[r * H + k] = gu[k * 2 * I + r];
      else
        for (int64_t k = 0; k < I; ++k) w2_[(r - 2 * I) * I + k] = dn[k * H + (r - 2 * I)];
    }
  });
}

void CpuExperts::group_by_matmul(const ExpertSlice& s, int64_t m) {
  const int64_t H = dims_.hidden, I = dims_.intermediate;
  const int64_t rows = round_up(m, kMatmulRowAlign);
  std::fill(x_.begin() + m * H, x_.begin() + rows * H, 0.0f);
  dequantize_tiles(s);
  // h = x W1^T + b1, then the SwiGLU of each (gate, up) column pair.
  ctx_.matmul->run(*ctx_.workers, x_.data(), w1_.data(), s.gate_up_bias.bf16_data(), h_.data(), rows, 2 * I, H);
  ctx_.workers->for_rows(m, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t j = 0; j < I; ++j)
        a_[g * I + j] = swiglu(h_[g * 2 * I + 2 * j], h_[g * 2 * I + 2 * j + 1], dims_.swiglu.alpha, dims_.swiglu.limit);
  });
  std::fill(a_.begin() + m * I, a_.begin() + rows * I, 0.0f);
  // y = a W2^T + b2
  ctx_.matmul->run(*ctx_.workers, a_.data(), w2_.data(), s.down_bias.bf16_data(), y_.data(), rows, H, I);
}

}  // namespace ossrun::engine
