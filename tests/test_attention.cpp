// Attention with sinks, GQA and the sliding window (src/engine/attention.h) against a float64 reference
// over the whole sequence, driven the way the session drives it: batches of varying length against a
// KV cache that is a ring on sliding layers.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "src/engine/attention.h"
#include "src/engine/kv_cache.h"

using namespace ossrun::engine;

namespace {

struct Sequence {
  int64_t T, n_heads, n_kv, d;
  std::vector<float> q, k, v, sinks;  // (T, n_heads*d), (T, n_kv*d), (T, n_kv*d), (n_heads)
};

Sequence random_sequence(int64_t T, int64_t n_heads, int64_t n_kv, int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Sequence s{T, n_heads, n_kv, d, {}, {}, {}, {}};
  s.q.resize(T * n_heads * d);
  s.k.resize(T * n_kv * d);
  s.v.resize(T * n_kv * d);
  s.sinks.resize(n_heads);
  for (float& x : s.q) x = 1.5f * nd(rng);
  for (float& x : s.k) x = 1.5f * nd(rng);
  for (float& x : s.v) x = nd(rng);
  for (float& x : s.sinks) x = 2.0f * nd(rng);
  return s;
}

// Straight from gpt-oss.md §5.2: the sink as an extra logit column, softmax, drop the column.
std::vector<double> reference(const Sequence& s, int64_t window, double scale) {
  const int64_t qd = s.n_heads * s.d, kvd = s.n_kv * s.d, group = s.n_heads / s.n_kv;
  std::vector<double> out(s.T * qd, 0.0);
  for (int64_t i = 0; i < s.T; ++i)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      std::vector<double> logit;
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= i; ++j) {
        if (window > 0 && j <= i - window) continue;
        double dot = 0;
        for (int64_t c = 0; c < s.d; ++c) dot += double(s.q[i * qd + h * s.d + c]) * s.k[j * kvd + (h / group) * s.d + c];
        logit.push_back(dot * scale);
        keys.push_back(j);
      }
      double m = s.sinks[h];
      for (double l : logit) m = std::max(m, l);
      double denom = std::exp(s.sinks[h] - m);
      for (double l : logit) denom += std::exp(l - m);
      for (size_t a = 0; a < keys.size(); ++a)
        for (int64_t c = 0; c < s.d; ++c)
          out[i * qd + h * s.d + c] += std::exp(logit[a] - m) / denom * s.v[keys[a] * kvd + (h / group) * s.d + c];
    }
  return out;
}

// Runs the engine over the sequence in the given batch lengths (cycled), each (query, KV head) split into
// `segments` key segments, and returns every output row.
std::vector<float> run_engine(const Sequence& s, int64_t window, float scale, const std::vector<int64_t>& batches,
                              int64_t segments = 1) {
  const int64_t qd = s.n_heads * s.d, kvd = s.n_kv * s.d;
  const AttentionShape shape{.n_heads = s.n_heads, .n_kv_heads = s.n_kv, .head_dim = s.d, .scale = scale, .window = window};
  LayerKvCache cache(window > 0 ? window : s.T, kvd);
  std::vector<float> out(s.T * qd, NAN);
  int64_t pos = 0;
  for (size_t bi = 0; pos < s.T; ++bi) {
    const int64_t n = std::min(batches[bi % batches.size()], s.T - pos);
    std::vector<float> partials(attention_partial_floats(shape, n, segments), NAN);
    const AttentionBatch b{.q = s.q.data() + pos * qd, .new_k = s.k.data() + pos * kvd, .new_v = s.v.data() + pos * kvd,
                           .n = n, .pos0 = pos, .cache = &cache, .sinks = s.sinks.data(), .out = out.data() + pos * qd,
                           .segments = segments, .partials = partials.data()};
    // Split the tasks unevenly, as worker chunks would.
    const int64_t tasks = attention_task_count(shape, b), mid = tasks / 3;
    attention_tasks(shape, b, 0, mid);
    attention_tasks(shape, b, mid, tasks);
    attention_merge(shape, b);
    cache.store(b.new_k, b.new_v, n, pos);
    pos += n;
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST_CASE("attention_rows: sinks, GQA and sliding window match float64 across decode and prefill batches") {
  // More than one block of keys (32) per query, and head groups of 4.
  const Sequence s = random_sequence(/*T=*/80, /*n_heads=*/8, /*n_kv=*/2, /*d=*/16, 11);
  const double scale = 0.25;
  const std::vector<std::vector<int64_t>> schedules = {{1}, {80}, {3, 1, 1, 37, 2}, {7, 1}, {6}};
  for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{6}, int64_t{40}}) {
    const std::vector<double> want = reference(s, window, scale);
    for (const auto& sched : schedules)
      for (int64_t segments : {1, 2, 3, 8}) {  // 8 segments leave some empty on short prefixes
        INFO("window " << window << ", first batch " << sched[0] << ", segments " << segments);
        CHECK(max_abs_diff(run_engine(s, window, float(scale), sched, segments), want) < 2e-6);
      }
  }
}

TEST_CASE("attention_rows: the check bites (window off by one, sink dropped)") {
  const Sequence s = random_sequence(30, 4, 4, 8, 3);
  const std::vector<float> got = run_engine(s, 6, 0.3f, {4, 1});
  CHECK(max_abs_diff(got, reference(s, 6, 0.3)) < 2e-6);
  CHECK(max_abs_diff(got, reference(s, 5, 0.3)) > 1e-2);
  CHECK(max_abs_diff(got, reference(s, 7, 0.3)) > 1e-2);
  Sequence no_sink = s;
  for (float& x : no_sink.sinks) x = -1e30f;
  CHECK(max_abs_diff(run_engine(no_sink, 6, 0.3f, {4, 1}), reference(s, 6, 0.3)) > 1e-2);
}

TEST_CASE("LayerKvCache: a ring keeps the last capacity positions of a long store") {
  LayerKvCache c(4, 2);
  std::vector<float> k(10 * 2), v(10 * 2);
  for (int i = 0; i < 20; ++i) k[i] = float(i), v[i] = float(100 + i);
  c.store(k.data(), v.data(), 3, 0);
  c.store(k.data() + 6, v.data() + 6, 7, 3);  // positions 3..9; only 6..9 stay
  for (int64_t p = 6; p < 10; ++p) {
    CHECK(c.k(p)[0] == float(2 * p));
    CHECK(c.v(p)[1] == float(100 + 2 * p + 1));
  }
  CHECK(c.nbytes() == 2 * 4 * 2 * sizeof(float));
}
