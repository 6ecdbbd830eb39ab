// Routing traces: writer/reader round trip, one error per kind of bad file, and the synthetic generator.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "offload/simulate.h"
#include "offload/trace.h"
#include "offload/trace_synth.h"
#include "src/model/error.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using namespace ossrun::offload;
using ossrun::test::TempDir;

namespace {

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::filesystem::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

void expect_read_error(const std::filesystem::path& p, const std::string& fragment) {
  try {
    read_trace(p);
    FAIL("accepted a bad trace; expected an error containing: " << fragment);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

void check_same(const Trace& a, const Trace& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(a.tokens() == b.tokens());
  CHECK(a.raw() == b.raw());
}

}  // namespace

TEST_CASE("offload trace: write and read back, one-byte and two-byte ids") {
  TempDir tmp;
  for (const TraceShape shape : {TraceShape{3, 8, 2}, TraceShape{2, 300, 4}, TraceShape{1, 1, 1}}) {
    SyntheticTraceParams p;
    p.shape = shape;
    p.burst_experts = std::min(2, shape.experts);
    p.tokens = 57;
    p.seed = 7;
    const Trace t = generate_synthetic_trace(p);
    write_trace(tmp / "t.bin", t);
    const uint64_t id_bytes = shape.experts <= 256 ? 1 : 2;
    CHECK(std::filesystem::file_size(tmp / "t.bin") == 32 + 57 * shape.ids_per_token() * id_bytes);
    check_same(t, read_trace(tmp / "t.bin"));
  }
  // An empty trace is a valid trace.
  write_trace(tmp / "empty.bin", Trace(TraceShape{2, 4, 1}));
  CHECK(read_trace(tmp / "empty.bin").tokens() == 0);
}

TEST_CASE("offload trace: the streaming writer, and the file it leaves when it is not finished") {
  TempDir tmp;
  const TraceShape shape{2, 4, 2};
  const std::vector<uint16_t> token = {0, 1, 3, 2};
  {
    TraceWriter w(tmp / "done.bin", shape);
    for (int i = 0; i < 5; ++i) w.append_token(token);
    CHECK(w.tokens() == 5);
    CHECK_THROWS_WITH_AS(w.append_token(std::vector<uint16_t>{0, 1, 3}), doctest::Contains("expected layers x k = 4"), InputError);
    CHECK_THROWS_WITH_AS(w.append_token(std::vector<uint16_t>{0, 4, 3, 2}), doctest::Contains("names expert 4"), InputError);
    CHECK_THROWS_WITH_AS(w.append_token(std::vector<uint16_t>{0, 1, 2, 2}), doctest::Contains("twice"), InputError);
    w.finish();
  }
  CHECK(read_trace(tmp / "done.bin").tokens() == 5);
  {
    TraceWriter w(tmp / "dtor.bin", shape);
    w.append_token(token);
  }  // the destructor finishes
  CHECK(read_trace(tmp / "dtor.bin").tokens() == 1);

  // A writer that died before finish(): the header still says 0 tokens.
  const std::string done = read_bytes(tmp / "done.bin");
  std::string unfinished = done;
  std::memset(unfinished.data() + 24, 0, 8);
  write_bytes(tmp / "died.bin", unfinished);
  expect_read_error(tmp / "died.bin", "the writer did not finish; 5 whole tokens are there");
  CHECK_THROWS_AS(TraceWriter(tmp / "no" / "such" / "dir.bin", shape), InputError);
}

TEST_CASE("offload trace: bad files are errors naming the file and the defect") {
  TempDir tmp;
  const std::vector<uint16_t> token = {0, 1, 3, 2};
  {
    TraceWriter w(tmp / "good.bin", TraceShape{2, 4, 2});
    for (int i = 0; i < 3; ++i) w.append_token(token);
  }
  const std::string good = read_bytes(tmp / "good.bin");
  const auto bad = tmp / "bad.bin";
  auto with = [&](size_t offset, std::string bytes) {
    std::string s = good;
    s.replace(offset, bytes.size(), bytes);
    write_bytes(bad, s);
  };

  expect_read_error(tmp / "missing.bin", "cannot open");
  write_bytes(bad, "");
  expect_read_error(bad, "not an ossrun trace");
  write_bytes(bad, good.substr(0, 20));
  expect_read_error(bad, "not an ossrun trace");
  with(0, "OSSTRACX");
  expect_read_error(bad, "not an ossrun trace");
  with(8, std::string("\x02\0\0\0", 4));
  expect_read_error(bad, "trace version 2");
  with(12, std::string("\0\0\0\0", 4));
  expect_read_error(bad, "layers must be 1..4096, found 0");
  with(16, std::string("\xff\xff\xff\x7f", 4));
  expect_read_error(bad, "impossible shape");
  with(20, std::string("\x05\0\0\0", 4));
  expect_read_error(bad, "k must be 1..min(experts, 256) = 4, found 5");
  write_bytes(bad, good.substr(0, good.size() - 1));
  expect_read_error(bad, "(truncated)");
  write_bytes(bad, good + "x");
  expect_read_error(bad, "the header says 3 tokens of 4 bytes but 13 bytes follow");
  with(24, std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8));
  expect_read_error(bad, "the header says 18446744073709551615 tokens");
  with(32 + 4 + 2, std::string("\x09", 1));
  expect_read_error(bad, "token 1 layer 1 names expert 9 but there are 4");
  with(32 + 8 + 3, std::string("\x03", 1));
  expect_read_error(bad, "token 2 layer 1 names expert 3 twice");
}

TEST_CASE("offload trace: synthetic traces are reproducible and as skewed as asked") {
  SyntheticTraceParams p;
  p.shape = {2, 32, 4};
  p.tokens = 4000;
  p.seed = 42;
  const Trace a = generate_synthetic_trace(p), b = generate_synthetic_trace(p);
  CHECK(a.raw() == b.raw());
  p.seed = 43;
  CHECK(generate_synthetic_trace(p).raw() != a.raw());

  // Share of routing that goes to each layer's top 8 experts grows with the skew; uniform routing gives 8/32.
  auto top8_share = [&](double skew) {
    SyntheticTraceParams q = p;
    q.skew = skew;
    q.burst_experts = 0;
    q.drift = 0;
    const auto f = trace_frequencies(generate_synthetic_trace(q));
    std::vector<double> layer = f[0];
    std::sort(layer.rbegin(), layer.rend());
    double top = 0, all = 0;
    for (int i = 0; i < 32; ++i) (i < 8 ? top : all) += layer[i];
    return top / (top + all);
  };
  const double s0 = top8_share(0.0), s06 = top8_share(0.6), s14 = top8_share(1.4);
  CHECK(s0 == doctest::Approx(0.25).epsilon(0.1));
  CHECK(s06 > s0 + 0.1);
  CHECK(s14 > s06 + 0.1);

  // The layers get different permutations: their most popular experts differ.
  SyntheticTraceParams q = p;
  q.skew = 1.4;
  q.shape = {8, 32, 4};
  const auto f = trace_frequencies(generate_synthetic_trace(q));
  std::vector<int> top;
  for (const auto& layer : f) top.push_back(static_cast<int>(std::max_element(layer.begin(), layer.end()) - layer.begin()));
  std::sort(top.begin(), top.end());
  CHECK(std::unique(top.begin(), top.end()) - top.begin() > 2);

  // The popularity oracle: scoring it leaves the trace as it is; all slots hit everything, none nothing.
  SyntheticTraceParams scored = p;
  double previous = -1;
  for (int slots : {0, 4, 8, 16, 32}) {
    scored.oracle_slots = slots;
    const SyntheticTrace s = generate_synthetic_trace_scored(scored);
    CHECK(s.trace.raw() == generate_synthetic_trace(p).raw());
    CHECK(s.oracle_hit_rate > previous);
    previous = s.oracle_hit_rate;
    if (slots == 0) CHECK(s.oracle_hit_rate == 0.0);
    if (slots == 32) CHECK(s.oracle_hit_rate == 1.0);
  }

  SyntheticTraceParams bad = p;
  bad.skew = -1;
  CHECK_THROWS_WITH_AS(generate_synthetic_trace(bad), doctest::Contains("skew"), InputError);
  bad = p;
  bad.tokens = 0;
  CHECK_THROWS_AS(generate_synthetic_trace(bad), InputError);
  bad = p;
  bad.shape.k = 33;
  CHECK_THROWS_AS(generate_synthetic_trace(bad), InputError);
  bad = p;
  bad.oracle_slots = 33;
  CHECK_THROWS_WITH_AS(generate_synthetic_trace(bad), doctest::Contains("oracle_slots"), InputError);
}
