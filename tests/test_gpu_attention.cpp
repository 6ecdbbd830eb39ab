// kv_store_bf16, attention_decode and attention_prefill (gpu_kernels/) against a float64 reference computed
// on the host from the same bf16 cache values, and against the f32 K/V before rounding (the error bf16
// storage costs). Head shapes 64/8/64 (gpt-oss), 4/1/32, 8/8/16, 6/2/128; full layers and windows 4 and 128
// on rings of window - 1 + max_batch rows; decode at positions up to 5000 and at every step 0..300 replayed
// from one CUDA graph; prefill batches of 1, 7, 64 and 300 at pos0 0 and after earlier stores. Caches start
// as bf16 NaN and outputs are NaN-poisoned before every launch, so an unread row or unwritten output fails.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_kernels/attention_decode.cuh"
#include "gpu_kernels/attention_prefill.cuh"
#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/kv_cache.cuh"
#include "src/engine/attention.h"
#include "src/engine/kv_cache.h"
#include "src/model/bf16.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::AttnShape;
using gpu::DeviceBuffer;

namespace {

struct HeadShape {
  int n_heads, n_kv_heads, head_dim;
};
constexpr HeadShape kHeadShapes[] = {{64, 8, 64}, {4, 1, 32}, {8, 8, 16}, {6, 2, 128}};

std::string name(const HeadShape& h, int window) {
  return std::to_string(h.n_heads) + "/" + std::to_string(h.n_kv_heads) + "/" + std::to_string(h.head_dim) +
         " window " + std::to_string(window);
}

// Deterministic values in [-amp, amp) per (stream, position, index): the same position always gets the
// same q, k and v, so a ring row overwritten later still matches what the reference expects.
float value(uint32_t stream, int pos, int idx, float amp) {
  uint64_t z = (static_cast<uint64_t>(stream) << 56) ^ (static_cast<uint64_t>(pos) << 24) ^ static_cast<uint64_t>(idx);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return amp * (static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f);
}
// Amplitudes giving logits of a few units at head_dim 64 (a peaked, not flat, softmax).
constexpr float kQAmp = 3.0f, kKAmp = 2.0f, kVAmp = 1.0f;
enum Stream : uint32_t { kQ = 1, kK = 2, kV = 3 };

std::vector<float> rows(Stream st, int pos0, int n, int width, float amp) {
  std::vector<float> r(static_cast<size_t>(n) * width);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < width; ++c) r[static_cast<size_t>(t) * width + c] = value(st, pos0 + t, c, amp);
  return r;
}

std::vector<float> sinks_for(int n_heads) {
  std::vector<float> s(n_heads);
  for (int h = 0; h < n_heads; ++h) s[h] = value(4, 0, h, 2.0f);
  s[0] = 6.0f;  // one sink that outweighs most keys
  return s;
}

int capacity_for(int window, int ctx, int max_batch) { return window > 0 ? std::min(ctx, window - 1 + max_batch) : ctx; }

// One layer's cache on the device (poisoned with bf16 NaN) and the host's model of it.
struct Cache {
  AttnShape s;
  int kv_dim;
  std::vector<int> held;  // position stored in each row, -1 for none
  DeviceBuffer<uint16_t> k, v;

  explicit Cache(const AttnShape& shape)
      : s(shape), kv_dim(shape.n_kv_heads * shape.head_dim), held(shape.capacity, -1),
        k(std::vector<uint16_t>(static_cast<size_t>(shape.capacity) * kv_dim, 0xffff)),
        v(std::vector<uint16_t>(static_cast<size_t>(shape.capacity) * kv_dim, 0xffff)) {}

  // Stores positions [p0, p1) in batches of at most `batch`.
  void store(int p0, int p1, int batch) {
    for (int b = p0; b < p1; b += batch) {
      const int n = std::min(batch, p1 - b);
      std::vector<int32_t> pos(n);
      for (int t = 0; t < n; ++t) held[(b + t) % s.capacity] = pos[t] = b + t;
      DeviceBuffer<float> kd(rows(kK, b, n, kv_dim, kKAmp)), vd(rows(kV, b, n, kv_dim, kVAmp));
      DeviceBuffer<int32_t> pd(pos);
      gpu::kv_store_bf16(kd.get(), vd.get(), pd.get(), n, s, k.get(), v.get(), nullptr);
    }
  }
};

