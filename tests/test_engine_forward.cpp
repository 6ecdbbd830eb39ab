// The CPU engine (src/engine/session.h) against a float64 forward pass written here straight from
// gpt-oss.md §4-§6 and §10, on tiny synthetic checkpoints, for every kernel ISA this CPU runs and both
// batch paths (matvec kernels; oneDNN split-bf16 matmuls).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <new>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "src/engine/sampler.h"
#include "src/engine/session.h"
#include "src/model/bf16.h"
#include "src/model/checkpoint.h"
#include "src/model/error.h"
#include "src/model/mxfp4.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;

// Counts every allocation through the global operator new, so a test can check that decode makes none.
// Every unaligned form is replaced, so no allocation of one allocator is ever freed by the other (a sanitizer
// build brings its own operators and reports such a mismatch).
// GCC 12 at -O3 inlines these operators into library code that it saw allocate with `new` and then flags the
// free() (-Wmismatched-new-delete); every form is replaced consistently, so the pairing is right.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<uint64_t> g_allocations{0};
static void* counted_malloc(std::size_t n) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

int process_threads() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------------------------------------
// The float64 reference: plain loops over the checkpoint's values, every position of the sequence at once.

Vec bf16_vec(const TensorView& t) {
  Vec v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(t.bf16_data()[i]);
  return v;
}

// y = W x + b, W (rows, cols)
Vec linear(const Vec& W, const Vec* b, const double* x, int64_t rows, int64_t cols) {
  Vec y(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double acc = b ? (*b)[r] : 0.0;
    for (int64_t k = 0; k < cols; ++k) acc += W[r * cols + k] * x[k];
    y[r] = acc;
  }
  return y;
}

Vec rmsnorm(const double* x, const Vec& w, int64_t n, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  Vec y(n);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / std::sqrt(ss / n + eps) * w[i];
  return y;
}

// One expert's weights as dense (out, in) float64 matrices, from either format.
struct DenseExpert {
  Vec w1, b1;  // (2I, H), (2I)
  Vec w2, b2;  // (H, I), (H)
};

DenseExpert dense_expert(const Checkpoint& ck, int layer, int e) {
  const ModelConfig& c = ck.config();
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const ExpertSlice s = ck.expert(layer, e);
  DenseExpert d{Vec(2 * I * H), bf16_vec(s.gate_up_bias), Vec(H * I), bf16_vec(s.down_bias)};
  if (s.format == ExpertFormat::MXFP4) {
    for (int64_t r = 0; r < 2 * I; ++r)
      for (int64_t k = 0; k < H; ++k)
        d.w1[r * H + k] = mxfp4::element(s.gate_up_blocks.u8_data() + r * H / 2, s.gate_up_scales.u8_data() + r * H / 32, k);
    for (int64_t r = 0; r < H; ++r)
      for (int64_t k = 0; k < I; ++k)
        d.w2[r * I + k] = mxfp4::element(s.down_blocks.u8_data() + r * I / 2, s.down_scales.u8_data() + r * I / 32, k);
  } else {  // transformers' transposed layout: gate_up (H, 2I), down (I, H)
    const Vec gu = bf16_vec(s.gate_up_weight), dn = bf16_vec(s.down_weight);
    for (int64_t r = 0; r < 2 * I; ++r)
      for (int64_t k = 0; k < H; ++k) d.w1[r * H + k] = gu[k * 2 * I + r];
    for (int64_t r = 0; r < H; ++r)
      for (int64_t k = 0; k < I; ++k) d.w2[r * I + k] = dn[k * H + r];
  }
  return d;
}

// YaRN inv_freq and concentration, written out again from gpt-oss.md §5.3.
void yarn(const RopeConfig& r, int64_t d, Vec& inv_freq, double& conc) {
  inv_freq.assign(d / 2, 0);
  conc = 1;
  for (int64_t i = 0; i < d / 2; ++i) inv_freq[i] = std::pow(r.theta, -2.0 * i / d);
  if (!r.yarn) return;
  auto dim = [&](double rot) { return d * std::log(r.original_max_position_embeddings / (rot * 2 * std::numbers::pi)) / (2 * std::log(r.theta)); };
  double low = dim(r.beta_fast), high = dim(r.beta_slow);
  if (r.truncate) low = std::floor(low), high = std::ceil(high);
  for (int64_t i = 0; i < d / 2; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    inv_freq[i] = inv_freq[i] / r.factor * ramp + inv_freq[i] * (1 - ramp);
  }
  conc = 0.1 * std::log(r.factor) + 1;
}

