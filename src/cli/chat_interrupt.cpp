#include "src/cli/chat_interrupt.h"

#include <csignal>

namespace ossrun::cli {
namespace {

std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the SIGINT handler needs a lock-free flag");

extern "C" void on_sigint(int) { g_interrupt.store(true); }

}  // namespace

std::atomic<bool>& interrupt_requested() { return g_interrupt; }

void install_interrupt_handler() {
  struct sigaction sa{};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

}  // namespace ossrun::cli