// out for queries at positions [pos0, pos0 + n), in f64, with each key and value row either the bf16 value
// the cache holds (`rounded`) or the f32 value before rounding.
std::vector<double> reference(const Cache& cache, const std::vector<float>& sinks, int pos0, int n, bool rounded) {
  const AttnShape& s = cache.s;
  const int d = s.head_dim, G = s.n_heads / s.n_kv_heads, qd = s.n_heads * d, kvd = cache.kv_dim;
  const int j0 = s.window > 0 ? std::max(0, pos0 - s.window + 1) : 0, len = pos0 + n - j0;
  // K and V of positions j0 .. pos0+n-1 as the reference reads them.
  std::vector<double> k(static_cast<size_t>(len) * kvd), v(k.size());
  const std::vector<float> kf = rows(kK, j0, len, kvd, kKAmp), vf = rows(kV, j0, len, kvd, kVAmp);
  for (size_t e = 0; e < k.size(); ++e) {
    k[e] = rounded ? bf16_to_float(float_to_bf16(kf[e])) : kf[e];
    v[e] = rounded ? bf16_to_float(float_to_bf16(vf[e])) : vf[e];
  }
  const std::vector<float> q = rows(kQ, pos0, n, qd, kQAmp);
  std::vector<double> out(static_cast<size_t>(n) * qd, 0.0), logit;
  for (int t = 0; t < n; ++t) {
    const int i = pos0 + t, first = s.window > 0 ? std::max(0, i - s.window + 1) : 0;
    for (int j = first; j <= i; ++j) REQUIRE(cache.held[j % s.capacity] == j);  // the test's own setup
    for (int h = 0; h < s.n_heads; ++h) {
      const float* qh = &q[static_cast<size_t>(t) * qd + h * d];
      const int g = h / G;
      logit.assign(i + 1 - first, 0.0);
      double m = sinks[h];
      for (int j = first; j <= i; ++j) {
        const double* kj = &k[static_cast<size_t>(j - j0) * kvd + g * d];
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += qh[c] * kj[c];
        m = std::max(m, logit[j - first] = dot * s.scale);
      }
      double den = std::exp(sinks[h] - m);
      for (double l : logit) den += std::exp(l - m);
      double* o = &out[static_cast<size_t>(t) * qd + h * d];
      for (int j = first; j <= i; ++j) {
        const double w = std::exp(logit[j - first] - m) / den;
        const double* vj = &v[static_cast<size_t>(j - j0) * kvd + g * d];
        for (int c = 0; c < d; ++c) o[c] += w * vj[c];
      }
    }
  }
  return out;
}

double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) e = std::fmax(e, std::fabs(got[i] - want[i]));
  return e / test::max_abs(want);
}

// Worst errors over a test, printed at its end (the figures the report quotes).
struct ErrorLog {
  double vs_bf16 = 0, vs_f32 = 0;
  void add(const std::vector<float>& got, const Cache& c, const std::vector<float>& sinks, int pos0, int n,
           double rtol) {
    const std::vector<double> want = reference(c, sinks, pos0, n, /*rounded=*/true);
    test::check_close("out", got, want, test::max_abs(want), rtol);
    vs_bf16 = std::fmax(vs_bf16, max_rel_error(got, want));
    vs_f32 = std::fmax(vs_f32, max_rel_error(got, reference(c, sinks, pos0, n, /*rounded=*/false)));
  }
  void print(const char* what) const {
    MESSAGE(std::string(what) << ": max |error| / max |out|: " << vs_bf16 << " vs f64 on the bf16 cache, " << vs_f32
                 << " vs f64 on the f32 K/V before rounding");
  }
};

constexpr double kRtol = 1e-4;  // vs f64 on the same bf16 values: f32 accumulation and exp2f only

