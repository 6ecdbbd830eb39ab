// DeviceSampler (gpu_kernels/sampling) against the rules of src/engine/sampler.cpp: greedy equals
// engine::argmax (ties included); sampled frequencies over 20,000 draws stay within 5 sigma (per token and by
// chi-square) of the exact filtered distribution computed here by sampler.cpp's rules, and tokens those rules
// drop never appear; a 201,088-token vocabulary for greedy and for the validity of top-k/top-p/min-p draws;
// determinism in (seed, counter) and replay from a CUDA graph.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gpu_kernels/device_buffer.cuh"
#include "gpu_kernels/sampling.cuh"
#include "src/engine/sampler.h"
#include "src/model/error.h"
#include "tests/support/gpu_test.h"

using namespace ossrun;
using gpu::DeviceBuffer;
using gpu::DeviceSamplerParams;

namespace {

// The probability of each token after sampler.cpp's filters: temperature, top-k, top-p, min-p, renormalized.
std::vector<double> filtered_distribution(const std::vector<float>& logits, const DeviceSamplerParams& p) {
  const size_t V = logits.size();
  const int32_t top = engine::argmax(logits);
  std::vector<float> prob(V);
  for (size_t i = 0; i < V; ++i) prob[i] = std::exp((logits[i] - logits[top]) / p.temperature);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return prob[a] > prob[b]; });
  size_t n = V;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) n = static_cast<size_t>(p.top_k);
  if (p.top_p < 1) {
    double total = 0, mass = 0;
    for (size_t i = 0; i < n; ++i) total += prob[order[i]];
    const double target = p.top_p * total;
    size_t kept = 0;
    while (kept < n && mass < target) mass += prob[order[kept++]];
    n = std::max<size_t>(kept, 1);
  }
  std::vector<double> dist(V, 0.0);
  double total = 0;
  for (size_t i = 0; i < n; ++i)
    if (prob[order[i]] >= p.min_p * prob[top]) total += dist[order[i]] = prob[order[i]];
  for (double& d : dist) d /= total;
  return dist;
}

// `draws` tokens from one sampler, the counter advancing through the kernel; checks the counter moved by draws.
std::vector<int32_t> draw(gpu::DeviceSampler& sampler, const DeviceBuffer<float>& logits, const DeviceSamplerParams& p,
                          int draws, uint64_t first_counter) {
  DeviceBuffer<uint64_t> counter(std::vector<uint64_t>{first_counter});
  DeviceBuffer<int32_t> tokens(static_cast<size_t>(draws));
  OSSRUN_CUDA_CHECK(cudaMemset(tokens.get(), 0x80, tokens.bytes()));  // a large negative poison
  for (int i = 0; i < draws; ++i) sampler.sample(logits.get(), p, counter.get(), tokens.get() + i, nullptr);
  CHECK(counter.download()[0] == first_counter + static_cast<uint64_t>(draws));
  return tokens.download();
}

// Every token has positive probability; per token |count - N p| <= 5 sigma (+1), and the chi-square over the
// tokens with N p >= 5 (the rest pooled) is within its mean + 5 standard deviations.
void check_frequencies(const std::vector<int32_t>& tokens, const std::vector<double>& dist) {
  std::vector<double> count(dist.size(), 0.0);
  size_t invalid = 0;
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<size_t>(t) >= dist.size() || dist[t] == 0) {
      if (invalid++ < 5) std::fprintf(stderr, "drew token %d, which the CPU's filters drop\n", t);
      continue;
    }
    count[t] += 1;
  }
  CHECK(invalid == 0);
  const double N = static_cast<double>(tokens.size());
  double chi2 = 0, pooled_count = 0, pooled_expected = 0;
  int dof = 0, outliers = 0;
  for (size_t i = 0; i < dist.size(); ++i) {
    const double e = N * dist[i];
    if (std::fabs(count[i] - e) > 5 * std::sqrt(e * (1 - dist[i])) + 1) {
      if (outliers++ < 5) std::fprintf(stderr, "token %zu: drawn %.0f times, expected %.1f\n", i, count[i], e);
    }
    if (e >= 5) {
      chi2 += (count[i] - e) * (count[i] - e) / e;
      ++dof;
    } else {
      pooled_count += count[i];
      pooled_expected += e;
    }
  }
  if (pooled_expected >= 5) {
    chi2 += (pooled_count - pooled_expected) * (pooled_count - pooled_expected) / pooled_expected;
    ++dof;
  }
  dof = std::max(dof - 1, 1);
  INFO("chi-square " << chi2 << " with " << dof << " degrees of freedom");
  CHECK(outliers == 0);
  CHECK(chi2 <= dof + 5 * std::sqrt(2.0 * dof));
}

