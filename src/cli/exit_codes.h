// Exit codes scripts can rely on.
#pragma once

namespace ossrun::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;     // the work could not be done (I/O error, out of memory, ...)
constexpr int kExitUsage = 2;       // bad flags or arguments
constexpr int kExitBadInput = 3;    // a checkpoint, config or input file that cannot be used
constexpr int kExitInterrupted = 130;

}  // namespace ossrun::cli
