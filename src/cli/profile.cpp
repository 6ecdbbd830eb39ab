#include "src/cli/profile.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "offload/byte_size.h"
#include "src/model/error.h"

#ifndef OSSRUN_PROFILES_DIR
#error "OSSRUN_PROFILES_DIR (the source tree's configs/ directory) must be defined by the build"
#endif

namespace ossrun::cli {
namespace {

namespace fs = std::filesystem;

// "integer 7", "string \"x\"", ...: what was found, for error messages.
std::string describe_node(const toml::node& n) {
  std::ostringstream s;
  switch (n.type()) {
    case toml::node_type::string: s << "string \"" << *n.value<std::string>() << "\""; break;
    case toml::node_type::integer: s << "integer " << *n.value<int64_t>(); break;
    case toml::node_type::floating_point: s << "float " << *n.value<double>(); break;
    case toml::node_type::boolean: s << "boolean " << (*n.value<bool>() ? "true" : "false"); break;
    case toml::node_type::table: s << "a table"; break;
    case toml::node_type::array: s << "an array"; break;
    default: s << "a date or time"; break;
  }
  return s.str();
}

// Reads one key: knows the file, the key's dotted name and its line for error messages.
class KeyReader {
 public:
  KeyReader(const std::string& source, std::string key, const toml::node& node)
      : source_(source), key_(std::move(key)), node_(node) {}

  [[noreturn]] void fail(const std::string& expected) const {
    throw InputError(source_ + ":" + std::to_string(node_.source().begin.line) + ": " + key_ + ": expected " + expected +
                     ", found " + describe_node(node_));
  }

  uint64_t size() const {
    if (auto i = node_.value_exact<int64_t>()) {
      if (*i < 0) fail("a size in bytes >= 0 or a string such as \"6G\"");
      return static_cast<uint64_t>(*i);
    }
    auto text = node_.value_exact<std::string>();
    if (!text) fail("a size such as \"6G\" or \"512M\" (or an integer number of bytes)");
    try {
      return offload::parse_byte_size(*text, key_);
    } catch (const InputError& e) {
      throw InputError(source_ + ":" + std::to_string(node_.source().begin.line) + ": " + e.what());
    }
  }
  int64_t integer(int64_t min) const {
    auto i = node_.value_exact<int64_t>();
    if (!i || *i < min) fail("an integer >= " + std::to_string(min));
    return *i;
  }
  double number(double min, double max, const std::string& expected) const {
    auto d = node_.value<double>();  // integers convert too: temperature = 1
    if (!d || !node_.is_number() || !(*d >= min && *d <= max)) fail(expected);
    return *d;
  }
  bool boolean() const {
    auto b = node_.value_exact<bool>();
    if (!b) fail("true or false");
    return *b;
  }
  std::string one_of(std::initializer_list<const char*> choices) const {
    std::string list;
    for (const char* c : choices) list += std::string(list.empty() ? "" : ", ") + c;
    auto text = node_.value_exact<std::string>();
    if (!text) fail("one of " + list);
    for (const char* c : choices)
      if (*text == c) return *text;
    fail("one of " + list);
  }

 private:
  const std::string& source_;
  std::string key_;
  const toml::node& node_;
};

using KeyHandlers = std::map<std::string, std::function<void(const KeyReader&)>>;

void read_table(const toml::table& table, const std::string& prefix, const KeyHandlers& handlers, const std::string& source,
                const std::function<void(const std::string&, const toml::node&)>& on_table = nullptr) {
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (node.is_table() && on_table) {
      on_table(name, node);
      continue;
    }
    auto h = handlers.find(name);
    if (h == handlers.end()) {
      std::string known;
      for (const auto& [k, unused] : handlers) known += (known.empty() ? "" : ", ") + k;
      throw InputError(source + ":" + std::to_string(key.source().begin.line) + ": unknown key \"" + prefix + name +
                       "\" (known: " + known + (prefix.empty() ? ", [chat]" : "") + ")");
    }
    h->second(KeyReader(source, prefix + name, node));
  }
}

}  // namespace

Profile parse_profile(std::string_view toml_text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    throw InputError(source + ":" + std::to_string(e.source().begin.line) + ": not valid TOML: " + std::string(e.description()));
  }
  Profile p;
  p.source = source;
  SessionSettings& s = p.session;
  const KeyHandlers session_keys = {
      {"vram", [&](const KeyReader& r) { s.vram = r.size(); }},
      {"ram", [&](const KeyReader& r) { s.ram = r.size(); }},
      {"ctx", [&](const KeyReader& r) { s.ctx = r.integer(1); }},
      {"threads", [&](const KeyReader& r) { s.threads = static_cast<int>(std::min<int64_t>(r.integer(0), 4096)); }},
      {"policy", [&](const KeyReader& r) { s.policy = r.one_of({"static", "lru", "lfu", "router"}); }},
      {"backend", [&](const KeyReader& r) { s.backend = r.one_of({"auto", "cpu", "gpu"}); }},
      {"prefill_batch", [&](const KeyReader& r) { s.prefill_batch = r.integer(1); }},
  };
  ChatDefaults& c = p.chat;
  const KeyHandlers chat_keys = {
      {"temperature", [&](const KeyReader& r) { c.temperature = r.number(0, 100, "a number >= 0"); }},
      {"top_p", [&](const KeyReader& r) { c.top_p = r.number(1e-9, 1, "a number in (0, 1]"); }},
      {"effort", [&](const KeyReader& r) { c.effort = r.one_of({"low", "medium", "high"}); }},
      {"reasoning", [&](const KeyReader& r) { c.reasoning = r.boolean(); }},
  };
  read_table(root, "", session_keys, source, [&](const std::string& name, const toml::node& node) {
    if (name != "chat")
      throw InputError(source + ":" + std::to_string(node.source().begin.line) + ": unknown table [" + name +
                       "] (known: [chat])");
    read_table(*node.as_table(), "chat.", chat_keys, source);
  });
  return p;
}

Profile load_profile_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in || fs::is_directory(file)) throw InputError(file.string() + ": cannot open the profile (no such file, or unreadable)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_profile(text.str(), file.string());
}

std::vector<fs::path> profile_dirs() {
  std::vector<fs::path> dirs;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    dirs.push_back(fs::path(xdg) / "ossrun" / "profiles");
  else if (const char* home = std::getenv("HOME"); home && *home)
    dirs.push_back(fs::path(home) / ".config" / "ossrun" / "profiles");
  dirs.push_back(OSSRUN_PROFILES_DIR);
  return dirs;
}

std::vector<std::string> available_profiles() {
  std::set<std::string> names;
  for (const fs::path& dir : profile_dirs()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".toml") names.insert(entry.path().stem().string());
  }
  return {names.begin(), names.end()};
}

fs::path find_profile(const std::string& name_or_file) {
  if (name_or_file.empty()) throw InputError("--profile: empty name");
  const bool looks_like_path = name_or_file.find('/') != std::string::npos || fs::path(name_or_file).extension() == ".toml";
  if (looks_like_path || fs::exists(name_or_file)) return name_or_file;
  std::string searched;
  for (const fs::path& dir : profile_dirs()) {
    const fs::path candidate = dir / (name_or_file + ".toml");
    if (fs::is_regular_file(candidate)) return candidate;
    searched += (searched.empty() ? "" : ", ") + dir.string();
  }
  std::string names;
  for (const std::string& n : available_profiles()) names += (names.empty() ? "" : ", ") + n;
  throw InputError("--profile " + name_or_file + ": no such profile (looked in " + searched + "; available: " +
                   (names.empty() ? "none" : names) + ")");
}

}  // namespace ossrun::cli
