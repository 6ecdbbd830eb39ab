// The expert cache policies on hand-made sequences: what each one admits and evicts, hysteresis, and the
// rules they all share (demand uploads, the upload budget, the slot count).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "offload/expert_cache.h"
#include "offload/trace_synth.h"
#include "src/model/error.h"

using namespace ossrun;
using namespace ossrun::offload;

namespace {

constexpr int kUnlimited = 1 << 30;

struct Run {
  int hits = 0, uploads = 0;
};

// Feeds one expert per step (k = 1).
Run feed(ExpertCache& cache, const std::vector<uint16_t>& sequence, int budget = kUnlimited) {
  Run r;
  CacheDecision d;
  for (uint16_t e : sequence) {
    r.hits += cache.resident(e);
    cache.step(std::vector<uint16_t>{e}, budget, d);
    r.uploads += static_cast<int>(d.admitted.size());
  }
  return r;
}

std::unique_ptr<ExpertCache> make(PolicyKind kind, int experts, int slots, const PolicyTuning& t = {},
                                  std::vector<double> prior = {}) {
  if (kind == PolicyKind::Static && prior.empty()) prior.assign(experts, 0.0);
  return make_expert_cache(kind, experts, slots, t, prior);
}

}  // namespace

TEST_CASE("policy lru: evicts the least recently used resident") {
  auto cache = make(PolicyKind::Lru, 4, 2);
  CacheDecision d;
  feed(*cache, {0, 1, 0});  // residents {0, 1}; 1 is now the least recent
  cache->step(std::vector<uint16_t>{2}, kUnlimited, d);
  CHECK(d.evicted == std::vector<uint16_t>{1});
  CHECK(d.admitted == std::vector<uint16_t>{2});
  CHECK(cache->resident(0));
  CHECK(cache->resident(2));
  CHECK_FALSE(cache->resident(1));
  // A cyclic scan one longer than the slots misses every time under LRU.
  auto cyclic = make(PolicyKind::Lru, 4, 2);
  CHECK(feed(*cyclic, {0, 1, 2, 0, 1, 2, 0, 1, 2}).hits == 0);
}

TEST_CASE("policy lfu: evicts the least frequently used resident, and decay lets old favourites go") {
  PolicyTuning t;
  t.lfu_half_life = 1000;
  auto cache = make(PolicyKind::Lfu, 4, 2, t);
  CacheDecision d;
  feed(*cache, {0, 0, 0, 1, 1, 0});  // counts 0:4, 1:2
  cache->step(std::vector<uint16_t>{2}, kUnlimited, d);  // LFU always admits a miss
  CHECK(d.evicted == std::vector<uint16_t>{1});
  CHECK(d.admitted == std::vector<uint16_t>{2});

  // The victim among two residents: 30 uses of expert 0 long ago against 20 recent uses of expert 1.
  for (double half_life : {4.0, 1e6}) {
    t.lfu_half_life = half_life;
    auto decayed = make(PolicyKind::Lfu, 4, 2, t);
    feed(*decayed, std::vector<uint16_t>(30, 0));
    feed(*decayed, std::vector<uint16_t>(20, 1));
    feed(*decayed, {2});
    CAPTURE(half_life);
    CHECK(decayed->resident(half_life < 100 ? 1 : 0));   // short memory keeps the recent one
    CHECK_FALSE(decayed->resident(half_life < 100 ? 0 : 1));
  }
}

TEST_CASE("policy router: hysteresis keeps one of an alternating pair instead of thrashing") {
  const std::vector<uint16_t> alternating = [] {
    std::vector<uint16_t> s;
    for (int i = 0; i < 400; ++i) s.push_back(static_cast<uint16_t>(i % 2));
    return s;
  }();
  auto router = make(PolicyKind::Router, 4, 1);
  const Run r = feed(*router, alternating);
  CHECK(r.uploads == 1);    // the first expert, never replaced
  CHECK(r.hits == 199);     // every other step hits
  // Without hysteresis the pair takes turns in the slot: an upload every step, no hits.
  auto lfu = make(PolicyKind::Lfu, 4, 1);
  const Run l = feed(*lfu, alternating);
  CHECK(l.uploads == 400);
  CHECK(l.hits == 0);
  auto lru = make(PolicyKind::Lru, 4, 1);
  CHECK(feed(*lru, alternating).uploads == 400);
}

TEST_CASE("policy router: a newcomer replaces the weakest only once its score beats it by the margin") {
  PolicyTuning t;
  t.router_half_life = 16;
  t.router_margin = 0.25;
  auto cache = make(PolicyKind::Router, 4, 1, t);
  feed(*cache, std::vector<uint16_t>(10, 0));  // expert 0: steps 0..9
  // Then expert 1 at every step. Decayed scores at step s, as the policy computes them (its own use included).
  auto score = [&](int first, int last, int s) {
    double v = 0;
    for (int i = first; i <= last; ++i) v += std::exp2(-(s - i) / t.router_half_life);
    return v;
  };
  int expected_swap = -1;
  for (int s = 10; s < 200 && expected_swap < 0; ++s)
    if (score(10, s, s) > score(0, 9, s) * (1 + t.router_margin)) expected_swap = s;
  REQUIRE(expected_swap > 10);
  CacheDecision d;
  int swap = -1;
  for (int s = 10; s < 200 && swap < 0; ++s) {
    cache->step(std::vector<uint16_t>{1}, kUnlimited, d);
    if (!d.admitted.empty()) {
      swap = s;
      CHECK(d.evicted == std::vector<uint16_t>{0});
    }
  }
  CHECK(swap == expected_swap);
}

