// Ctrl-C during an answer: SIGINT sets a flag that the generation loop checks between tokens and the chat
// clears. The handler only sets the flag; it is installed without SA_RESTART so that a blocking read of a piped
// stdin returns EINTR and the plain line reader sees the Ctrl-C too.
#pragma once
#include <atomic>

namespace ossrun::cli {

std::atomic<bool>& interrupt_requested();
void install_interrupt_handler();

}  // namespace ossrun::cli
