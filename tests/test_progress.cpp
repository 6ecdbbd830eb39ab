// Loading progress: the bar line (a pure function of bytes, time and width), the plain lines, and the
// reporter's pacing (redraws at most 10 times a second, one plain line per stage, nothing when quiet).
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "src/cli/progress.h"

using namespace ossrun::cli;

namespace {

constexpr uint64_t kMiB = 1 << 20;

// What a reporter wrote into a memory stream, driven by a clock the test moves.
struct Captured {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buf, &size);
  double now_s = 0;
  ~Captured() {
    std::fclose(f);
    std::free(buf);
  }
  std::string text() {
    std::fflush(f);
    return std::string(buf, size);
  }
  std::function<ProgressReporter::Clock::time_point()> clock() {
    return [this] {
      return ProgressReporter::Clock::time_point(std::chrono::duration_cast<ProgressReporter::Clock::duration>(
          std::chrono::duration<double>(now_s)));
    };
  }
};

int count(const std::string& s, char c) { return static_cast<int>(std::count(s.begin(), s.end(), c)); }

}  // namespace

TEST_CASE("progress: the bar line shows the stage, a bar, percent, sizes, rate and ETA in exactly the width") {
  const std::string line = format_progress_bar("uploading dense weights", 512 * kMiB, 2048 * kMiB, 2.0, 100);
  CHECK(line.size() == 100);
  CHECK(line.rfind("uploading dense weights [", 0) == 0);
  CHECK(line.find(" 25%  512 MiB/2.00 GiB  268 MB/s  ETA 0:06") != std::string::npos);
  const size_t open = line.find('['), close = line.find(']');
  const std::string bar = line.substr(open + 1, close - open - 1);
  CHECK(count(bar, '=') == static_cast<int>(bar.size()) / 4);  // a quarter filled
  CHECK(bar[bar.size() / 4] == '>');

  // Done: full bar, 100%, ETA 0:00.
  const std::string done = format_progress_bar("mapping", 3 * kMiB, 3 * kMiB, 0.5, 80);
  CHECK(done.size() == 80);
  CHECK(done.find("100%") != std::string::npos);
  CHECK(done.find("ETA 0:00") != std::string::npos);
  CHECK(done.find('>') == std::string::npos);
  CHECK(done.find("6 MB/s") != std::string::npos);  // 3 MiB in 0.5 s = 6.29 MB/s

  // No time or no bytes yet: no rate, no ETA; done past total is clamped.
  CHECK(format_progress_bar("x", 0, 100, 0, 60).find("--  ETA --") != std::string::npos);
  CHECK(format_progress_bar("x", 200, 100, 1, 60).find("100%") != std::string::npos);
  CHECK(format_progress_bar("x", 0, 0, 1, 60).find("100%") != std::string::npos);  // nothing to do is done

  // Long hours and GB/s.
  CHECK(format_progress_bar("x", 1000, 4000000, 1, 120).find("ETA 1:06:39") != std::string::npos);
  CHECK(format_rate(3'100'000'000ull, 1.0) == "3.1 GB/s");
  CHECK(format_rate(850'000'000ull, 1.0) == "850 MB/s");
  CHECK(format_rate(1, 0) == "--");
}

TEST_CASE("progress: narrow terminals shorten the name, then drop the sizes; never wider than asked") {
  const std::string name = "uploading the experts of layer 17 to the GPU";
  for (int width : {50, 60, 72, 90, 200}) {
    CAPTURE(width);
    const std::string line = format_progress_bar(name, 10 * kMiB, 40 * kMiB, 1, width);
    CHECK(static_cast<int>(line.size()) == width);
    CHECK(line.find("25%") != std::string::npos);
    CHECK(line.find("ETA 0:03") != std::string::npos);
    CHECK(line.find('[') != std::string::npos);
    CHECK(line.find(']') - line.find('[') > 10);  // at least the minimum bar
  }
  CHECK(format_progress_bar(name, 10 * kMiB, 40 * kMiB, 1, 200).rfind(name + " [", 0) == 0);
  CHECK(format_progress_bar(name, 10 * kMiB, 40 * kMiB, 1, 72).find("...") != std::string::npos);
  CHECK(format_progress_bar(name, 10 * kMiB, 40 * kMiB, 1, 50).find("MiB") == std::string::npos);
  CHECK(format_progress_bar(name, 1, 2, 1, 10).size() == 50);  // too narrow: the minimum width
}

TEST_CASE("progress: the plain line of a finished stage") {
  CHECK(format_progress_line("uploading dense weights", 2 * kMiB, 0.25) == "uploading dense weights: 2.00 MiB in 0.25 s (8 MB/s)");
}

TEST_CASE("progress: a bar is redrawn at most 10 times a second, plain lines once per stage, quiet prints nothing") {
  {
    Captured c;
    ProgressReporter r(ProgressMode::Bar, c.f, 60, c.clock());
    for (int i = 1; i <= 100; ++i) {  // 100 updates over 0.99 s
      c.now_s = i * 0.01;
      r.update({.what = "a", .done = static_cast<uint64_t>(i), .total = 200});
    }
    const int redraws = count(c.text(), '\r');
    CHECK(redraws >= 9);
    CHECK(redraws <= 11);
    CHECK(count(c.text(), '\n') == 0);
    r.update({.what = "a", .done = 200, .total = 200});  // the last update always draws
    CHECK(c.text().find("100%") != std::string::npos);
    r.finish();
    CHECK(count(c.text(), '\n') == 1);
  }
  {
    Captured c;
    ProgressReporter r(ProgressMode::Lines, c.f, 60, c.clock());
    for (int i = 1; i <= 50; ++i) {
      c.now_s = i * 0.01;
      r.update({.what = "mapping", .done = static_cast<uint64_t>(i) * kMiB, .total = 50 * kMiB});
    }
    for (int i = 1; i <= 50; ++i) r.update({.what = "uploading", .done = static_cast<uint64_t>(i), .total = 50});
    r.finish();
    r.finish();  // a second finish adds nothing
    const std::string text = c.text();
    CHECK(count(text, '\n') == 2);
    CHECK(text.rfind("mapping: 50.0 MiB in 0.49 s (", 0) == 0);
    CHECK(text.find("\nuploading: 50 B in ") != std::string::npos);
  }
  {
    Captured c;
    ProgressReporter r(ProgressMode::Off, c.f, 60, c.clock());
    r.update({.what = "a", .done = 1, .total = 2});
    r.finish();
    CHECK(c.text().empty());
  }
  CHECK(progress_mode(/*quiet=*/true) == ProgressMode::Off);
}