TEST_CASE("policy router: with a budget of one upload it takes the highest-scoring miss") {
  auto fresh = make(PolicyKind::Router, 8, 4);
  CacheDecision d;
  feed(*fresh, {3, 3, 3}, /*budget=*/1);    // 3 resident
  fresh->step(std::vector<uint16_t>{1, 2, 3}, 1, d);  // 1 and 2 tie: the router order decides
  CHECK(d.admitted == std::vector<uint16_t>{1});
  feed(*fresh, {2, 2}, 0);  // raises 2's score without uploads (budget 0)
  fresh->step(std::vector<uint16_t>{4, 2}, 1, d);
  CHECK(d.admitted == std::vector<uint16_t>{2});
}

TEST_CASE("policy static: admits only the top experts of the prior, never evicts") {
  auto cache = make(PolicyKind::Static, 6, 2, {}, {0.1, 0.9, 0.05, 0.8, 0.3, 0.3});
  const Run r = feed(*cache, {0, 2, 4, 5, 1, 3, 0, 1, 3, 2, 1});
  CHECK(r.uploads == 2);
  CHECK(cache->resident(1));
  CHECK(cache->resident(3));
  CHECK(r.hits == 3);  // the second 1, the second 3, the third 1
  CHECK_THROWS_AS(make_expert_cache(PolicyKind::Static, 6, 2, {}, {}), std::invalid_argument);
}

TEST_CASE("policy rules: every policy uploads only routed misses, within the budget and the slots") {
  SyntheticTraceParams p;
  p.shape = {1, 16, 4};
  p.tokens = 3000;
  p.skew = 0.8;
  p.segment_tokens = 30;
  const Trace trace = generate_synthetic_trace(p);
  std::vector<double> prior(16);
  for (int e = 0; e < 16; ++e) prior[e] = 1.0 / (e + 1);
  for (PolicyKind kind : {PolicyKind::Static, PolicyKind::Lru, PolicyKind::Lfu, PolicyKind::Router}) {
    for (int slots : {0, 1, 3, 8, 16}) {
      for (int budget : {0, 1, 2, kUnlimited}) {
        CAPTURE(policy_name(kind));
        CAPTURE(slots);
        CAPTURE(budget);
        auto cache = make_expert_cache(kind, 16, slots, {}, prior);
        CacheDecision d;
        bool ok = true;
        for (int64_t t = 0; t < trace.tokens() && ok; ++t) {
          auto ids = trace.ids(t, 0);
          std::vector<uint16_t> missed;
          for (uint16_t e : ids)
            if (!cache->resident(e)) missed.push_back(e);
          const std::vector<uint16_t> before = cache->residents();
          cache->step(ids, budget, d);
          ok &= static_cast<int>(d.admitted.size()) <= budget;
          ok &= cache->used() <= slots;
          for (uint16_t e : d.admitted) ok &= std::count(missed.begin(), missed.end(), e) == 1 && cache->resident(e);
          for (uint16_t e : d.evicted) ok &= std::count(before.begin(), before.end(), e) == 1 && !cache->resident(e);
          ok &= cache->used() == static_cast<int>(before.size() + d.admitted.size() - d.evicted.size());
        }
        CHECK(ok);
      }
    }
  }
}

TEST_CASE("policy rules: bad arguments are rejected") {
  CHECK_THROWS_AS(make(PolicyKind::Lru, 4, 5), std::invalid_argument);
  CHECK_THROWS_AS(make(PolicyKind::Lru, 4, -1), std::invalid_argument);
  CHECK_THROWS_AS(make_expert_cache(PolicyKind::Router, 4, 2, {}, std::vector<double>{1, 2}), std::invalid_argument);
  CHECK_THROWS_AS(make_expert_cache(PolicyKind::Belady, 4, 2, {}, {}), std::invalid_argument);
  PolicyTuning bad;
  bad.router_margin = -0.1;
  CHECK_THROWS_AS(make(PolicyKind::Router, 4, 2, bad), std::invalid_argument);
  bad = {};
  bad.lfu_half_life = 0;
  CHECK_THROWS_AS(make(PolicyKind::Lfu, 4, 2, bad), std::invalid_argument);

  auto cache = make(PolicyKind::Lru, 4, 2);
  CacheDecision d;
  CHECK_THROWS_AS(cache->step(std::vector<uint16_t>{4}, 1, d), std::out_of_range);
  CHECK_THROWS_AS(cache->step(std::vector<uint16_t>{1, 1}, 1, d), std::invalid_argument);
  CHECK_THROWS_AS(cache->step(std::vector<uint16_t>{1}, -1, d), std::invalid_argument);
  cache->step(std::vector<uint16_t>{1, 2}, 2, d);  // still usable after the rejected calls
  CHECK(d.admitted.size() == 2);

  CHECK(parse_policy("router") == PolicyKind::Router);
  CHECK(tuning_for(32, 4).router_half_life == 64);   // gpt-oss-20b
  CHECK(tuning_for(128, 4).router_half_life == 256);  // gpt-oss-120b
  CHECK(tuning_for(128, 4).lfu_half_life == 256);
  CHECK_THROWS_WITH_AS(parse_policy("fifo"), doctest::Contains("known: static, lru, lfu, router, belady"), InputError);
}