const DeviceSamplerParams kParamSets[] = {
    {1.0f, 1.0f, 0, 0.0f, 1},      {0.7f, 1.0f, 5, 0.0f, 2},   {1.0f, 0.8f, 0, 0.0f, 3},
    {1.3f, 1.0f, 0, 0.1f, 4},      {0.9f, 0.9f, 20, 0.02f, 5}, {2.0f, 0.5f, 3, 0.0f, 6},
    {1.0f, 0.999f, 0, 0.3f, 7},
};

// Five live tokens at 10, 0.48 V, 0.96 V, 0.72 V, 0.24 V with p = 1, 1, e^-1, e^-2, e^-3 in that order (the
// first two tie); the rest have p = 0. Each parameter set's kept set is worked out by hand.
void check_hand_computed_kept_sets(int64_t vocab, int want_ctas) {
  const int32_t a = 10, b = static_cast<int32_t>(vocab * 48 / 100), c = static_cast<int32_t>(vocab * 96 / 100),
                d = static_cast<int32_t>(vocab * 72 / 100), e = static_cast<int32_t>(vocab * 24 / 100);
  std::vector<float> logits(static_cast<size_t>(vocab), -1000.0f);
  logits[a] = logits[b] = 2.0f;
  logits[c] = 1.0f;
  logits[d] = 0.0f;
  logits[e] = -1.0f;
  gpu::DeviceSampler sampler(vocab);
  CHECK(sampler.ctas() == want_ctas);
  DeviceBuffer<float> logits_d(logits);
  const struct {
    DeviceSamplerParams p;
    std::vector<int32_t> kept;
  } cases[] = {
      {{1.0f, 1.0f, 1, 0.0f, 1}, {a}},  // top-k 1: the tie goes to the lower id
      {{1.0f, 1.0f, 2, 0.0f, 2}, {a, b}},
      {{1.0f, 1.0f, 3, 0.0f, 3}, {a, b, c}},
      {{1.0f, 0.3f, 0, 0.0f, 4}, {a}},               // mass 1 of 2.553 reaches 0.3 of it
      {{1.0f, 0.5f, 0, 0.0f, 5}, {a, b}},            // 2 reaches 1.277
      {{1.0f, 0.85f, 0, 0.0f, 6}, {a, b, c}},        // 2.368 reaches 2.170
      {{1.0f, 1.0f, 0, 0.1f, 7}, {a, b, c, d}},      // e^-2 = 0.135 >= 0.1 > e^-3
      {{1.0f, 1.0f, 4, 0.2f, 8}, {a, b, c}},
      {{1.0f, 1.0f, 0, 0.0f, 9}, {a, b, c, d, e}},
      {{1.0f, 0.6f, 1, 0.0f, 10}, {a}},              // top-p inside top-k
  };
  for (const auto& k : cases) {
    CAPTURE(k.p.top_k);
    CAPTURE(k.p.top_p);
    CAPTURE(k.p.min_p);
    std::vector<int> seen(logits.size(), 0);
    size_t invalid = 0;
    for (int32_t t : draw(sampler, logits_d, k.p, 40, 10 * k.p.seed)) {
      if (std::find(k.kept.begin(), k.kept.end(), t) == k.kept.end()) ++invalid;
      else seen[t] = 1;
    }
    CHECK(invalid == 0);
    CHECK(std::accumulate(seen.begin(), seen.end(), 0) >= std::min<int>(2, static_cast<int>(k.kept.size())));
  }
}

}  // namespace

