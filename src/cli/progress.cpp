#include "src/cli/progress.h"

#include <algorithm>
#include <cmath>
#include <sys/ioctl.h>
#include <unistd.h>

#include "offload/byte_size.h"

namespace ossrun::cli {
namespace {

constexpr double kRedrawSeconds = 0.1;  // at most 10 bars a second
constexpr int kMinWidth = 50;
constexpr int kMinBar = 10;

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

int terminal_columns(std::FILE* out) {
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

std::string format_rate(uint64_t bytes, double seconds) {
  if (!(seconds > 0) || bytes == 0) return "--";
  const double mb_s = static_cast<double>(bytes) / seconds * 1e-6;
  char buf[32];
  if (mb_s >= 1000)
    std::snprintf(buf, sizeof buf, "%.1f GB/s", mb_s * 1e-3);
  else
    std::snprintf(buf, sizeof buf, "%.0f MB/s", mb_s);
  return buf;
}

std::string format_progress_bar(const std::string& what, uint64_t done, uint64_t total, double elapsed_s, int width) {
  width = std::max(width, kMinWidth);
  done = std::min(done, total);
  const double fraction = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const bool measurable = elapsed_s > 0 && done > 0;
  const double eta = measurable ? elapsed_s * static_cast<double>(total - done) / static_cast<double>(done) : -1;
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(fraction * 100));
  const std::string rate_eta = "  " + format_rate(done, elapsed_s) + "  ETA " + format_eta(eta);
  std::string suffix = std::string(" ") + pct + "  " + offload::format_bytes(done) + "/" + offload::format_bytes(total) + rate_eta;
  if (width - static_cast<int>(suffix.size()) - 2 < kMinBar) suffix = std::string(" ") + pct + rate_eta;  // narrow: no sizes

  // name + " [" + bar + "]" + suffix fills the width; the name gives way to a bar of kMinBar columns.
  const int name_room = width - static_cast<int>(suffix.size()) - 3 - kMinBar;
  std::string name = what;
  if (static_cast<int>(name.size()) > name_room) name = name_room >= 4 ? name.substr(0, static_cast<size_t>(name_room - 3)) + "..." : "";
  std::string line = name + (name.empty() ? "[" : " [");
  const int bar = std::max(1, width - static_cast<int>(line.size()) - 1 - static_cast<int>(suffix.size()));
  const int filled = static_cast<int>(fraction * bar);
  for (int i = 0; i < bar; ++i) line += i < filled ? '=' : (i == filled ? '>' : ' ');
  line += "]" + suffix;
  line.resize(static_cast<size_t>(width), ' ');
  return line;
}

std::string format_progress_line(const std::string& what, uint64_t bytes, double elapsed_s) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f s", elapsed_s);
  return what + ": " + offload::format_bytes(bytes) + " in " + secs + " (" + format_rate(bytes, elapsed_s) + ")";
}

ProgressMode progress_mode(bool quiet) {
  if (quiet) return ProgressMode::Off;
  return isatty(fileno(stderr)) ? ProgressMode::Bar : ProgressMode::Lines;
}

ProgressReporter::ProgressReporter(ProgressMode mode, std::FILE* out, int width, std::function<Clock::time_point()> now)
    : mode_(mode), out_(out), width_(width > 0 ? width : terminal_columns(out) - 1), now_(std::move(now)) {}

void ProgressReporter::update(const engine::LoadProgress& p) {
  if (mode_ == ProgressMode::Off) return;
  const Clock::time_point t = now_();
  if (p.what != what_) {
    end_stage();
    what_ = p.what;
    start_ = t;
    drawn_ = false;
  }
  done_ = p.done;
  total_ = p.total;
  if (mode_ != ProgressMode::Bar) return;
  const bool complete = done_ >= total_;
  if (drawn_ && !complete && std::chrono::duration<double>(t - last_draw_).count() < kRedrawSeconds) return;
  const double elapsed = std::chrono::duration<double>(t - start_).count();
  std::fprintf(out_, "\r%s", format_progress_bar(what_, done_, total_, elapsed, width_).c_str());
  std::fflush(out_);
  last_draw_ = t;
  drawn_ = true;
}

void ProgressReporter::end_stage() {
  if (what_.empty()) return;
  const double elapsed = std::chrono::duration<double>(now_() - start_).count();
  if (mode_ == ProgressMode::Bar) {
    std::fprintf(out_, "\r%s\n", format_progress_bar(what_, done_, total_, elapsed, width_).c_str());
  } else if (mode_ == ProgressMode::Lines) {
    std::fprintf(out_, "%s\n", format_progress_line(what_, done_, elapsed).c_str());
  }
  std::fflush(out_);
  what_.clear();
}

void ProgressReporter::finish() {
  if (mode_ != ProgressMode::Off) end_stage();
}

}  // namespace ossrun::cli
