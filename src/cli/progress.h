// Loading progress on stderr, fed by engine::SessionOptions::on_progress.
//
// On a terminal: one bar redrawn in place at most 10 times a second,
//   uploading dense weights [=========>          ]  45%  1.20 GiB/2.66 GiB  3.1 GB/s  ETA 0:01
// Otherwise (a pipe, a log file): one line per stage, when it ends (or when the next begins),
//   uploading dense weights: 2.66 GiB in 0.86 s (3.3 GB/s)
// With --quiet: nothing.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "src/engine/session.h"

namespace ossrun::cli {

// The bar line for `done` of `total` bytes of `what` after `elapsed_s` seconds, exactly `width` columns
// (the name is shortened, then the sizes dropped, when it does not fit; at least 50 columns). Rate and ETA read "--" until
// some bytes have moved in measurable time.
std::string format_progress_bar(const std::string& what, uint64_t done, uint64_t total, double elapsed_s, int width);
// The plain line for a stage that moved `bytes` in `elapsed_s` seconds.
std::string format_progress_line(const std::string& what, uint64_t bytes, double elapsed_s);
// "850 MB/s", "3.1 GB/s" (decimal units, like every bandwidth ossrun prints); "--" for no time.
std::string format_rate(uint64_t bytes, double seconds);

enum class ProgressMode { Off, Lines, Bar };
// Off with quiet; Bar when stderr is a terminal; Lines otherwise.
ProgressMode progress_mode(bool quiet);

class ProgressReporter {
 public:
  using Clock = std::chrono::steady_clock;
  // width 0: the terminal's columns (80 when unknown). now: the clock (tests pass their own).
  explicit ProgressReporter(ProgressMode mode, std::FILE* out = stderr, int width = 0,
                            std::function<Clock::time_point()> now = Clock::now);
  ~ProgressReporter() { finish(); }
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void update(const engine::LoadProgress& p);
  // Ends the current stage (its line, or the bar's final state and a newline).
  void finish();

 private:
  void end_stage();

  ProgressMode mode_;
  std::FILE* out_;
  int width_;
  std::function<Clock::time_point()> now_;
  std::string what_;             // the current stage; empty: none
  uint64_t done_ = 0, total_ = 0;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;           // the bar of this stage is on screen
};

}  // namespace ossrun::cli