TEST_CASE("gpu DeviceSampler: greedy equals engine::argmax, ties to the lowest id") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(21);
  for (int64_t V : {1, 7, 50, 1000, 5000, 201088}) {
    CAPTURE(V);
    gpu::DeviceSampler sampler(V);
    DeviceBuffer<uint64_t> counter(std::vector<uint64_t>{0});
    DeviceBuffer<int32_t> token(1);
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> logits(static_cast<size_t>(V));
      for (float& l : logits) l = std::round(std::normal_distribution<float>(0.0f, 3.0f)(rng));  // many ties
      if (trial == 1) std::fill(logits.begin(), logits.end(), -2.5f);                           // all tied
      if (trial == 2 && V > 5) logits[V - 1] = 100.0f;                                          // the last wins
      if (trial == 3) {  // signed zeros tie at the maximum
        for (float& l : logits) l = -std::fabs(l) - 1.0f;
        logits[V / 2] = -0.0f;
        logits[V - 1] = 0.0f;
      }
      CAPTURE(trial);
      DeviceBuffer<float> logits_d(logits);
      OSSRUN_CUDA_CHECK(cudaMemset(token.get(), 0x80, 4));
      sampler.sample(logits_d.get(), {0.0f, 0.5f, 3, 0.1f, 99}, counter.get(), token.get(), nullptr);
      CHECK(token.download()[0] == engine::argmax(logits));
      // top-k 1 samples the argmax too.
      OSSRUN_CUDA_CHECK(cudaMemset(token.get(), 0x80, 4));
      sampler.sample(logits_d.get(), {1.0f, 1.0f, 1, 0.0f, 99}, counter.get(), token.get(), nullptr);
      CHECK(token.download()[0] == engine::argmax(logits));
    }
    CHECK(counter.download()[0] == 12);
  }
}

TEST_CASE("gpu DeviceSampler: NaN or no finite maximum gives token -1") {
  if (!test::gpu_or_skip()) return;
  for (int64_t V : {50, 5000}) {
    gpu::DeviceSampler sampler(V);
    DeviceBuffer<uint64_t> counter(std::vector<uint64_t>{0});
    DeviceBuffer<int32_t> token(1);
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<std::vector<float>> bad(3, std::vector<float>(static_cast<size_t>(V), 1.0f));
    bad[0][7] = std::numeric_limits<float>::quiet_NaN();
    std::fill(bad[1].begin(), bad[1].end(), -inf);
    bad[2][V - 2] = inf;
    for (const auto& logits : bad) {
      DeviceBuffer<float> logits_d(logits);
      for (float temperature : {0.0f, 1.0f}) {
        OSSRUN_CUDA_CHECK(cudaMemset(token.get(), 0, 4));
        sampler.sample(logits_d.get(), {temperature, 0.9f, 0, 0.0f, 1}, counter.get(), token.get(), nullptr);
        CHECK(token.download()[0] == -1);
      }
    }
  }
}

TEST_CASE("gpu DeviceSampler: hand-computed kept sets on one CTA") {
  if (!test::gpu_or_skip()) return;
  check_hand_computed_kept_sets(700, 1);
}

TEST_CASE("gpu DeviceSampler: hand-computed kept sets over several CTAs (ties across CTAs to the lower id)") {
  if (!test::gpu_or_skip()) return;
  check_hand_computed_kept_sets(2500, 3);
}

TEST_CASE("gpu DeviceSampler: frequencies match the filtered distribution (vocab 50, one CTA)") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(23);
  std::vector<float> logits(50);
  for (float& l : logits) l = std::normal_distribution<float>(0.0f, 1.5f)(rng);
  logits[10] = logits[20] = logits[30];  // tied probabilities
  gpu::DeviceSampler sampler(50);
  DeviceBuffer<float> logits_d(logits);
  for (const DeviceSamplerParams& p : kParamSets) {
    CAPTURE(p.temperature);
    CAPTURE(p.top_k);
    CAPTURE(p.top_p);
    CAPTURE(p.min_p);
    check_frequencies(draw(sampler, logits_d, p, 20000, 1000 * p.seed), filtered_distribution(logits, p));
  }
}

TEST_CASE("gpu DeviceSampler: frequencies match the filtered distribution (vocab 3000, several CTAs)") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(29);
  // 60 live tokens spread over the vocabulary (and so over the CTAs' ranges); the rest are far below.
  std::vector<float> logits(3000);
  for (float& l : logits) l = -60.0f + std::normal_distribution<float>(0.0f, 1.0f)(rng);
  for (int j = 0; j < 60; ++j) logits[(j * 2654435761u) % 3000] = std::normal_distribution<float>(0.0f, 1.5f)(rng);
  logits[(5 * 2654435761u) % 3000] = logits[(6 * 2654435761u) % 3000];
  gpu::DeviceSampler sampler(3000);
  CHECK(sampler.ctas() > 1);
  DeviceBuffer<float> logits_d(logits);
  for (const DeviceSamplerParams& p : kParamSets) {
    CAPTURE(p.temperature);
    CAPTURE(p.top_k);
    CAPTURE(p.top_p);
    CAPTURE(p.min_p);
    check_frequencies(draw(sampler, logits_d, p, 20000, 1000 * p.seed), filtered_distribution(logits, p));
  }
}

