// `ossrun stats`: expert popularity figures on hand-made statistics, the SVG heatmap (well-formed, one cell
// per (layer, expert)), the PNG encoder (signature, chunks and CRCs recomputed, the zlib stream inflated),
// and the command's output and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "offload/router_stats_io.h"
#include "offload/trace_synth.h"
#include "src/stats/expert_popularity.h"
#include "src/stats/heatmap_png.h"
#include "src/stats/heatmap_svg.h"
#include "src/stats/png_writer.h"
#include "src/stats/summary.h"
#include "tests/support/build_paths.h"
#include "tests/support/shell_run.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;
using namespace ossrun::stats;

namespace {

// 2 layers x 4 experts, top-2, 10 tokens. Layer 0: expert 0 every token, 1 on 6, 2 on 4 (call fractions
// .5 .3 .2 0). Layer 1: (0,1) on 5 tokens, (2,3) on 5 (uniform).
offload::RouterStats hand_made_stats() {
  offload::RouterStats s(2, 4, offload::RouterStats::kNoDecay);
  for (int t = 0; t < 10; ++t) {
    s.record(0, std::vector<int>{0, t < 6 ? 1 : 2});
    s.record(1, t % 2 ? std::vector<int>{0, 1} : std::vector<int>{2, 3});
    s.end_token();
  }
  return s;
}

using Run = test::ShellRun;
Run run_ossrun(const std::string& args) { return test::run_ossrun(args, true); }

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

int occurrences(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// Checks that every element is closed in order (a small XML well-formedness check: tags balance, attribute
// quotes close, no stray '<' or '&' in text). Returns "" or what is wrong.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> open;
  size_t i = 0;
  if (x.rfind("<?xml", 0) == 0) i = x.find("?>") + 2;
  while (i < x.size()) {
    if (x[i] == '&') {
      const size_t semi = x.find(';', i);
      const std::string entity = x.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" && entity != "&apos;")
        return "bad entity at " + std::to_string(i);
      i = semi + 1;
      continue;
    }
    if (x[i] != '<') {
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool in_quote = false;
    while (j < x.size() && (in_quote || x[j] != '>')) {
      if (x[j] == '"') in_quote = !in_quote;
      if (!in_quote && x[j] == '<') return "'<' inside a tag at " + std::to_string(j);
      ++j;
    }
    if (j == x.size()) return "unclosed tag at " + std::to_string(i);
    const std::string tag = x.substr(i + 1, j - i - 1);
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + "> at " + std::to_string(i);
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
    i = j + 1;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

uint32_t be32(const std::string& s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24 | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8 | static_cast<uint8_t>(s[at + 3]);
}

std::span<const uint8_t> bytes_of(const std::string& s, size_t at, size_t n) {
  return {reinterpret_cast<const uint8_t*>(s.data()) + at, n};
}

}  // namespace

TEST_CASE("stats summary: effective experts, top-4 share and hit rate on hand-made statistics") {
  const ExpertPopularity p = popularity_from_stats(hand_made_stats());
  CHECK(p.k == 2);  // inferred: the shares of a layer sum to 2
  CHECK(p.tokens == 10);
  CHECK(p.evidence_tokens == 10);
  CHECK(p.share(0, 1) == doctest::Approx(0.6));
  const LayerSummary l0 = summarize_layer(p, 0, 2);
  CHECK(l0.order == std::vector<int>{0, 1, 2, 3});
  CHECK(l0.effective_experts == doctest::Approx(std::exp(-(0.5 * std::log(0.5) + 0.3 * std::log(0.3) + 0.2 * std::log(0.2)))));
  CHECK(l0.top4_fraction == doctest::Approx(1.0));
  CHECK(l0.hit_rate == doctest::Approx(0.8));
  const LayerSummary l1 = summarize_layer(p, 1, 1);
  CHECK(l1.effective_experts == doctest::Approx(4.0));
  CHECK(l1.hit_rate == doctest::Approx(0.25));

  const std::string text = format_summary(p, "hand.json", {.slots = 2, .top = 3});
  CHECK(text.find("router statistics  hand.json\n") != std::string::npos);
  CHECK(text.find("2 layers x 4 experts, top-2; 10 tokens recorded, 10 tokens of evidence\n") != std::string::npos);
  CHECK(text.find("    0          2.8  100.0%   80.0%    0 100.0%    1 60.0%    2 40.0%\n") != std::string::npos);
  CHECK(text.find("    1          4.0  100.0%   50.0%    0 50.0%    1 50.0%    2 50.0%\n") != std::string::npos);
  CHECK(text.find(" mean          3.4  100.0%   65.0%\n") != std::string::npos);
}

TEST_CASE("stats: a trace counts into plain statistics, one record per (token, layer)") {
  offload::SyntheticTraceParams params;
  params.shape = {3, 8, 2};
  params.tokens = 500;
  const offload::Trace t = offload::generate_synthetic_trace(params);
  const offload::RouterStats s = router_stats_from_trace(t);
  CHECK(s.tokens() == 500);
  for (int l = 0; l < 3; ++l) {
    CHECK(s.routed_tokens(l) == doctest::Approx(500));
    std::vector<double> counts(8);
    for (int64_t tok = 0; tok < t.tokens(); ++tok)
      for (uint16_t id : t.ids(tok, l)) counts[id] += 1;
    for (int e = 0; e < 8; ++e) CHECK(s.count(l, e) == doctest::Approx(counts[static_cast<size_t>(e)]));
  }
}

TEST_CASE("stats heatmap SVG: well-formed, one cell per (layer, expert), escaped title, legend and axes") {
  const ExpertPopularity p = popularity_from_stats(hand_made_stats());
  const std::string svg = render_heatmap_svg(p, {.title = "models/<a&b>", .order = ExpertOrder::ById});
  CHECK(xml_problem(svg) == "");
  CHECK(occurrences(svg, "<rect class=\"cell\"") == 8);
  CHECK(svg.find("models/&lt;a&amp;b&gt;") != std::string::npos);
  CHECK(svg.find("10 tokens of evidence") != std::string::npos);
  CHECK(svg.find(">expert id<") != std::string::npos);
  CHECK(svg.find(">layer<") != std::string::npos);
  CHECK(svg.find("<title>layer 0, expert 1: 60.0% of tokens</title>") != std::string::npos);
  CHECK(svg.find(">100.0%<") != std::string::npos);  // the top of the colour scale: the largest share
  // The hottest cell has the top colour, an unused expert the bottom one.
  CHECK(svg.find("fill=\"" + hex(heat_colour(1)) + "\"><title>layer 0, expert 0:") != std::string::npos);
  CHECK(svg.find("fill=\"" + hex(heat_colour(0)) + "\"><title>layer 0, expert 3:") != std::string::npos);

  // Sorted: in layer 1 (ties) the order is by id; a 120b-sized map has 36 x 128 cells.
  const std::string sorted = render_heatmap_svg(p, {.title = "x", .order = ExpertOrder::ByShare});
  CHECK(xml_problem(sorted) == "");
  CHECK(sorted.find("most popular first") != std::string::npos);
  offload::SyntheticTraceParams params;
  params.shape = {36, 128, 4};
  params.tokens = 200;
  const ExpertPopularity big = popularity_from_stats(router_stats_from_trace(offload::generate_synthetic_trace(params)));
  const std::string big_svg = render_heatmap_svg(big, {.title = "120b", .order = ExpertOrder::ByShare});
  CHECK(xml_problem(big_svg) == "");
  CHECK(occurrences(big_svg, "<rect class=\"cell\"") == 36 * 128);
}

TEST_CASE("stats PNG: signature, IHDR, CRCs, stored zlib blocks inflating to the scanlines, Adler-32") {
  CHECK(crc32(bytes_of("123456789", 0, 9)) == 0xCBF43926u);  // the standard check values
  CHECK(adler32(bytes_of("Wikipedia", 0, 9)) == 0x11E60398u);

  const ExpertPopularity p = popularity_from_stats(hand_made_stats());
  const RgbImage img = render_heatmap_image(p, {.title = "hand", .order = ExpertOrder::ById});
  const std::vector<uint8_t> png_bytes = encode_png(img);
  const std::string png(png_bytes.begin(), png_bytes.end());
  REQUIRE(png.size() > 8);
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));

  std::vector<std::string> types;
  std::string idat, ihdr;
  for (size_t at = 8; at < png.size();) {
    REQUIRE(at + 12 <= png.size());
    const uint32_t len = be32(png, at);
    REQUIRE(at + 12 + len <= png.size());
    const std::string type = png.substr(at + 4, 4);
    types.push_back(type);
    CHECK(be32(png, at + 8 + len) == crc32(bytes_of(png, at + 4, 4 + len)));
    if (type == "IHDR") ihdr = png.substr(at + 8, len);
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
  REQUIRE(ihdr.size() == 13);
  CHECK(be32(ihdr, 0) == static_cast<uint32_t>(img.width));
  CHECK(be32(ihdr, 4) == static_cast<uint32_t>(img.height));
  CHECK(ihdr.substr(8) == std::string("\x08\x02\x00\x00\x00", 5));

  // zlib header, then stored blocks: BFINAL/BTYPE byte, LEN, NLEN, data.
  REQUIRE(idat.size() > 6);
  CHECK((static_cast<uint8_t>(idat[0]) * 256 + static_cast<uint8_t>(idat[1])) % 31 == 0);
  CHECK((static_cast<uint8_t>(idat[0]) & 0x0F) == 8);  // deflate
  std::string raw;
  size_t at = 2;
  for (bool last = false; !last;) {
    REQUIRE(at + 5 <= idat.size());
    const uint8_t header = static_cast<uint8_t>(idat[at]);
    last = header & 1;
    CHECK((header >> 1 & 3) == 0);  // stored
    const unsigned len = static_cast<uint8_t>(idat[at + 1]) | static_cast<uint8_t>(idat[at + 2]) << 8;
    const unsigned nlen = static_cast<uint8_t>(idat[at + 3]) | static_cast<uint8_t>(idat[at + 4]) << 8;
    CHECK((len ^ 0xFFFF) == nlen);
    REQUIRE(at + 5 + len <= idat.size());
    raw += idat.substr(at + 5, len);
    at += 5 + len;
  }
  REQUIRE(at + 4 == idat.size());
  CHECK(be32(idat, at) == adler32(bytes_of(raw, 0, raw.size())));
  const size_t row = 1 + 3 * static_cast<size_t>(img.width);
  REQUIRE(raw.size() == row * static_cast<size_t>(img.height));
  CHECK(raw.size() > 65535);  // more than one block
  for (int y = 0; y < img.height; ++y) {
    CHECK(raw[y * row] == 0);  // filter: none
    const auto scanline = bytes_of(raw, y * row + 1, row - 1);
    CHECK(std::equal(scanline.begin(), scanline.end(), img.pixels.begin() + static_cast<ptrdiff_t>(y * (row - 1))));
  }
  // The hottest cell (layer 0, expert 0) has the top colour.
  const HeatmapLayout g = layout_heatmap(p);
  const size_t centre = (static_cast<size_t>(g.top + g.cell_h / 2) * img.width + g.left + g.cell_w / 2) * 3;
  const Rgb top = heat_colour(1);
  CHECK(img.pixels[centre] == top.r);
  CHECK(img.pixels[centre + 1] == top.g);
  CHECK(img.pixels[centre + 2] == top.b);
}

TEST_CASE("ossrun stats: summary and images from a statistics file and from a trace; clear errors without them") {
  test::TempDir dir("ossrun-stats");
  const std::filesystem::path stats_file = dir / "stats.json";
  offload::save_router_stats(stats_file, hand_made_stats());
  Run r = run_ossrun("stats --stats '" + stats_file.string() + "' --slots 2 --svg '" + (dir / "h.svg").string() + "' --png '" +
                     (dir / "h.png").string() + "'");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("    0          2.8  100.0%   80.0%    0 100.0%    1 60.0%") != std::string::npos);
  CHECK(occurrences(read_file(dir / "h.svg"), "<rect class=\"cell\"") == 8);
  CHECK(read_file(dir / "h.png").substr(1, 3) == "PNG");

  // A model directory without statistics: exit 3, and how to get some.
  const std::filesystem::path model = dir / "model";
  test::write_tiny_checkpoint(model, ExpertFormat::MXFP4, 3);
  r = run_ossrun("stats --model '" + model.string() + "'");
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("no router statistics for " + model.string()) != std::string::npos);
  CHECK(r.out.find("ossrun simulate --synthetic --layers 3 --experts 8 --k 4 ") != std::string::npos);
  CHECK(r.out.find("--from-trace routing.trace") != std::string::npos);

