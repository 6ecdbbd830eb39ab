// Router statistics: decay math, shares, and persistence (round trip, corrupted and mis-shaped files).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "offload/router_stats.h"
#include "offload/router_stats_io.h"
#include "src/model/error.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using namespace ossrun::offload;
using ossrun::test::TempDir;

namespace {

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

RouterStats sample_stats() {
  RouterStats s(3, 5, 10.0);
  const int routing[][2] = {{0, 1}, {1, 2}, {0, 4}, {3, 0}};
  for (int t = 0; t < 40; ++t) {
    for (int l = 0; l < 3; ++l) {
      const int* pair = routing[(t + l) % 4];
      s.record(l, std::vector<int>{pair[0], pair[1]});
    }
    s.end_token();
  }
  return s;
}

}  // namespace

TEST_CASE("offload router stats: counts halve every half-life, shares sum to k") {
  RouterStats s(2, 4, 8.0);
  s.record(0, std::vector<int>{1, 3});
  CHECK(s.count(0, 1) == doctest::Approx(1.0));
  CHECK(s.last_use(0, 1) == 0);
  CHECK(s.last_use(0, 2) == -1);
  for (int i = 0; i < 8; ++i) s.end_token();
  CHECK(s.tokens() == 8);
  CHECK(s.count(0, 1) == doctest::Approx(0.5));
  CHECK(s.routed_tokens(0) == doctest::Approx(0.5));
  s.record(0, std::vector<int>{1, 2});
  CHECK(s.count(0, 1) == doctest::Approx(1.5));
  CHECK(s.count(0, 3) == doctest::Approx(0.5));
  CHECK(s.last_use(0, 1) == 8);
  for (int i = 0; i < 16; ++i) s.end_token();
  CHECK(s.count(0, 1) == doctest::Approx(1.5 / 4));
  double sum = 0;
  for (int e = 0; e < 4; ++e) sum += s.share(0, e);
  CHECK(sum == doctest::Approx(2.0));                // k = 2 experts per token
  CHECK(s.share(0, 1) == doctest::Approx(1.0));      // routed in both tokens
  CHECK(s.share(1, 0) == 0.0);                        // layer 1 saw nothing

  RouterStats plain(1, 2, RouterStats::kNoDecay);
  for (int i = 0; i < 100; ++i) {
    plain.record(0, std::vector<int>{i % 2});
    plain.end_token();
  }
  CHECK(plain.count(0, 0) == 50.0);
  CHECK(plain.share(0, 1) == doctest::Approx(0.5));

  CHECK_THROWS_AS(s.record(2, std::vector<int>{0}), std::out_of_range);
  CHECK_THROWS_AS(s.record(0, std::vector<int>{4}), std::out_of_range);
  CHECK_THROWS_AS(RouterStats(1, 1, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(RouterStats(0, 1, 1.0), std::invalid_argument);
}

TEST_CASE("offload router stats: save and load round trip, next to the model") {
  TempDir tmp;
  const RouterStats s = sample_stats();
  const auto dir = tmp / "model";
  std::filesystem::create_directories(dir);
  const auto written = save_router_stats_for_model(dir, s, tmp / "cache");
  CHECK(written == dir / ".ossrun" / "router_stats.json");
  const LoadedRouterStats loaded = load_router_stats_for_model(dir, 3, 5, tmp / "cache");
  REQUIRE(loaded.stats.has_value());
  CHECK(loaded.warning.empty());
  const RouterStats& r = *loaded.stats;
  CHECK(r.tokens() == s.tokens());
  CHECK(r.half_life() == s.half_life());
  for (int l = 0; l < 3; ++l) {
    CHECK(r.routed_tokens(l) == doctest::Approx(s.routed_tokens(l)));
    for (int e = 0; e < 5; ++e) {
      CHECK(r.count(l, e) == doctest::Approx(s.count(l, e)));
      CHECK(r.last_use(l, e) == s.last_use(l, e));
    }
  }
  // Loaded statistics keep decaying from where they were saved.
  RouterStats a = s, b = r;
  for (int i = 0; i < 10; ++i) a.end_token(), b.end_token();
  CHECK(b.count(0, 0) == doctest::Approx(a.count(0, 0)));

  // No decay (half-life null in the file) survives too.
  RouterStats plain(1, 2, RouterStats::kNoDecay);
  plain.record(0, std::vector<int>{1});
  plain.end_token();
  const RouterStats back = router_stats_from_json(router_stats_to_json(plain), 1, 2);
  CHECK(std::isinf(back.half_life()));
  CHECK(back.count(0, 1) == 1.0);
}

TEST_CASE("offload router stats: a model directory that cannot be written falls back to the cache") {
  TempDir tmp;
  const auto dir = tmp / "model";
  // .ossrun exists as a file, so the directory cannot be created (this works when running as root too).
  write_text(dir / ".ossrun", "in the way");
  const RouterStats s = sample_stats();
  const auto written = save_router_stats_for_model(dir, s, tmp / "cache");
  CHECK(written == cache_stats_path(dir, tmp / "cache"));
  CHECK(written.string().find((tmp / "cache" / "router_stats").string()) == 0);
  const LoadedRouterStats loaded = load_router_stats_for_model(dir, 3, 5, tmp / "cache");
  REQUIRE(loaded.stats.has_value());
  CHECK(loaded.path == written);
  CHECK(loaded.stats->count(1, 2) == doctest::Approx(s.count(1, 2)));
  // Different directories get different cache files.
  CHECK(cache_stats_path(tmp / "a" / "model", tmp.path()) != cache_stats_path(tmp / "b" / "model", tmp.path()));
}

TEST_CASE("offload router stats: missing, corrupted or mis-shaped files give fresh statistics and a warning") {
  TempDir tmp;
  const auto file = tmp / "stats.json";
  {
    const LoadedRouterStats r = load_router_stats(file, 3, 5);
    CHECK_FALSE(r.stats.has_value());
    CHECK(r.warning.empty());  // nothing saved yet: not worth a warning
  }
  auto expect_warning = [&](const std::string& text, const std::string& fragment) {
    write_text(file, text);
    const LoadedRouterStats r = load_router_stats(file, 3, 5);
    CHECK_FALSE(r.stats.has_value());
    INFO("warning: " << r.warning);
    CHECK(r.warning.find(fragment) != std::string::npos);
    CHECK(r.warning.find("fresh") != std::string::npos);
  };
  expect_warning("", "not valid JSON");
  expect_warning("{\"format\": \"ossrun router statistics\", \"vers", "not valid JSON");
  expect_warning("[1, 2]", "not a JSON object");
  expect_warning("{\"format\": \"something else\"}", "not an ossrun router statistics file");

  const nlohmann::json good = router_stats_to_json(sample_stats());
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[key] = value;
    return j.dump();
  };
  expect_warning(with("version", 2), "version 2");
  expect_warning(with("layers", 4), "saved for 4 layers x 5 experts, but this model has 3 x 5");
  expect_warning(with("experts", 32), "saved for 3 layers x 32 experts");
  expect_warning(with("half_life_tokens", -3), "half_life_tokens");
  expect_warning(with("tokens", "many"), "\"tokens\"");
  expect_warning(with("counts", nlohmann::json::array()), "\"counts\" must be an array of 3");
  nlohmann::json bad = good;
  bad["counts"][1][2] = -1.0;
  expect_warning(bad.dump(), "\"counts\"[1][2]");
  bad = good;
  bad["counts"][0][0] = 1e9;
  expect_warning(bad.dump(), "exceeds the layer's routed tokens");
  bad = good;
  bad["last_use"][2][4] = 1000;
  expect_warning(bad.dump(), "\"last_use\"[2][4]");
  bad = good;
  bad.erase("routed_tokens");
  expect_warning(bad.dump(), "\"routed_tokens\" is missing");

  // The strict parser throws InputError, naming the problem.
  CHECK_THROWS_AS(router_stats_from_json(good, 3, 6), InputError);
}
