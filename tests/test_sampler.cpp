// The sampler (src/engine/sampler.h): greedy, temperature, top-k, top-p, min-p, seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <vector>

#include "src/engine/sampler.h"
#include "src/model/error.h"

using namespace ossrun;
using namespace ossrun::engine;

namespace {

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(p > 0 ? float(std::log(p)) : -INFINITY);
  return l;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[s.sample(logits)] += 1.0 / draws;
  return f;
}

}  // namespace

TEST_CASE("sampler: greedy is the argmax, lowest id on ties") {
  Sampler s(6, {.temperature = 0});
  CHECK(s.sample(std::vector<float>{1, 5, 2, 5, -1, 0}) == 1);
  CHECK(argmax(std::vector<float>{-3, -2, -2}) == 1);
  // top_k = 1 is greedy too.
  Sampler k1(4, {.temperature = 1.5f, .top_k = 1, .seed = 3});
  for (int i = 0; i < 20; ++i) CHECK(k1.sample(std::vector<float>{0.1f, 0.3f, 0.3f, 0.2f}) == 1);
}

TEST_CASE("sampler: draws follow softmax(logits / temperature)") {
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  Sampler s(4, {.temperature = 1.0f, .seed = 42});
  const std::vector<double> f = frequencies(s, logits_of(p), 200000);
  for (size_t i = 0; i < p.size(); ++i) CHECK(f[i] == doctest::Approx(p[i]).epsilon(0.03));

  // Temperature 0.5 squares the probabilities (then renormalizes).
  Sampler cold(4, {.temperature = 0.5f, .seed = 42});
  const std::vector<double> fc = frequencies(cold, logits_of(p), 200000);
  double z = 0;
  for (double x : p) z += x * x;
  for (size_t i = 0; i < p.size(); ++i) CHECK(fc[i] == doctest::Approx(p[i] * p[i] / z).epsilon(0.04));
}

TEST_CASE("sampler: top-k, top-p and min-p keep exactly the tokens they should") {
  const std::vector<double> p = {0.05, 0.5, 0.15, 0.3};  // ids by likelihood: 1, 3, 2, 0
  const std::vector<float> l = logits_of(p);
  auto support = [&](SamplerOptions o) {
    Sampler s(4, o);
    std::map<int, int> seen;
    for (int i = 0; i < 4000; ++i) ++seen[s.sample(l)];
    std::vector<int> ids;
    for (auto [id, n] : seen) ids.push_back(id);
    return ids;
  };
  CHECK(support({.top_k = 2, .seed = 1}) == std::vector<int>{1, 3});
  CHECK(support({.top_k = 3, .seed = 1}) == std::vector<int>{1, 2, 3});
  CHECK(support({.top_p = 0.5f, .seed = 1}) == std::vector<int>{1});      // 0.5 reaches 0.5
  CHECK(support({.top_p = 0.7f, .seed = 1}) == std::vector<int>{1, 3});   // 0.5 + 0.3
  CHECK(support({.top_p = 0.9f, .seed = 1}) == std::vector<int>{1, 2, 3});
  CHECK(support({.min_p = 0.35f, .seed = 1}) == std::vector<int>{1, 3});  // 0.3 >= 0.175, 0.15 < 0.175
  CHECK(support({.min_p = 0.2f, .seed = 1}) == std::vector<int>{1, 2, 3});
  // top-p after top-k sees the renormalized distribution: {0.5, 0.3} -> {0.625, 0.375}.
  CHECK(support({.top_p = 0.6f, .top_k = 2, .seed = 1}) == std::vector<int>{1});
  CHECK(support({.top_p = 0.65f, .top_k = 2, .seed = 1}) == std::vector<int>{1, 3});

  // Within what top-p keeps, draws are proportional to the kept probabilities.
  Sampler s(4, {.top_p = 0.7f, .seed = 9});
  const std::vector<double> f = frequencies(s, l, 100000);
  CHECK(f[1] == doctest::Approx(0.625).epsilon(0.03));
  CHECK(f[3] == doctest::Approx(0.375).epsilon(0.05));
}

TEST_CASE("sampler: top-p over a long vocabulary (the prefix sort grows past its first step)") {
  // 5000 equally likely tokens: top_p 0.5 keeps 2500 of them, ties broken toward lower ids.
  const std::vector<float> l(5000, 0.0f);
  Sampler s(5000, {.top_p = 0.5f, .seed = 4});
  int max_id = 0;
  for (int i = 0; i < 20000; ++i) max_id = std::max(max_id, int(s.sample(l)));
  CHECK(max_id < 2500);
  CHECK(max_id > 2400);
}

TEST_CASE("sampler: the same seed gives the same tokens, another seed other tokens") {
  std::vector<float> l(1000);
  for (int i = 0; i < 1000; ++i) l[i] = float(std::sin(i * 0.37) * 3);
  auto run = [&](uint64_t seed) {
    Sampler s(1000, {.temperature = 0.8f, .top_p = 0.95f, .top_k = 100, .min_p = 0.01f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l));
    return out;
  };
  CHECK(run(123) == run(123));
  CHECK(run(123) != run(124));
}

TEST_CASE("sampler: bad options and bad logits are errors") {
  CHECK_THROWS_AS(validate({.temperature = -1}), InputError);
  CHECK_THROWS_AS(validate({.top_p = 0}), InputError);
  CHECK_THROWS_AS(validate({.top_p = 1.5f}), InputError);
  CHECK_THROWS_AS(validate({.top_k = -2}), InputError);
  CHECK_THROWS_AS(validate({.min_p = 2}), InputError);
  CHECK_THROWS_AS(Sampler(3, {.temperature = NAN}), InputError);
  Sampler s(3, {});
  CHECK_THROWS_AS(s.sample(std::vector<float>{NAN, NAN, NAN}), std::runtime_error);
  CHECK_THROWS_AS(s.sample(std::vector<float>{-INFINITY, -INFINITY, -INFINITY}), std::runtime_error);
}