std::vector<float> decode_once(const float* q, const Cache& c, const float* sinks, int pos,
                               gpu::AttentionDecodeWorkspace& ws) {
  DeviceBuffer<int32_t> pd(std::vector<int32_t>{pos});
  DeviceBuffer<float> out(std::vector<float>(static_cast<size_t>(c.s.n_heads) * c.s.head_dim, NAN));
  gpu::attention_decode(q, c.k.get(), c.v.get(), sinks, pd.get(), c.s, out.get(), ws, nullptr);
  return out.download();
}

}  // namespace

TEST_CASE("gpu kv_store_bf16: rounds to nearest even into rows position % capacity") {
  if (!test::gpu_or_skip()) return;
  const AttnShape s{4, 2, 16, 0.25f, 4, 6};  // a ring of 6 rows, kv_dim 32
  const int kv_dim = 32;
  Cache c(s);
  // Special values first: ties to even both ways, overflow to inf, NaN, denormal, negative zero.
  std::vector<float> k = rows(kK, 0, 4, kv_dim, 1.0f), v = rows(kV, 0, 4, kv_dim, 1.0f);
  const uint32_t specials[] = {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x7fc00001u, 0x00000001u, 0x80000000u,
                               0xff800000u, 0x3f80ffffu};
  for (size_t i = 0; i < std::size(specials); ++i) std::memcpy(&k[i], &specials[i], 4);
  // Positions 7, 8, 9, 10 wrap the ring: rows 1, 2, 3, 4; then 11 .. 14 into rows 5, 0, 1, 2.
  for (int base : {7, 11}) {
    std::vector<int32_t> pos{base, base + 1, base + 2, base + 3};
    if (base == 11) k = rows(kK, 11, 4, kv_dim, 1.0f), v = rows(kV, 11, 4, kv_dim, 1.0f);
    DeviceBuffer<float> kd(k), vd(v);
    DeviceBuffer<int32_t> pd(pos);
    gpu::kv_store_bf16(kd.get(), vd.get(), pd.get(), 4, s, c.k.get(), c.v.get(), nullptr);
    for (int t = 0; t < 4; ++t) c.held[(base + t) % 6] = base + t;
    const std::vector<uint16_t> kh = c.k.download(), vh = c.v.download();
    for (int t = 0; t < 4; ++t)
      for (int e = 0; e < kv_dim; ++e) {
        const size_t dst = static_cast<size_t>((base + t) % 6) * kv_dim + e, src = static_cast<size_t>(t) * kv_dim + e;
        INFO("position " << base + t << " element " << e);
        CHECK(kh[dst] == float_to_bf16(k[src]));
        CHECK(vh[dst] == float_to_bf16(v[src]));
      }
  }
  // Rows 3 and 4 still hold positions 9 and 10; nothing else was written in the ring.
  CHECK(c.held == std::vector<int>{12, 13, 14, 9, 10, 11});
  CHECK(float_to_bf16(std::bit_cast<float>(specials[0])) == 0x3f80);  // the host rule the kernel matches
  CHECK(float_to_bf16(std::bit_cast<float>(specials[1])) == 0x3f82);
}

TEST_CASE("gpu attention_decode_bf16: matches the float64 reference") {
  if (!test::gpu_or_skip()) return;
  const int positions[] = {0, 1, 127, 128, 129, 1000, 5000};
  ErrorLog log;
  for (const HeadShape& hs : kHeadShapes)
    for (int window : {0, 4, 128}) {
      SUBCASE(name(hs, window).c_str()) {
        const int ctx = 5008, max_batch = 8;
        const AttnShape s{hs.n_heads, hs.n_kv_heads, hs.head_dim, 1.0f / std::sqrt(float(hs.head_dim)), window,
                          capacity_for(window, ctx, max_batch)};
        Cache c(s);
        // Sized for the context (many splits) and for 64 keys (one split, chunks grow with the position).
        gpu::AttentionDecodeWorkspace ws_full(s, ctx), ws_one(s, gpu::kDecodeMinKeysPerSplit);
        CHECK(ws_one.splits() == 1);
        const std::vector<float> sinks = sinks_for(s.n_heads);
        DeviceBuffer<float> sinks_d(sinks);
        int stored = 0;
        for (int p : positions) {
          CAPTURE(p);
          stored = std::max(stored, p + 1 - s.capacity);  // older rows of a ring are gone anyway
          c.store(stored, p + 1, max_batch);
          stored = p + 1;
          DeviceBuffer<float> q(rows(kQ, p, 1, s.n_heads * s.head_dim, kQAmp));
          for (gpu::AttentionDecodeWorkspace* ws : {&ws_full, &ws_one})
            log.add(decode_once(q.get(), c, sinks_d.get(), p, *ws), c, sinks, p, 1, kRtol);
        }
      }
    }
  log.print("attention_decode");
}

