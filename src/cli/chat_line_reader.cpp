#include "src/cli/chat_line_reader.h"

#include <histedit.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "src/cli/chat_interrupt.h"

namespace ossrun::cli {
namespace {

class PlainLineReader : public LineReader {
 public:
  ReadResult read(bool) override {
    char* buf = nullptr;
    size_t cap = 0;
    errno = 0;
    const ssize_t n = ::getline(&buf, &cap, stdin);
    ReadResult r;
    if (n < 0) {
      const bool interrupted = errno == EINTR && interrupt_requested().exchange(false);
      std::clearerr(stdin);
      std::free(buf);
      r.status = interrupted ? ReadStatus::kInterrupted : ReadStatus::kEof;
      return r;
    }
    r.status = ReadStatus::kLine;
    r.line.assign(buf, static_cast<size_t>(n));
    std::free(buf);
    if (!r.line.empty() && r.line.back() == '\n') r.line.pop_back();
    if (!r.line.empty() && r.line.back() == '\r') r.line.pop_back();
    return r;
  }
  void remember(const std::string&) override {}
};

class EditLineReader : public LineReader {
 public:
  explicit EditLineReader(const std::filesystem::path& history_file) : history_file_(history_file) {
    el_ = el_init("ossrun", stdin, stdout, stderr);
    history_ = history_init();
    history(history_, &event_, H_SETSIZE, 2000);
    history(history_, &event_, H_SETUNIQUE, 1);
    el_set(el_, EL_EDITOR, "emacs");
    el_set(el_, EL_SIGNAL, 0);  // libedit installs no signal handlers; ours stays the only SIGINT handler
    el_set(el_, EL_CLIENTDATA, this);
    el_set(el_, EL_PROMPT, &EditLineReader::prompt);
    el_set(el_, EL_HIST, history, history_);
    // While a line is edited, Ctrl-C is a key (the tty's ISIG is off in edit mode) bound to our function, so it
    // clears the line instead of signalling; during an answer the terminal is back in normal mode and Ctrl-C
    // raises SIGINT, which sets the flag the generation loop checks.
    el_set(el_, EL_SETTY, "-d", "-isig", nullptr);
    el_set(el_, EL_ADDFN, "ossrun-interrupt", "Discard the line (Ctrl-C)", &EditLineReader::on_ctrl_c);
    el_set(el_, EL_BIND, "^C", "ossrun-interrupt", nullptr);
    if (!history_file_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(history_file_.parent_path(), ec);
      if (std::filesystem::exists(history_file_)) history(history_, &event_, H_LOAD, history_file_.c_str());
    }
  }
  ~EditLineReader() override {
    el_end(el_);
    history_end(history_);
  }

  ReadResult read(bool continuation) override {
    continuation_ = continuation;
    interrupted_ = false;
    int count = 0;
    const char* s = el_gets(el_, &count);
    ReadResult r;
    if (interrupted_) {
      std::fputs("^C\n", stdout);  // what ed-newline would have done, and a sign of the Ctrl-C
      std::fflush(stdout);
      r.status = ReadStatus::kInterrupted;
      r.line_empty = interrupted_on_empty_;
      return r;
    }
    if (!s || count <= 0) {
      std::fputs("\n", stdout);
      return r;  // kEof
    }
    r.status = ReadStatus::kLine;
    r.line.assign(s, static_cast<size_t>(count));
    while (!r.line.empty() && (r.line.back() == '\n' || r.line.back() == '\r')) r.line.pop_back();
    return r;
  }

  void remember(const std::string& line) override {
    if (line.empty()) return;
    history(history_, &event_, H_ENTER, line.c_str());
    if (!history_file_.empty() && history(history_, &event_, H_SAVE, history_file_.c_str()) < 0 && !warned_) {
      std::fprintf(stderr, "ossrun: cannot write the history file %s\n", history_file_.c_str());
      warned_ = true;
    }
  }

 private:
  static EditLineReader* self(EditLine* el) {
    void* p = nullptr;
    el_get(el, EL_CLIENTDATA, &p);
    return static_cast<EditLineReader*>(p);
  }
  static char* prompt(EditLine* el) {
    static char main_prompt[] = "> ", continued[] = "... ";
    return self(el)->continuation_ ? continued : main_prompt;
  }
  static unsigned char on_ctrl_c(EditLine* el, int) {
    EditLineReader* r = self(el);
    const LineInfo* li = el_line(el);
    r->interrupted_ = true;
    r->interrupted_on_empty_ = li->lastchar == li->buffer;
    return CC_NEWLINE;
  }

  EditLine* el_ = nullptr;
  History* history_ = nullptr;
  HistEvent event_{};
  std::filesystem::path history_file_;
  bool continuation_ = false;
  bool interrupted_ = false;
  bool interrupted_on_empty_ = false;
  bool warned_ = false;
};

}  // namespace

std::unique_ptr<LineReader> make_line_reader(bool interactive, const std::filesystem::path& history_file) {
  if (interactive) return std::make_unique<EditLineReader>(history_file);
  return std::make_unique<PlainLineReader>();
}

std::filesystem::path chat_history_path() {
  const auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? v : "";
  };
  if (!env("OSSRUN_DATA").empty()) return std::filesystem::path(env("OSSRUN_DATA")) / "history";
  if (!env("XDG_DATA_HOME").empty()) return std::filesystem::path(env("XDG_DATA_HOME")) / "ossrun" / "history";
  if (!env("HOME").empty()) return std::filesystem::path(env("HOME")) / ".local" / "share" / "ossrun" / "history";
  return {};
}

}  // namespace ossrun::cli
