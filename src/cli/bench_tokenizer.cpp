// `ossrun bench tokenizer`: single-thread encode throughput (MB/s of UTF-8 input) on English prose, on mixed
// multilingual text and on two pathological inputs, beside
//   - the pre-tokenizer alone (the ceiling for encode with this splitter) and the PCRE2 regex alone, and
//   - the peer (gpt-tokenizer via node, same text, same machine), when node and the package are there.
// Figures are per CPU second of the measuring thread (ours) or process (the peer), so a busy machine skews them
// less; wall-clock figures follow in brackets. Each is the best of --reps runs; the peer's merge cache is warm
// after its first run (its first run is shown too), ours has none. The texts are small files repeated, which
// favours the peer's cache more than anything of ours.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>
#include <sstream>
#include <string>
#include <vector>

#include "src/cli/bench_command.h"
#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/pretokenizer.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun::cli {
namespace {

struct BenchOptions {
  std::string model_dir;
  std::string tiktoken_file;
  std::vector<std::string> english = {"tests/tokenizer/corpus/english_prose.txt"};
  std::vector<std::string> multilingual = {"tests/tokenizer/corpus/scripts.txt", "tests/tokenizer/corpus/emoji_marks.txt",
                                           "tests/tokenizer/corpus/english_prose.txt",
                                           "tests/tokenizer/corpus/code.txt"};
  double megabytes = 4;
  int reps = 5;
  bool peer = true;
};

// The peer's side, written to a temporary file and run by node: encodes the file's text `reps` times.
constexpr const char* kPeerScript = R"(
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
const [pkg, file, reps] = process.argv.slice(2);
const { encode } = await import(pathToFileURL(path.join(pkg, 'esm/encoding/o200k_harmony.js')).href);
const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(fs.readFileSync(file));
let bestCpu = Infinity, bestWall = Infinity, firstCpu = 0, tokens = 0;
for (let r = 0; r < Number(reps); r++) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  tokens = encode(text, { disallowedSpecial: new Set() }).length;
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  if (r === 0) firstCpu = cpu;
  bestCpu = Math.min(bestCpu, cpu);
  bestWall = Math.min(bestWall, wall);
}
console.log(JSON.stringify({ tokens, first_cpu_s: firstCpu, best_cpu_s: bestCpu, best_wall_s: bestWall }));
)";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path + " (run from the repository root, or pass the text files)");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The files joined and repeated until the text reaches `megabytes`.
std::string build_text(const std::vector<std::string>& files, double megabytes) {
  std::string unit;
  for (const auto& f : files) unit += read_file(f) + "\n";
  std::string text;
  while (text.size() < megabytes * 1e6) text += unit;
  return text;
}

struct Seconds {
  double cpu = 1e30, wall = 1e30;
};

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

