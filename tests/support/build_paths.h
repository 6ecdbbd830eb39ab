// Paths the tests know from the build (the ossrun binary, the source tree), each overridable through the
// environment so a test binary carried to another machine (the GPU host) can be pointed at its files there.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ossrun::test {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// The ossrun binary built with these tests; $OSSRUN_BINARY overrides.
inline std::string ossrun_binary() { return env_or("OSSRUN_BINARY", OSSRUN_BINARY); }

// tests/goldens of the source tree; $OSSRUN_GOLDEN_DIR overrides.
inline std::filesystem::path golden_dir() {
  return env_or("OSSRUN_GOLDEN_DIR", (std::filesystem::path(OSSRUN_SOURCE_DIR) / "tests" / "goldens").string());
}

}  // namespace ossrun::test