TEST_CASE("gpu attention_decode_bf16: every step 0..300 replayed from one CUDA graph") {
  if (!test::gpu_or_skip()) return;
  for (int window : {0, 4}) {
    CAPTURE(window);
    const AttnShape s{8, 2, 32, 1.0f / std::sqrt(32.0f), window, capacity_for(window, 301, 1)};
    Cache c(s);
    gpu::AttentionDecodeWorkspace ws(s, 301);
    const int qd = s.n_heads * s.head_dim;
    const std::vector<float> sinks = sinks_for(s.n_heads);
    DeviceBuffer<float> sinks_d(sinks), q(qd), k(c.kv_dim), v(c.kv_dim), out(qd);
    DeviceBuffer<int32_t> pos(1);
    cudaStream_t stream;
    OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    // The engine's decode step: store the step's key and value, then attend; both read the position on the device.
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    OSSRUN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    gpu::kv_store_bf16(k.get(), v.get(), pos.get(), 1, s, c.k.get(), c.v.get(), stream);
    gpu::attention_decode(q.get(), c.k.get(), c.v.get(), sinks_d.get(), pos.get(), s, out.get(), ws, stream);
    OSSRUN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    OSSRUN_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int p = 0; p <= 300; ++p) {
      CAPTURE(p);
      q.upload(rows(kQ, p, 1, qd, kQAmp));
      k.upload(rows(kK, p, 1, c.kv_dim, kKAmp));
      v.upload(rows(kV, p, 1, c.kv_dim, kVAmp));
      pos.upload({p});
      c.held[p % s.capacity] = p;
      OSSRUN_CUDA_CHECK(cudaMemset(out.get(), 0xff, out.bytes()));
      OSSRUN_CUDA_CHECK(cudaGraphLaunch(exec, stream));
      OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
      const std::vector<double> want = reference(c, sinks, p, 1, true);
      test::check_close("out", out.download(), want, test::max_abs(want), kRtol);
    }
    OSSRUN_CUDA_CHECK(cudaGraphExecDestroy(exec));
    OSSRUN_CUDA_CHECK(cudaGraphDestroy(graph));
    OSSRUN_CUDA_CHECK(cudaStreamDestroy(stream));
  }
}

TEST_CASE("gpu attention_decode_bf16: a position the cache cannot serve gives NaN") {
  if (!test::gpu_or_skip()) return;
  const AttnShape s{8, 2, 32, 0.2f, 0, 100};
  Cache c(s);
  c.store(0, 100, 100);
  gpu::AttentionDecodeWorkspace ws(s, 100);
  DeviceBuffer<float> q(rows(kQ, 0, 1, 256, kQAmp)), sinks(sinks_for(8));
  for (int p : {-1, 100, 1 << 30}) {
    CAPTURE(p);
    DeviceBuffer<int32_t> pd(std::vector<int32_t>{p});
    DeviceBuffer<float> out(std::vector<float>(256, 0.0f));
    gpu::attention_decode(q.get(), c.k.get(), c.v.get(), sinks.get(), pd.get(), s, out.get(), ws, nullptr);
    for (float x : out.download()) CHECK(std::isnan(x));
  }
}

