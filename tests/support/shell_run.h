// Runs a shell command line for the end-to-end tests (the ossrun binary, tmux): its exit code and stdout.
#pragma once
#include <string>

namespace ossrun::test {

struct ShellRun {
  int exit_code = -1;  // -1 when the command did not exit normally
  std::string out;     // stdout (and whatever the command line redirects into it)
};

ShellRun shell_run(const std::string& command_line);

// `ossrun ARGS`, with stderr merged into out or discarded.
ShellRun run_ossrun(const std::string& args, bool merge_stderr);

}  // namespace ossrun::test
