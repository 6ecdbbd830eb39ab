// Helpers shared by the synthetic-checkpoint tests: a scratch directory, and small configs.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/synth/synth_config.h"

namespace ossrun::synth::testing {

// A fresh directory under the system temp directory, removed with everything in it when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("ossrun-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The tiny preset with some config.json fields replaced.
inline SynthConfig tiny_config(std::vector<std::pair<std::string, nlohmann::json>> fields = {},
                               std::optional<ExpertFormat> format = std::nullopt) {
  SynthConfigRequest r;
  r.preset = "tiny";
  r.fields = std::move(fields);
  r.expert_format = format;
  return resolve_synth_config(r);
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace ossrun::synth::testing