// Logits (T, V) for every position of ids.
std::vector<Vec> reference_forward(const Checkpoint& ck, const std::vector<int32_t>& ids) {
  const ModelConfig& c = ck.config();
  const ModelWeights& w = ck.weights();
  const int64_t T = static_cast<int64_t>(ids.size()), H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t NH = c.num_attention_heads, NKV = c.num_key_value_heads, E = c.num_local_experts, K = c.num_experts_per_tok;
  Vec inv_freq;
  double conc;
  yarn(c.rope, D, inv_freq, conc);
  auto rope = [&](double* v, int64_t pos) {
    for (int64_t i = 0; i < D / 2; ++i) {
      const double cs = conc * std::cos(pos * inv_freq[i]), sn = conc * std::sin(pos * inv_freq[i]);
      const double a = v[i], b = v[i + D / 2];
      v[i] = a * cs - b * sn;
      v[i + D / 2] = b * cs + a * sn;
    }
  };

  const Vec embed = bf16_vec(w.embed);
  std::vector<Vec> x(T);
  for (int64_t t = 0; t < T; ++t) x[t] = Vec(embed.begin() + ids[t] * H, embed.begin() + (ids[t] + 1) * H);

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    const Vec wq = bf16_vec(lw.q_weight), bq = bf16_vec(lw.q_bias), wk = bf16_vec(lw.k_weight), bk = bf16_vec(lw.k_bias);
    const Vec wv = bf16_vec(lw.v_weight), bv = bf16_vec(lw.v_bias), wo = bf16_vec(lw.o_weight), bo = bf16_vec(lw.o_bias);
    const Vec sinks = bf16_vec(lw.sinks), n1 = bf16_vec(lw.input_norm), n2 = bf16_vec(lw.post_attention_norm);
    const Vec wr = bf16_vec(lw.router_weight), br = bf16_vec(lw.router_bias);
    const bool sliding = c.layer_types[l] == LayerType::SlidingAttention;

    // Attention: q, k, v with RoPE for all positions, then causal (windowed) softmax with the sink.
    std::vector<Vec> q(T), k(T), v(T);
    for (int64_t t = 0; t < T; ++t) {
      const Vec n = rmsnorm(x[t].data(), n1, H, c.rms_norm_eps);
      q[t] = linear(wq, &bq, n.data(), NH * D, H);
      k[t] = linear(wk, &bk, n.data(), NKV * D, H);
      v[t] = linear(wv, &bv, n.data(), NKV * D, H);
      for (int64_t h = 0; h < NH; ++h) rope(q[t].data() + h * D, t);
      for (int64_t h = 0; h < NKV; ++h) rope(k[t].data() + h * D, t);
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec attn(NH * D, 0.0);
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t g = h / (NH / NKV);
        Vec logit;  // the sink first, as an extra column
        logit.push_back(sinks[h]);
        for (int64_t j = 0; j <= t; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += q[t][h * D + d] * k[j][g * D + d];
          logit.push_back(sliding && j <= t - c.sliding_window ? -INFINITY : s / std::sqrt(double(D)));
        }
        const double m = *std::max_element(logit.begin(), logit.end());
        double z = 0;
        for (double& e : logit) z += (e = std::exp(e - m));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t d = 0; d < D; ++d) attn[h * D + d] += logit[j + 1] / z * v[j][g * D + d];
      }
      const Vec o = linear(wo, &bo, attn.data(), H, NH * D);
      for (int64_t i = 0; i < H; ++i) x[t][i] += o[i];
    }

    // MoE: router top-k (ties to the lower index), softmax over the k, clamped SwiGLU experts.
    std::vector<DenseExpert> experts;
    for (int e = 0; e < E; ++e) experts.push_back(dense_expert(ck, static_cast<int>(l), e));
    for (int64_t t = 0; t < T; ++t) {
      const Vec n = rmsnorm(x[t].data(), n2, H, c.rms_norm_eps);
      const Vec r = linear(wr, &br, n.data(), E, H);
      std::vector<int> order(E);
      for (int e = 0; e < E; ++e) order[e] = e;
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r[a] > r[b]; });
      double z = 0;
      for (int64_t i = 0; i < K; ++i) z += std::exp(r[order[i]] - r[order[0]]);
      for (int64_t i = 0; i < K; ++i) {
        const DenseExpert& ex = experts[order[i]];
        const double weight = std::exp(r[order[i]] - r[order[0]]) / z;
        const Vec h = linear(ex.w1, &ex.b1, n.data(), 2 * I, H);
        Vec a(I);
        for (int64_t j = 0; j < I; ++j) {
          const double gate = std::min(h[2 * j], c.swiglu_limit);
          const double up = std::clamp(h[2 * j + 1], -c.swiglu_limit, c.swiglu_limit);
          a[j] = gate / (1 + std::exp(-c.swiglu_alpha * gate)) * (up + 1);
        }
        const Vec y = linear(ex.w2, &ex.b2, a.data(), H, I);
        for (int64_t d = 0; d < H; ++d) x[t][d] += weight * y[d];
      }
    }
  }
  const Vec nf = bf16_vec(w.final_norm), head = bf16_vec(w.lm_head);
  std::vector<Vec> logits(T);
  for (int64_t t = 0; t < T; ++t) {
    const Vec n = rmsnorm(x[t].data(), nf, H, c.rms_norm_eps);
    logits[t] = linear(head, nullptr, n.data(), c.vocab_size, H);
  }
  return logits;
}

