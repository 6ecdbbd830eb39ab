// Helpers shared by the synthetic-checkpoint tests: small configs, reading a file whole.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/synth/synth_config.h"
#include "tests/support/temp_dir.h"

namespace ossrun::synth::testing {

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