TEST_CASE("gpu attention_prefill_bf16 (simt and mma): matches the float64 reference") {
  if (!test::gpu_or_skip()) return;
  struct Batch {
    int n, pos0;
  };
  const Batch batches[] = {{1, 0}, {7, 0}, {64, 0}, {300, 0}, {1, 1000}, {7, 129}, {64, 127}, {300, 333}};
  ErrorLog simt, mma;
  for (const HeadShape& hs : kHeadShapes)
    for (int window : {0, 4, 128}) {
      SUBCASE(name(hs, window).c_str()) {
        const int ctx = 1400, max_batch = 300;
        const AttnShape s{hs.n_heads, hs.n_kv_heads, hs.head_dim, 1.0f / std::sqrt(float(hs.head_dim)), window,
                          capacity_for(window, ctx, max_batch)};
        const std::vector<float> sinks = sinks_for(s.n_heads);
        DeviceBuffer<float> sinks_d(sinks);
        for (const Batch& b : batches) {
          CAPTURE(b.n);
          CAPTURE(b.pos0);
          Cache c(s);
          c.store(std::max(0, b.pos0 - s.capacity), b.pos0, max_batch);  // earlier prompt chunks
          c.store(b.pos0, b.pos0 + b.n, b.n);                               // the batch's own keys first
          const int qd = s.n_heads * s.head_dim;
          DeviceBuffer<float> q(rows(kQ, b.pos0, b.n, qd, kQAmp));
          for (auto [kernel, log] : {std::pair{gpu::AttentionPrefillKernel::Simt, &simt},
                                     std::pair{gpu::AttentionPrefillKernel::Mma, &mma}}) {
            CAPTURE(static_cast<int>(kernel));
            DeviceBuffer<float> out(std::vector<float>(static_cast<size_t>(b.n) * qd, NAN));
            gpu::attention_prefill(q.get(), c.k.get(), c.v.get(), sinks_d.get(), b.n, b.pos0, s, out.get(), nullptr,
                                   kernel);
            log->add(out.download(), c, sinks, b.pos0, b.n, kRtol);
          }
        }
      }
    }
  simt.print("attention_prefill simt");
  mma.print("attention_prefill mma");
}

TEST_CASE("gpu attention_prefill_bf16 and attention_decode_bf16: agree with the CPU engine's f32 attention") {
  if (!test::gpu_or_skip()) return;
  // gpt-oss-20b heads; a prompt of 200 tokens in the cache, a batch of 64, then one decode step.
  for (int window : {0, 128}) {
    CAPTURE(window);
    const AttnShape s{64, 8, 64, 0.125f, window, capacity_for(window, 265, 64)};
    const int qd = 64 * 64, kvd = 8 * 64, pos0 = 200, n = 64;
    const std::vector<float> sinks = sinks_for(64);
    Cache c(s);
    c.store(0, pos0 + n, 64);
    // The CPU engine on f32 K/V: the whole sequence 0 .. pos0+n as one batch from position 0 (its keys come
    // from new_k/new_v, so its cache is never read); keep the rows of positions pos0 .. pos0+n.
    const int len = pos0 + n + 1;
    engine::LayerKvCache unused(1, kvd);
    const std::vector<float> k = rows(kK, 0, len, kvd, kKAmp), v = rows(kV, 0, len, kvd, kVAmp);
    const std::vector<float> q_all = rows(kQ, 0, len, qd, kQAmp);
    std::vector<float> cpu_out(static_cast<size_t>(len) * qd);
    const engine::AttentionShape es{64, 8, 64, 0.125f, window};
    const engine::AttentionBatch b{q_all.data(), k.data(), v.data(), len, 0, &unused, sinks.data(), cpu_out.data()};
    engine::attention_tasks(es, b, 0, engine::attention_task_count(es, b));
    const std::vector<double> want(cpu_out.begin() + static_cast<size_t>(pos0) * qd, cpu_out.end());
    const std::vector<float> q(q_all.begin() + static_cast<size_t>(pos0) * qd, q_all.end());

    DeviceBuffer<float> sinks_d(sinks), q_d(std::vector<float>(q.begin(), q.begin() + static_cast<size_t>(n) * qd));
    DeviceBuffer<float> out(std::vector<float>(static_cast<size_t>(n) * qd, NAN));
    gpu::attention_prefill(q_d.get(), c.k.get(), c.v.get(), sinks_d.get(), n, pos0, s, out.get(), nullptr);
    std::vector<float> got = out.download();
    c.store(pos0 + n, pos0 + n + 1, 1);
    gpu::AttentionDecodeWorkspace ws(s, 265);
    DeviceBuffer<float> q_last(std::vector<float>(q.end() - qd, q.end()));
    const std::vector<float> last = decode_once(q_last.get(), c, sinks_d.get(), pos0 + n, ws);
    got.insert(got.end(), last.begin(), last.end());
    // bf16 K/V against f32 K/V: about 2^-9 relative per element; measured, then bounded loosely.
    MESSAGE("window " << window << ": GPU (bf16 cache) vs CPU engine (f32 cache) max |error| / max |out|: "
                      << max_rel_error(got, want));
    test::check_close("out", got, want, test::max_abs(want), 2e-2);
  }
}