// ---------------------------------------------------------------------------------------------------------

double rel_error(const std::vector<float>& got, const Vec& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, std::abs(got[i] - want[i]));
    den = std::max(den, std::abs(want[i]));
  }
  return num / den;
}

int64_t argmax(const Vec& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>(rng() % vocab));
  return ids;
}

std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

std::vector<std::vector<float>> all_logits(engine::Session& s, const std::vector<int32_t>& ids) {
  std::vector<std::vector<float>> rows;
  s.prefill(ids, [&](int64_t pos, std::span<const float> row) {
    CHECK(pos == static_cast<int64_t>(rows.size()));
    rows.emplace_back(row.begin(), row.end());
  });
  return rows;
}

// The engine's prompt logits and greedy continuation against the reference, for every ISA and prefill
// batch: 7 tokens (below kMinMatmulTokens: matvec kernels, chunks shorter than the window) and 17 (oneDNN
// for the dense projections and for experts with 8 or more tokens; a chunk longer than the window).
void check_against_reference(ExpertFormat format, uint32_t seed) {
  test::TempDir dir("ossrun-engine");
  const ModelConfig c = test::write_tiny_checkpoint(dir.path(), format, seed);
  auto ck = Checkpoint::open(dir.path());
  const std::vector<int32_t> prompt = random_ids(17, c.vocab_size, seed + 1);
  const std::vector<Vec> want = reference_forward(*ck, prompt);

  // The reference's greedy continuation (recomputed from scratch each step).
  std::vector<int32_t> seq = prompt;
  std::vector<int32_t> want_greedy;
  for (int i = 0; i < 12; ++i) {
    want_greedy.push_back(static_cast<int32_t>(argmax(reference_forward(*ck, seq).back())));
    seq.push_back(want_greedy.back());
  }

  for (cpu::Isa isa : supported_isas())
    for (int64_t batch : {7, 17}) {
      INFO("isa " << std::string(cpu::isa_name(isa)) << ", experts " << std::string(expert_format_name(format))
                  << ", prefill batch " << batch);
      engine::Session s(*ck, {.ctx = 64, .threads = 2, .isa = isa, .prefill_batch = batch, .backend = engine::Backend::Cpu});
      const auto rows = all_logits(s, prompt);
      REQUIRE(rows.size() == prompt.size());
      double worst = 0;
      for (size_t t = 0; t < rows.size(); ++t) {
        INFO("position " << t);
        worst = std::max(worst, rel_error(rows[t], want[t]));
        CHECK(engine::argmax(rows[t]) == argmax(want[t]));
      }
      MESSAGE(std::string(cpu::isa_name(isa)) << ", " << std::string(expert_format_name(format)) << " experts, batch " << batch
                                  << ": max |logit - float64| / max |logit| = " << worst);
      CHECK(worst < 1e-4);

      std::vector<int32_t> greedy;
      std::span<const float> last(rows.back());
      for (int i = 0; i < 12; ++i) {
        greedy.push_back(engine::argmax(last));
        last = s.decode(greedy.back());
      }
      CHECK(greedy == want_greedy);
    }
}

}  // namespace

