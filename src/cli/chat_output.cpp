#include "src/cli/chat_output.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ossrun::cli {
namespace {

void write_to(FILE* f, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

}  // namespace

ChatOutput::ChatOutput() {
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  styled_ = isatty(STDERR_FILENO) && !(no_color && *no_color) && !(term && std::strcmp(term, "dumb") == 0);
}

void ChatOutput::answer(const std::string& text) const { write_to(stdout, text); }
void ChatOutput::info(const std::string& text) const { write_to(stdout, text); }

void ChatOutput::reasoning(const std::string& text) const {
  write_to(stderr, styled_ ? "\033[2m" + text + "\033[0m" : text);
}
void ChatOutput::note(const std::string& text) const {
  write_to(stderr, (styled_ ? "\033[2m" + text + "\033[0m" : text) + "\n");
}
void ChatOutput::error(const std::string& text) const {
  write_to(stderr, (styled_ ? "\033[31m" + text + "\033[0m" : text) + "\n");
}

}  // namespace ossrun::cli
