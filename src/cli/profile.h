// Hardware profiles: TOML files (configs/*.toml) that set the session flags a machine wants (budgets,
// context, threads, cache policy, backend) and the chat defaults, so `--profile laptop-8gb` replaces a line
// of flags. Flags given on the command line override the profile's values.
//
//   vram = "6G"          # top level: the session settings (SessionSettings)
//   ctx = 8192
//   [chat]
//   temperature = 1.0    # the chat defaults (ChatDefaults)
//
// Unknown keys or tables, wrong types and bad sizes are InputErrors naming the file, the line and the key.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ossrun::cli {

// What a profile sets for a session; an unset optional means "the command's default" (budgets: detected).
struct SessionSettings {
  std::optional<uint64_t> vram;           // bytes of GPU memory ossrun may use; 0: CPU only
  std::optional<uint64_t> ram;            // bytes of RAM ossrun may pin, allocate or lock
  std::optional<int64_t> ctx;             // context tokens
  std::optional<int> threads;             // worker threads; 0: one per core
  std::optional<std::string> policy;      // static, lru, lfu, router
  std::optional<std::string> backend;     // auto, cpu, gpu
  std::optional<int64_t> prefill_batch;   // tokens per prefill step
};

// The [chat] table: what `ossrun chat` starts with when its own flags are not given.
struct ChatDefaults {
  std::optional<double> temperature;      // sampling temperature, >= 0 (0: greedy)
  std::optional<double> top_p;            // nucleus mass in (0, 1]
  std::optional<std::string> effort;      // reasoning effort in the system message: low, medium, high
  std::optional<bool> reasoning;          // show the reasoning (analysis channel) as it streams
};

struct Profile {
  std::string source;  // the file it came from; empty: no profile
  SessionSettings session;
  ChatDefaults chat;
};

// Parses TOML text; `source` names it in errors ("configs/laptop-8gb.toml:3: vram: ...").
Profile parse_profile(std::string_view toml_text, const std::string& source);
// Reads and parses a file; a missing or unreadable file is an InputError naming it.
Profile load_profile_file(const std::filesystem::path& file);

// Where `--profile NAME` looks, in order: $XDG_CONFIG_HOME/ossrun/profiles (else ~/.config/ossrun/profiles),
// then the configs/ directory of the source tree this binary was built from.
std::vector<std::filesystem::path> profile_dirs();
// NAME or FILE: an existing path (or one containing '/' or ending in .toml) is a file; otherwise NAME.toml
// in profile_dirs(). Throws InputError listing the places searched and the profiles there.
std::filesystem::path find_profile(const std::string& name_or_file);
inline Profile load_profile(const std::string& name_or_file) { return load_profile_file(find_profile(name_or_file)); }

// The names (file stems) of the profiles in profile_dirs(), sorted, without duplicates.
std::vector<std::string> available_profiles();

}  // namespace ossrun::cli
