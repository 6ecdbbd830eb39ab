#include "tests/support/shell_run.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>

#include "tests/support/build_paths.h"

namespace ossrun::test {

ShellRun shell_run(const std::string& command_line) {
  ShellRun r;
  FILE* p = popen(command_line.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

ShellRun run_ossrun(const std::string& args, bool merge_stderr) {
  return shell_run("'" + ossrun_binary() + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null"));
}

}  // namespace ossrun::test
