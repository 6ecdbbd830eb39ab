// `ossrun chat` end to end on the tiny-chat synthetic checkpoint (random weights: the answers are random text,
// which the chat streams as plain text since it is not harmony): piped input, exit codes, the context policy,
// KV-cache reuse against a full prefill, and an interactive session driven through tmux.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "src/chat/chat_prompt.h"
#include "src/engine/session.h"
#include "src/model/checkpoint.h"
#include "src/tokenizer/harmony.h"
#include "tests/support/build_paths.h"
#include "tests/support/shell_run.h"
#include "tests/support/temp_dir.h"
#include "tests/test_engine_checkpoints.h"

using namespace ossrun;

namespace {

using Run = test::ShellRun;
Run shell(const std::string& cmd) { return test::shell_run(cmd); }

std::string quote(const std::string& s) { return "'" + s + "'"; }

const std::filesystem::path& chat_checkpoint() {
  static test::TempDir dir("ossrun-chat-model");
  static const bool written = (test::write_text_checkpoint(dir.path(), 41), true);
  (void)written;
  return dir.path();
}

// `printf INPUT | ossrun chat --model DIR ARGS`, stderr to err_file when given (else discarded).
Run chat_piped(const std::string& input, const std::string& args, const std::string& err_file = "") {
  return shell("printf '%s' " + quote(input) + " | OSSRUN_DATA=/nonexistent-ossrun-data " + quote(test::ossrun_binary()) +
               " chat --model " + quote(chat_checkpoint().string()) + " --backend cpu --threads 1 " + args + " 2>" +
               (err_file.empty() ? std::string("/dev/null") : quote(err_file)));
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("ossrun chat piped: answers on stdout, exit 0 at the end of input, the same seed gives the same answers") {
  test::TempDir dir("ossrun-chat");
  const std::string err = (dir / "err.txt").string();
  const Run a = chat_piped("hi\nsecond message\n/effort low\n/stats\n", "--seed 3 --max-tokens 40 --reasoning hide", err);
  REQUIRE(a.exit_code == 0);
  const std::string stderr_text = read_file(err);
  CHECK(stderr_text.starts_with("CPU: "));  // the start-up line says what runs where
  CHECK(stderr_text.find("--max-tokens 40 reached") != std::string::npos);
  CHECK(a.out.find("last answer: prefill ") != std::string::npos);
  CHECK(a.out.find("session: prefill ") != std::string::npos);
  CHECK(a.out.find("expert hit rate: n/a (CPU only)") != std::string::npos);
  CHECK(a.out.find("placement: CPU: ") != std::string::npos);
  CHECK(a.out.find("memory: VRAM 0.0 MiB, RAM ") != std::string::npos);
  CHECK(a.out.find("reasoning effort: low\n") != std::string::npos);
  CHECK(a.out.find("4 messages, effort low") != std::string::npos);  // two user messages, two (cut short) answers
  CHECK(a.out.find("\x1b[") == std::string::npos);       // no escape codes without a terminal
  const size_t stats_at = a.out.find("reasoning effort: low");
  CHECK(stats_at > 20);  // the answers came first
  const Run b = chat_piped("hi\nsecond message\n/stats\n", "--seed 3 --max-tokens 40 --reasoning hide");
  REQUIRE(a.out.size() > stats_at);
  CHECK(b.out.substr(0, stats_at) == a.out.substr(0, stats_at));

  // Unknown commands and bad files are messages, not the end of the chat.
  { std::ofstream(dir / "bad.json") << R"({"format": "ossrun-chat", "version": 1, "messages": [{"role": "bot", "content": "x"}]})"; }
  const Run c = chat_piped("/frob\n/load " + (dir / "bad.json").string() + "\n/quit\nnot read\n", "--seed 1", err);
  CHECK(c.exit_code == 0);
  CHECK(c.out.empty());
  const std::string e = read_file(err);
  CHECK(e.find("unknown command /frob") != std::string::npos);
  CHECK(e.find("messages[0].role: expected \"user\" or \"assistant\", found \"bot\"") != std::string::npos);
}

TEST_CASE("ossrun chat: bad flags exit 2, a missing model exits 3") {
  CHECK(chat_piped("hi\n", "--effort extreme").exit_code == 2);
  CHECK(chat_piped("hi\n", "--reasoning loud").exit_code == 2);
  CHECK(chat_piped("hi\n", "--max-tokens 0").exit_code == 2);
  CHECK(shell("echo hi | " + quote(test::ossrun_binary()) + " chat --model /nonexistent/model 2>/dev/null").exit_code == 3);
  CHECK(chat_piped("hi\n", "--top-p 0").exit_code == 3);  // the sampler's range check
}

TEST_CASE("ossrun chat: a full context drops the oldest turns, a message that cannot fit is refused") {
  test::TempDir dir("ossrun-chat");
  const std::string err = (dir / "err.txt").string();
  std::string input;
  for (int i = 0; i < 6; ++i) input += "message number " + std::to_string(i) + "\n";
  for (int i = 0; i < 300; ++i) input += " lorem";
  input += "\n/stats\n";
  const Run r = chat_piped(input, "--seed 2 --max-tokens 40 --ctx 200 --reasoning hide", err);
  REQUIRE(r.exit_code == 0);
  const std::string e = read_file(err);
  CHECK(e.find("context full: dropped the ") != std::string::npos);
  CHECK(e.find("this message does not fit") != std::string::npos);
  CHECK(r.out.find("of 200 positions used") != std::string::npos);
}

TEST_CASE("ossrun chat: prefilling only the new suffix gives the logits of prefilling the whole prompt") {
  // What the chat does between turns, against a fresh session over the whole extended prompt.
  const auto ck = Checkpoint::open(chat_checkpoint());
  const Tokenizer tok = Tokenizer::from_model_dir(chat_checkpoint());
  const HarmonyRenderer harmony(tok);
  const chat::ChatPromptRenderer renderer(harmony);
  chat::Conversation c;
  c.messages.push_back({.role = Role::kUser, .channel = "", .content = "Hi!", .interrupted = false, .tokens = {}});
  const std::vector<int32_t> first = renderer.render(c, 0, chat::HistoryReasoning::kKeep);
  c.messages.push_back({.role = Role::kAssistant, .channel = "final", .content = "Hello.", .interrupted = false, .tokens = {}});
  c.messages.push_back({.role = Role::kUser, .channel = "", .content = "How are you?", .interrupted = false, .tokens = {}});
  const std::vector<int32_t> second = renderer.render(c, 0, chat::HistoryReasoning::kKeep);
  // The session holds the first prompt and the answer's header and content as the model produced them.
  std::vector<int32_t> held = first;
  const std::vector<int32_t> answer(second.begin() + static_cast<std::ptrdiff_t>(first.size()),
                                    second.begin() + static_cast<std::ptrdiff_t>(first.size()) + 5);
  held.insert(held.end(), answer.begin(), answer.end());
  REQUIRE(chat::reusable_prefix(held, second) == held.size());

  engine::Session reused(*ck, {.ctx = 256, .threads = 1}), full(*ck, {.ctx = 256, .threads = 1});
  reused.prefill(first);
  for (int32_t id : answer) reused.decode(id);
  const std::vector<float> a = [&] {
    const auto l = reused.prefill(std::span(second).subspan(held.size()));
    return std::vector<float>(l.begin(), l.end());
  }();
  const auto b = full.prefill(second);
  CHECK(reused.position() == static_cast<int64_t>(second.size()));
  float worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  CHECK(worst <= 1e-4f * scale);
}

namespace {

// A tmux server of its own (a private socket), killed at the end.
class Tmux {
 public:
  Tmux() : socket_("ossrun-chat-test-" + std::to_string(getpid())) {}
  ~Tmux() { shell("tmux -L " + socket_ + " kill-server 2>/dev/null"); }
  // TERM is set for tmux itself: a test run may have none (ossrun inside sees tmux's own TERM).
  Run cmd(const std::string& args) const { return shell("env TERM=xterm-256color tmux -L " + socket_ + " " + args + " 2>&1"); }
  std::string screen() const { return cmd("capture-pane -p -J -S -200 -t chat").out; }
  void keys(const std::string& k) const { cmd("send-keys -t chat " + k); }
  void type(const std::string& text) const { cmd("send-keys -t chat -l " + quote(text)); keys("Enter"); }
  bool alive() const { return cmd("has-session -t chat").exit_code == 0; }
  // Polls the screen until pred holds (true) or the timeout passes (false; the screen is printed).
  bool wait_for(const std::function<bool(const std::string&)>& pred, double seconds = 20) const {
    const auto t0 = std::chrono::steady_clock::now();
    std::string s;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
      s = screen();
      if (pred(s)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    MESSAGE("screen at the timeout:\n" << s);
    return false;
  }
  bool wait_for_text(const std::string& text, double seconds = 20) const {
    return wait_for([&](const std::string& s) { return s.find(text) != std::string::npos; }, seconds);
  }

 private:
  std::string socket_;
};

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("ossrun chat in a terminal (tmux): streaming, Ctrl-C, /stats, /save, /load, history, /quit") {
  if (shell("command -v tmux >/dev/null 2>&1").exit_code != 0) {
    MESSAGE("SKIPPED: tmux is not installed (tools/setup.sh installs it)");
    return;
  }
  test::TempDir dir("ossrun-chat-tty");
  const std::string model = chat_checkpoint().string();
  const Tmux tmux;
  const std::string command = "env OSSRUN_DATA=" + quote((dir / "data").string()) + " " + quote(test::ossrun_binary()) +
                              " chat --model " + quote(model) + " --backend cpu --threads 1 --seed 7 --max-tokens 100000 --ctx 8192";
  // tmux itself failing to start a server (a sandbox without a usable /tmp or pty) is no verdict on ossrun.
  if (const Run started = tmux.cmd("new-session -d -s chat -x 160 -y 50 " + quote(command)); started.exit_code != 0) {
    MESSAGE("SKIPPED: tmux cannot start a session here: " << started.out);
    return;
  }
  REQUIRE(tmux.wait_for_text("> "));
  REQUIRE(tmux.screen().find("CPU: ") != std::string::npos);

  // A long answer streams: the screen grows while it is generated; Ctrl-C stops it and keeps it.
  tmux.type("hello there");
  REQUIRE(tmux.wait_for([](const std::string& s) {
    const size_t at = s.find("> hello there");
    return at != std::string::npos && s.size() > at + 300;
  }));
  const size_t before = tmux.screen().size();
  REQUIRE(tmux.wait_for([&](const std::string& s) { return s.size() > before + 100; }));
  tmux.keys("C-c");
  REQUIRE(tmux.wait_for_text("[interrupted after "));
  REQUIRE(tmux.wait_for([](const std::string& s) { return s.rfind("> ") > s.find("[interrupted after "); }));

  tmux.type("/stats");
  REQUIRE(tmux.wait_for_text("expert hit rate: n/a (CPU only)"));
  const std::string stats = tmux.screen();
  CHECK(stats.find("last answer: prefill ") != std::string::npos);
  CHECK(stats.find("tok/s") != std::string::npos);
  CHECK(stats.find("2 messages") != std::string::npos);  // the question and the interrupted answer

  const std::string saved = (dir / "chat.json").string();
  tmux.type("/save " + saved);
  REQUIRE(tmux.wait_for_text("saved 2 messages"));
  const nlohmann::json j = nlohmann::json::parse(read_file(saved));
  CHECK(j["messages"][0]["content"] == "hello there");
  CHECK(j["messages"][1]["interrupted"] == true);
  CHECK(j["settings"]["seed"] == 7);

  tmux.type("/reset");
  REQUIRE(tmux.wait_for_text("conversation cleared"));
  tmux.type("/load " + saved);
  REQUIRE(tmux.wait_for_text("loaded 2 messages"));
  tmux.type("/nope");
  REQUIRE(tmux.wait_for_text("unknown command /nope"));

  // One Ctrl-C at an empty prompt prints a hint; /quit leaves.
  tmux.keys("C-c");
  REQUIRE(tmux.wait_for_text("Ctrl-C again"));
  CHECK(tmux.alive());
  tmux.type("/quit");
  const auto t0 = std::chrono::steady_clock::now();
  while (tmux.alive() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!tmux.alive());
  const std::string history = read_file(dir / "data" / "history");
  CHECK(count(history, "hello") == 1);
  CHECK(history.find("/stats") != std::string::npos);

  // Two Ctrl-C at an empty prompt leave.
  REQUIRE(tmux.cmd("new-session -d -s chat -x 160 -y 50 " + quote(command)).exit_code == 0);
  REQUIRE(tmux.wait_for_text("> "));
  tmux.keys("C-c");
  REQUIRE(tmux.wait_for_text("Ctrl-C again"));
  tmux.keys("C-c");
  const auto t1 = std::chrono::steady_clock::now();
  while (tmux.alive() && std::chrono::steady_clock::now() - t1 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!tmux.alive());
}