// The best CPU and the best wall-clock time over `reps` runs.
template <class Fn>
Seconds best_seconds(int reps, Fn&& fn) {
  Seconds best;
  for (int r = 0; r < reps; ++r) {
    double cpu0 = thread_cpu_seconds();
    auto wall0 = std::chrono::steady_clock::now();
    fn();
    best.wall = std::min(best.wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
    best.cpu = std::min(best.cpu, thread_cpu_seconds() - cpu0);
  }
  return best;
}

struct PeerResult {
  bool ok = false;
  size_t tokens = 0;
  double first_cpu_s = 0, best_cpu_s = 0, best_wall_s = 0;
  std::string note;
};

PeerResult run_peer(const std::string& text, int reps, int timeout_s) {
  PeerResult r;
  std::filesystem::path package;
  try {
    package = peer_package_dir();
  } catch (const InputError& e) {
    r.note = e.what();
    return r;
  }
  auto dir = std::filesystem::temp_directory_path() / ("ossrun-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bench.mjs") << kPeerScript;
  std::ofstream(dir / "text.txt", std::ios::binary) << text;
  std::string cmd = "timeout " + std::to_string(timeout_s) + " node '" + (dir / "bench.mjs").string() + "' '" +
                    package.string() + "' '" + (dir / "text.txt").string() + "' " + std::to_string(reps) + " > '" +
                    (dir / "out.json").string() + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::string out = read_file((dir / "out.json").string());
  std::filesystem::remove_all(dir);
  if (rc != 0) {
    r.note = WEXITSTATUS(rc) == 124 ? "did not finish in " + std::to_string(timeout_s) + " s" : "node failed: " + out;
    return r;
  }
  auto j = nlohmann::json::parse(out);
  r.ok = true;
  r.tokens = j["tokens"].get<size_t>();
  r.first_cpu_s = j["first_cpu_s"].get<double>();
  r.best_cpu_s = j["best_cpu_s"].get<double>();
  r.best_wall_s = j["best_wall_s"].get<double>();
  return r;
}

void bench_text(const Tokenizer& tokenizer, const O200kRegex& regex, const std::string& name, const std::string& text,
                const BenchOptions& o, int peer_timeout_s) {
  const double mb = text.size() / 1e6;
  size_t tokens = 0;
  Seconds encode = best_seconds(o.reps, [&] { tokens = tokenizer.encode(text).size(); });
  Seconds split = best_seconds(o.reps, [&] {
    for (size_t pos = 0; pos < text.size();) pos = next_o200k_piece(text, pos);
  });
  Seconds pcre2 = best_seconds(std::min(o.reps, 2), [&] {
    for (size_t pos = 0; pos < text.size();) pos = regex.next_piece(text, pos);
  });
  std::printf("%s: %.2f MB, %zu tokens\n", name.c_str(), mb, tokens);
  std::printf("  ours  encode %7.1f [%7.1f] | pre-tokenizer alone %7.1f [%7.1f] | PCRE2 regex alone %6.1f [%6.1f]\n",
              mb / encode.cpu, mb / encode.wall, mb / split.cpu, mb / split.wall, mb / pcre2.cpu, mb / pcre2.wall);
  if (!o.peer) return;
  PeerResult peer = run_peer(text, o.reps, peer_timeout_s);
  if (!peer.ok) {
    std::printf("  peer  %s\n", peer.note.c_str());
    return;
  }
  std::string count = peer.tokens == tokens ? "same token count" : "DIFFERENT token count: " + std::to_string(peer.tokens);
  std::printf("  peer  encode %7.1f [%7.1f] (first run %.1f) | ours / peer %.1fx | %s\n", mb / peer.best_cpu_s,
              mb / peer.best_wall_s, mb / peer.first_cpu_s, peer.best_cpu_s / encode.cpu, count.c_str());
}

void run(const BenchOptions& o) {
  const Tokenizer tokenizer = o.tiktoken_file.empty() && !o.model_dir.empty()
                                  ? Tokenizer::from_model_dir(o.model_dir)
                                  : Tokenizer::from_tiktoken(o.tiktoken_file.empty() ? default_tiktoken_path().string()
                                                                                     : o.tiktoken_file);
  const O200kRegex regex;
  std::printf("single thread; MB/s of UTF-8 input per CPU second [per wall-clock second], best of %d runs\n", o.reps);
  bench_text(tokenizer, regex, "English prose", build_text(o.english, o.megabytes), o, 300);
  bench_text(tokenizer, regex, "mixed multilingual", build_text(o.multilingual, o.megabytes), o, 300);
  // Pathological: one piece of 1 MB. The peer's merge loop is quadratic, so it gets 64 KB and one run.
  const size_t mb = 1 << 20;
  BenchOptions once = o;
  once.peer = false;
  bench_text(tokenizer, regex, "1 MB of 'a'", std::string(mb, 'a'), once, 0);
  std::string no_space;
  while (no_space.size() < mb) no_space += "Pneumonoultramicroscopicsilicovolcanoconiosis,\xE4\xB8\xAD\xE6\x96\x87";
  bench_text(tokenizer, regex, "1 MB without white space", no_space, once, 0);
  if (o.peer) {
    PeerResult peer = run_peer(std::string(64 * 1024, 'a'), 1, 120);
    if (peer.ok)
      std::printf("  peer  64 KB of 'a': %.2f CPU s (first run; its merge loop is quadratic in the piece length)\n",
                  peer.first_cpu_s);
    else
      std::printf("  peer  64 KB of 'a': %s\n", peer.note.c_str());
  }
}

}  // namespace

void add_bench_tokenizer(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("tokenizer", "Encode throughput (MB/s) beside the pre-tokenizer alone and the peer");
  auto o = std::make_shared<BenchOptions>();
  auto* model = cmd->add_option("--model", o->model_dir, "Checkpoint directory holding tokenizer.json");
  cmd->add_option("--tiktoken", o->tiktoken_file, "tiktoken rank file (default: the peer package's o200k_base)")
      ->excludes(model);
  cmd->add_option("--english", o->english, "English prose file(s)")->capture_default_str();
  cmd->add_option("--multilingual", o->multilingual, "Mixed multilingual file(s)")->capture_default_str();
  cmd->add_option("--mb", o->megabytes, "Repeat the text to this many MB")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Runs per figure (the best is shown)")->capture_default_str()->check(
      CLI::Range(1, 100));
  cmd->add_flag("!--no-peer", o->peer, "Skip the peer (node) measurements");
  cmd->footer("Run from the repository root (the default texts are the test corpus).\nExamples:\n  ossrun bench tokenizer\n"
              "  ossrun bench tokenizer --model ~/models/gpt-oss-20b --no-peer --mb 8");
  cmd->callback([o] { run(*o); });
}

}  // namespace ossrun::cli
