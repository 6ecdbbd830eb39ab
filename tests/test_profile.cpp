// Hardware profiles (configs/*.toml): every shipped one parses; flags given on the command line override the
// profile; unknown keys, wrong types, bad sizes and missing files are errors naming the file, line and key.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/cli/profile.h"
#include "src/cli/session_flags.h"
#include "src/model/error.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using namespace ossrun::cli;

namespace {

// The message of the InputError that f throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

std::string write_file(const test::TempDir& dir, const std::string& name, const std::string& text) {
  const std::filesystem::path p = dir / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

// Parses argv for a command with the session flags and returns the resolved settings.
Profile resolve(std::vector<std::string> args) {
  CLI::App app;
  SessionFlags f;
  add_session_flags(app, f, "context");
  args.insert(args.begin(), "ossrun");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return resolve_session(f);
}

}  // namespace

TEST_CASE("profile: every shipped profile parses, sets its budgets and chat defaults, and is found by name") {
  const std::vector<std::string> names = {"laptop-8gb", "desktop-12gb", "workstation-24gb", "gpu-80gb", "cpu-only"};
  for (const std::string& name : names) {
    CAPTURE(name);
    const std::filesystem::path file = find_profile(name);
    CHECK(file.filename() == name + ".toml");
    const Profile p = load_profile(name);
    CHECK(p.source == file.string());
    CHECK(p.session.vram.has_value());
    CHECK(p.session.ctx.has_value());
    CHECK(p.session.policy.has_value());
    CHECK(p.session.backend.has_value());
    CHECK(p.session.prefill_batch.has_value());
    CHECK(p.chat.temperature.has_value());
    CHECK(p.chat.top_p.has_value());
    CHECK(p.chat.effort.has_value());
    CHECK(p.chat.reasoning.has_value());
  }
  const Profile laptop = load_profile("laptop-8gb");
  CHECK(*laptop.session.vram == 6ull << 30);
  CHECK(*laptop.session.ram == 10ull << 30);
  CHECK(*load_profile("cpu-only").session.vram == 0);
  CHECK(*load_profile("cpu-only").session.backend == "cpu");
  const std::vector<std::string> available = available_profiles();
  for (const std::string& name : names) CHECK(std::find(available.begin(), available.end(), name) != available.end());
}

TEST_CASE("profile: values of every type, sizes as strings or bytes, [chat] table") {
  const Profile p = parse_profile(R"(
vram = "1.5G"
ram = 1048576
ctx = 2048
threads = 3
policy = "lfu"
backend = "gpu"
prefill_batch = 64
[chat]
temperature = 0   # an integer is a number too
top_p = 0.9
effort = "high"
reasoning = true
)", "inline.toml");
  CHECK(*p.session.vram == 1610612736ull);
  CHECK(*p.session.ram == 1048576ull);
  CHECK(*p.session.ctx == 2048);
  CHECK(*p.session.threads == 3);
  CHECK(*p.session.policy == "lfu");
  CHECK(*p.session.backend == "gpu");
  CHECK(*p.session.prefill_batch == 64);
  CHECK(*p.chat.temperature == 0.0);
  CHECK(*p.chat.top_p == doctest::Approx(0.9));
  CHECK(*p.chat.effort == "high");
  CHECK(*p.chat.reasoning == true);
  // Keys left out stay unset.
  const Profile empty = parse_profile("ctx = 5\n", "x.toml");
  CHECK_FALSE(empty.session.vram.has_value());
  CHECK_FALSE(empty.chat.temperature.has_value());
}

TEST_CASE("profile: flags given on the command line override the profile, defaults do not") {
  test::TempDir dir("ossrun-profile");
  const std::string file = write_file(dir, "p.toml", "vram = \"6G\"\nram = \"10G\"\nctx = 8192\nthreads = 4\npolicy = \"lfu\"\n"
                                                     "[chat]\ntemperature = 0.5\n");
  Profile p = resolve({"--model", "m", "--profile", file});
  CHECK(*p.session.vram == 6ull << 30);
  CHECK(*p.session.ctx == 8192);
  CHECK(*p.session.threads == 4);
  CHECK(*p.session.policy == "lfu");  // the flag's default ("router") does not override
  CHECK(*p.chat.temperature == 0.5);

  p = resolve({"--model", "m", "--profile", file, "--vram", "7G", "--ctx", "100", "--threads", "0", "--policy", "router",
               "--backend", "cpu"});
  CHECK(*p.session.vram == 7ull << 30);
  CHECK(*p.session.ram == 10ull << 30);  // not given: the profile's
  CHECK(*p.session.ctx == 100);
  CHECK(*p.session.threads == 0);
  CHECK(*p.session.policy == "router");
  CHECK(*p.session.backend == "cpu");

  // Without a profile, only the given flags are set.
  p = resolve({"--model", "m", "--ram", "2G"});
  CHECK(p.source.empty());
  CHECK_FALSE(p.session.vram.has_value());
  CHECK(*p.session.ram == 2ull << 30);
  CHECK(error_of([] { resolve({"--model", "m", "--vram", "lots"}); }).find("--vram") != std::string::npos);
}

TEST_CASE("profile: session options from the settings; vram 0 means CPU only") {
  ModelConfig c;
  c.max_position_embeddings = 4096;
  SessionSettings s;
  engine::SessionOptions o = session_options(s, c, 100000);
  CHECK(o.ctx == 4096);  // the command's default, capped
  CHECK(o.backend == engine::Backend::Auto);
  CHECK(o.policy == "router");
  s.vram = 0;
  s.ram = 123;
  s.ctx = 77;
  s.prefill_batch = 9;
  o = session_options(s, c, 100000);
  CHECK(o.backend == engine::Backend::Cpu);
  CHECK(o.ram_budget == 123);
  CHECK(o.ctx == 77);
  CHECK(o.prefill_batch == 9);
  s.backend = "gpu";
  CHECK(error_of([&] { session_options(s, c, 1); }) == "--vram 0 leaves no GPU memory for --backend gpu");
}

TEST_CASE("profile: bad files are rejected with the file, line and key") {
  test::TempDir dir("ossrun-profile");
  auto check_error = [&](const std::string& text, const std::string& want) {
    CAPTURE(text);
    const std::string file = write_file(dir, "bad.toml", text);
    const std::string got = error_of([&] { load_profile(file); });
    CHECK(got == file + want);
  };
  check_error("ctx = 8\nvramm = \"6G\"\n",
              ":2: unknown key \"vramm\" (known: backend, ctx, policy, prefill_batch, ram, threads, vram, [chat])");
  check_error("[chat]\ntemperature = 1\ncolour = \"red\"\n",
              ":3: unknown key \"chat.colour\" (known: effort, reasoning, temperature, top_p)");
  check_error("[gpu]\nx = 1\n", ":1: unknown table [gpu] (known: [chat])");
  check_error("\nctx = \"8192\"\n", ":2: ctx: expected an integer >= 1, found string \"8192\"");
  check_error("threads = -1\n", ":1: threads: expected an integer >= 0, found integer -1");
  check_error("vram = true\n", ":1: vram: expected a size such as \"6G\" or \"512M\" (or an integer number of bytes), found boolean true");
  check_error("policy = \"fifo\"\n", ":1: policy: expected one of static, lru, lfu, router, found string \"fifo\"");
  check_error("[chat]\nreasoning = \"yes\"\n", ":2: chat.reasoning: expected true or false, found string \"yes\"");
  check_error("[chat]\ntop_p = 1.5\n", ":2: chat.top_p: expected a number in (0, 1], found float 1.5");
  check_error("[chat]\neffort = 3\n", ":2: chat.effort: expected one of low, medium, high, found integer 3");
  // A bad size: the byte-size parser's message, prefixed with the file and line.
  const std::string file = write_file(dir, "bad.toml", "ctx = 1\n\nram = \"12 parsecs\"\n");
  const std::string got = error_of([&] { load_profile(file); });
  CHECK(got.rfind(file + ":3: ", 0) == 0);
  CHECK(got.find("ram") != std::string::npos);
  CHECK(got.find("12 parsecs") != std::string::npos);
  // Not TOML at all.
  const std::string broken = write_file(dir, "broken.toml", "ctx = 1\nvram = \"6G\n");
  CHECK(error_of([&] { load_profile(broken); }).rfind(broken + ":2: not valid TOML: ", 0) == 0);
}

TEST_CASE("profile: a missing file or unknown name is an error saying where it looked") {
  CHECK(error_of([] { load_profile("/nonexistent/p.toml"); }) ==
        "/nonexistent/p.toml: cannot open the profile (no such file, or unreadable)");
  const std::string e = error_of([] { load_profile("no-such-profile"); });
  CHECK(e.rfind("--profile no-such-profile: no such profile (looked in ", 0) == 0);
  CHECK(e.find("configs") != std::string::npos);
  CHECK(e.find("laptop-8gb") != std::string::npos);  // the available ones are listed
}