TEST_CASE("engine forward: MXFP4 experts match a float64 reference on every ISA") {
  check_against_reference(ExpertFormat::MXFP4, 100);
}

TEST_CASE("engine forward: BF16 experts match a float64 reference on every ISA") {
  check_against_reference(ExpertFormat::BF16, 200);
}

TEST_CASE("engine session: prefill batch sizes and token-by-token decode agree, reset replays, errors") {
  test::TempDir dir("ossrun-engine");
  const ModelConfig c = test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 7);
  auto ck = Checkpoint::open(dir.path());
  const std::vector<int32_t> prompt = random_ids(23, c.vocab_size, 8);
  auto copy = [](std::span<const float> s) { return std::vector<float>(s.begin(), s.end()); };

  engine::Session whole(*ck, {.ctx = 32, .threads = 2, .prefill_batch = 32, .backend = engine::Backend::Cpu});
  const std::vector<float> by_batch = copy(whole.prefill(prompt));
  CHECK(whole.position() == 23);

  engine::Session single(*ck, {.ctx = 32, .threads = 1, .prefill_batch = 1, .backend = engine::Backend::Cpu});
  const std::vector<float> by_single = copy(single.prefill(prompt));

  engine::Session stepped(*ck, {.ctx = 32, .threads = 2, .prefill_batch = 4, .backend = engine::Backend::Cpu});
  stepped.prefill(std::span(prompt).first(1));
  std::vector<float> by_decode;
  for (size_t i = 1; i < prompt.size(); ++i) by_decode = copy(stepped.decode(prompt[i]));

  Vec ref(by_batch.begin(), by_batch.end());
  CHECK(rel_error(by_single, ref) < 1e-5);
  CHECK(rel_error(by_decode, ref) < 1e-5);

  whole.reset();
  CHECK(whole.position() == 0);
  CHECK(copy(whole.prefill(prompt)) == by_batch);

  // The context holds 32 positions: 9 more fit, the 10th is an error that names the sizes.
  for (int i = 0; i < 9; ++i) whole.decode(1);
  CHECK(whole.position() == 32);
  CHECK_THROWS_WITH_AS(whole.decode(1), doctest::Contains("context full"), InputError);
  CHECK_THROWS_AS(single.prefill(std::vector<int32_t>(10, 1)), InputError);
  CHECK(single.position() == 23);  // a refused request changes nothing

  CHECK_THROWS_WITH_AS(stepped.decode(static_cast<int32_t>(c.vocab_size)), doctest::Contains("outside the vocabulary"), InputError);
  CHECK_THROWS_AS(stepped.prefill(std::vector<int32_t>{3, -1}), InputError);
  CHECK_THROWS_AS(stepped.prefill(std::vector<int32_t>{}), InputError);
  CHECK_THROWS_AS(engine::Session(*ck, {.ctx = c.max_position_embeddings + 1, .backend = engine::Backend::Cpu}), InputError);
  CHECK_THROWS_AS(engine::Session(*ck, {.ctx = 0, .backend = engine::Backend::Cpu}), InputError);
}

TEST_CASE("engine session: decode allocates nothing and starts no thread") {
  test::TempDir dir("ossrun-engine");
  const ModelConfig c = test::write_tiny_checkpoint(dir.path(), ExpertFormat::MXFP4, 9);
  auto ck = Checkpoint::open(dir.path());
  engine::Session s(*ck, {.ctx = 64, .threads = 2, .prefill_batch = 8, .backend = engine::Backend::Cpu});
  std::span<const float> logits = s.prefill(random_ids(10, c.vocab_size, 3));
  logits = s.decode(engine::argmax(logits));  // first decode: anything lazy happens here
  const int threads = process_threads();
  const uint64_t before = g_allocations.load();
  for (int i = 0; i < 20; ++i) logits = s.decode(engine::argmax(logits));
  CHECK(g_allocations.load() - before == 0);
  CHECK(process_threads() == threads);
}