TEST_CASE("gpu attention: shapes, sizes and positions the kernels cannot take are rejected before any launch") {
  // Checked before any device access: these run without a GPU too.
  const auto* f = reinterpret_cast<const float*>(uintptr_t{0x1000});
  auto* o = reinterpret_cast<float*>(uintptr_t{0x2000});
  auto* kc = reinterpret_cast<uint16_t*>(uintptr_t{0x3000});
  const auto* p = reinterpret_cast<const int32_t*>(uintptr_t{0x4000});
  const AttnShape ok{64, 8, 64, 0.125f, 128, 191};
  auto bad = [&](AttnShape s) {
    CHECK_THROWS_AS(gpu::kv_store_bf16(f, f, p, 1, s, kc, kc, nullptr), InputError);
    CHECK_THROWS_AS(gpu::attention_prefill(f, kc, kc, f, 1, 0, s, o, nullptr), InputError);
  };
  bad({64, 7, 64, 0.125f, 0, 10});     // heads not a multiple of KV heads
  bad({64, 2, 64, 0.125f, 0, 10});     // 32 query heads per KV head
  bad({64, 8, 48, 0.125f, 0, 10});     // head_dim
  bad({64, 8, 64, NAN, 0, 10});        // scale
  bad({64, 8, 64, 0.125f, -1, 10});    // window
  bad({64, 8, 64, 0.125f, 0, 0});      // capacity
  bad({64, 8, 64, 0.125f, 128, 100});  // a ring smaller than the window
  CHECK_THROWS_AS(gpu::kv_store_bf16(f, f, p, 192, ok, kc, kc, nullptr), InputError);     // more rows than the ring
  CHECK_THROWS_AS(gpu::kv_store_bf16(f + 1, f, p, 1, ok, kc, kc, nullptr), InputError);   // misaligned
  CHECK_THROWS_AS(gpu::attention_prefill(f, kc, kc, f, 65, 1000, ok, o, nullptr), InputError);  // 192 rows needed
  CHECK_NOTHROW(gpu::attention_prefill(f, kc, kc, f, 0, 1000, ok, o, nullptr));                // nothing to do
  CHECK_THROWS_AS(gpu::attention_prefill(f, kc, kc, f, 4, 0, {8, 2, 32, 0.2f, 0, 100}, o + 1, nullptr), InputError);
  CHECK_THROWS_AS(gpu::attention_prefill(f, kc, kc, f, 4, 97, {8, 2, 32, 0.2f, 0, 100}, o, nullptr), InputError);
  CHECK_THROWS_AS(gpu::attention_prefill(f, kc, kc, f, -1, 0, ok, o, nullptr), InputError);
  if (!test::gpu_or_skip()) return;
  gpu::AttentionDecodeWorkspace ws(ok, 1000);
  CHECK_THROWS_AS(gpu::attention_decode(f, kc, kc, f, p, {128, 8, 64, 0.125f, 0, 10}, o, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::attention_decode(f, kc, kc, f, p, {64, 8, 32, 0.125f, 0, 10}, o, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::attention_decode(f, kc + 1, kc, f, p, ok, o, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::attention_decode(f, kc, kc, nullptr, p, ok, o, ws, nullptr), InputError);
  CHECK_THROWS_AS(gpu::AttentionDecodeWorkspace(ok, 0), InputError);
}