TEST_CASE("gpu DeviceSampler: vocab 201088, draws are tokens the filters keep") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(31);
  std::vector<float> logits(201088);
  for (float& l : logits) l = std::normal_distribution<float>(0.0f, 3.0f)(rng);
  gpu::DeviceSampler sampler(static_cast<int64_t>(logits.size()));
  DeviceBuffer<float> logits_d(logits);
  const DeviceSamplerParams sets[] = {{1.0f, 0.9f, 0, 0.0f, 1},  {0.8f, 1.0f, 50, 0.0f, 2},  {1.0f, 1.0f, 0, 0.05f, 3},
                                      {1.0f, 0.5f, 1000, 0.0f, 4}, {0.5f, 0.95f, 40, 0.01f, 5}, {1.0f, 1.0f, 0, 0.0f, 6}};
  for (const DeviceSamplerParams& p : sets) {
    CAPTURE(p.temperature);
    CAPTURE(p.top_k);
    CAPTURE(p.top_p);
    CAPTURE(p.min_p);
    const std::vector<double> dist = filtered_distribution(logits, p);
    const std::vector<int32_t> tokens = draw(sampler, logits_d, p, 300, 77 * p.seed);
    size_t invalid = 0, distinct = 0;
    std::vector<char> seen(logits.size(), 0);
    for (int32_t t : tokens) {
      if (t < 0 || static_cast<size_t>(t) >= dist.size() || dist[t] == 0) ++invalid;
      else distinct += !seen[t], seen[t] = 1;
    }
    CHECK(invalid == 0);
    CHECK(distinct > 1);  // every set keeps many tokens: a stuck draw would repeat one
  }
}

TEST_CASE("gpu DeviceSampler: the same seed and counter give the same tokens; replays from a CUDA graph") {
  if (!test::gpu_or_skip()) return;
  std::mt19937 rng(37);
  std::vector<float> logits(5000);
  for (float& l : logits) l = std::normal_distribution<float>(0.0f, 2.0f)(rng);
  gpu::DeviceSampler sampler(5000);
  DeviceBuffer<float> logits_d(logits);
  const DeviceSamplerParams p{1.0f, 0.95f, 0, 0.0f, 12345};
  const std::vector<int32_t> a = draw(sampler, logits_d, p, 64, 500), b = draw(sampler, logits_d, p, 64, 500);
  CHECK(a == b);
  DeviceSamplerParams other = p;
  other.seed = 54321;
  CHECK(draw(sampler, logits_d, other, 64, 500) != a);

  // Captured once, replayed 64 times: the counter advances inside the graph, so the tokens match the direct calls.
  cudaStream_t stream;
  OSSRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceBuffer<uint64_t> counter(std::vector<uint64_t>{500});
  DeviceBuffer<int32_t> token(1);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  OSSRUN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  sampler.sample(logits_d.get(), p, counter.get(), token.get(), stream);
  OSSRUN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  OSSRUN_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  std::vector<int32_t> replayed;
  for (int i = 0; i < 64; ++i) {
    OSSRUN_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    OSSRUN_CUDA_CHECK(cudaStreamSynchronize(stream));
    replayed.push_back(token.download()[0]);
  }
  CHECK(replayed == a);
  OSSRUN_CUDA_CHECK(cudaGraphExecDestroy(exec));
  OSSRUN_CUDA_CHECK(cudaGraphDestroy(graph));
  OSSRUN_CUDA_CHECK(cudaStreamDestroy(stream));
}

TEST_CASE("gpu DeviceSampler: parameters and vocabulary sizes out of range are rejected") {
  // Checked before any device access: these run without a GPU too.
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{-1.0f, 1.0f, 0, 0.0f, 0}), InputError);
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{std::numeric_limits<float>::infinity(), 1.0f, 0, 0.0f, 0}), InputError);
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{1.0f, 0.0f, 0, 0.0f, 0}), InputError);
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{1.0f, 1.5f, 0, 0.0f, 0}), InputError);
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{1.0f, 1.0f, -1, 0.0f, 0}), InputError);
  CHECK_THROWS_AS(gpu::validate(DeviceSamplerParams{1.0f, 1.0f, 0, 1.5f, 0}), InputError);
  CHECK_NOTHROW(gpu::validate(DeviceSamplerParams{0.0f, 1.0f, 0, 0.0f, 0}));
  CHECK_THROWS_AS(gpu::DeviceSampler(0), InputError);
  CHECK_THROWS_AS(gpu::DeviceSampler(int64_t{1} << 31), InputError);
  CHECK_THROWS_AS(gpu::DeviceSampler(100, -1), InputError);
}