  // Its saved statistics, once there (tiny: 3 layers x 8 experts, top-4); a trace of another shape is refused.
  offload::SyntheticTraceParams params;
  params.shape = {3, 8, 2};
  offload::write_trace(dir / "k2.trace", offload::generate_synthetic_trace(params));
  r = run_ossrun("stats --model '" + model.string() + "' --from-trace '" + (dir / "k2.trace").string() + "'");
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("k2.trace: a trace of 3 layers x 8 experts, top-2, but ") != std::string::npos);
  params.shape = {3, 8, 4};
  params.tokens = 300;
  offload::write_trace(dir / "t.trace", offload::generate_synthetic_trace(params));
  r = run_ossrun("stats --model '" + model.string() + "' --from-trace '" + (dir / "t.trace").string() + "' --save-stats '" +
                 offload::model_dir_stats_path(model).string() + "'");
  CHECK(r.exit_code == 0);
  r = run_ossrun("stats --model '" + model.string() + "' --sort --svg '" + (dir / "m.svg").string() + "'");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("3 layers x 8 experts, top-4; 300 tokens recorded") != std::string::npos);
  CHECK(occurrences(read_file(dir / "m.svg"), "<rect class=\"cell\"") == 24);

  // Missing, corrupt and mis-shaped files.
  r = run_ossrun("stats --stats /nonexistent/stats.json");
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("/nonexistent/stats.json: cannot open") != std::string::npos);
  std::ofstream(dir / "corrupt.json") << "{\"format\": \"ossrun router statistics\", \"layers\": 2,";
  r = run_ossrun("stats --stats '" + (dir / "corrupt.json").string() + "'");
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("corrupt.json: not valid JSON") != std::string::npos);
  std::ofstream(dir / "other.json") << "{\"layers\": 2, \"experts\": 4}";
  r = run_ossrun("stats --stats '" + (dir / "other.json").string() + "'");
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("other.json: ") != std::string::npos);
  r = run_ossrun("stats --model '" + model.string() + "' --stats '" + stats_file.string() + "'");  // 2x4 file, 3x8 model
  CHECK(r.exit_code == 3);
  CHECK(r.out.find(stats_file.string() + ": ") != std::string::npos);
}
