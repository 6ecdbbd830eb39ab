#include "src/chat/conversation.h"

#include <fstream>
#include <set>

#include "src/model/error.h"
#include "src/model/json_file.h"

namespace ossrun::chat {
namespace {

constexpr const char* kFormat = "ossrun-chat";
constexpr int kVersion = 1;

using json = nlohmann::json;

// Field checks that name the field: "FILE: settings.top_k: expected an integer, found \"x\"".
class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(where_ + ": " + field + ": " + what);
  }
  const json& object(const json& j, const std::string& field) const {
    if (!j.is_object()) fail(field, "expected an object, found " + std::string(j.type_name()));
    return j;
  }
  void only_keys(const json& j, const std::string& field, const std::set<std::string>& allowed) const {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!allowed.count(it.key())) fail(field, "unknown key \"" + it.key() + "\"");
  }
  const json& need(const json& j, const std::string& field, const char* key) const {
    if (!j.contains(key)) fail(field, std::string("missing \"") + key + "\"");
    return j[key];
  }
  std::string string(const json& j, const std::string& field) const {
    if (!j.is_string()) fail(field, "expected a string, found " + j.dump());
    return j.get<std::string>();
  }
  std::optional<std::string> optional_string(const json& j, const std::string& field) const {
    if (j.is_null()) return std::nullopt;
    return string(j, field);
  }
  double number(const json& j, const std::string& field) const {
    if (!j.is_number()) fail(field, "expected a number, found " + j.dump());
    return j.get<double>();
  }
  int64_t integer(const json& j, const std::string& field, int64_t min) const {
    if (!j.is_number_integer() || (j.is_number_unsigned() && j.get<uint64_t>() > INT64_MAX))
      fail(field, "expected an integer, found " + j.dump());
    const int64_t v = j.get<int64_t>();
    if (v < min) fail(field, "expected at least " + std::to_string(min) + ", found " + std::to_string(v));
    return v;
  }
  uint64_t unsigned_integer(const json& j, const std::string& field) const {
    if (!j.is_number_unsigned()) fail(field, "expected a non-negative integer, found " + j.dump());
    return j.get<uint64_t>();
  }

 private:
  std::string where_;
};

ChatSettings settings_from_json(const Reader& r, const json& j) {
  r.object(j, "settings");
  r.only_keys(j, "settings", {"effort", "system", "developer", "temperature", "top_p", "top_k", "min_p", "seed", "max_tokens"});
  ChatSettings s;
  if (j.contains("effort")) {
    const std::string e = r.string(j["effort"], "settings.effort");
    const auto effort = effort_from_name(e);
    if (!effort) r.fail("settings.effort", "expected \"low\", \"medium\" or \"high\", found \"" + e + "\"");
    s.effort = *effort;
  }
  if (j.contains("system")) s.system = r.optional_string(j["system"], "settings.system");
  if (j.contains("developer")) s.developer = r.optional_string(j["developer"], "settings.developer");
  if (j.contains("temperature")) s.sampling.temperature = static_cast<float>(r.number(j["temperature"], "settings.temperature"));
  if (j.contains("top_p")) s.sampling.top_p = static_cast<float>(r.number(j["top_p"], "settings.top_p"));
  if (j.contains("top_k")) s.sampling.top_k = r.integer(j["top_k"], "settings.top_k", 0);
  if (j.contains("min_p")) s.sampling.min_p = static_cast<float>(r.number(j["min_p"], "settings.min_p"));
  if (j.contains("seed")) s.sampling.seed = r.unsigned_integer(j["seed"], "settings.seed");
  if (j.contains("max_tokens")) s.max_tokens = r.integer(j["max_tokens"], "settings.max_tokens", 1);
  try {
    engine::validate(s.sampling);
  } catch (const InputError& e) {
    r.fail("settings", e.what());
  }
  return s;
}

ChatMessage message_from_json(const Reader& r, const json& j, const std::string& field) {
  r.object(j, field);
  r.only_keys(j, field, {"role", "channel", "content", "interrupted"});
  ChatMessage m;
  const std::string role = r.string(r.need(j, field, "role"), field + ".role");
  if (role == "user") {
    m.role = Role::kUser;
    if (j.contains("channel")) r.fail(field + ".channel", "a user message has no channel");
  } else if (role == "assistant") {
    m.role = Role::kAssistant;
    m.channel = r.string(r.need(j, field, "channel"), field + ".channel");
    if (m.channel != "analysis" && m.channel != "commentary" && m.channel != "final")
      r.fail(field + ".channel", "expected \"analysis\", \"commentary\" or \"final\", found \"" + m.channel + "\"");
  } else {
    r.fail(field + ".role", "expected \"user\" or \"assistant\", found \"" + role +
                                "\" (system and developer instructions are settings.system and settings.developer)");
  }
  m.content = r.string(r.need(j, field, "content"), field + ".content");
  if (j.contains("interrupted")) {
    if (!j["interrupted"].is_boolean()) r.fail(field + ".interrupted", "expected true or false, found " + j["interrupted"].dump());
    m.interrupted = j["interrupted"].get<bool>();
  }
  return m;
}

}  // namespace

std::vector<size_t> Conversation::turn_starts() const {
  std::vector<size_t> starts;
  for (size_t i = 0; i < messages.size(); ++i)
    if (i == 0 || messages[i].role == Role::kUser) starts.push_back(i);
  return starts;
}

std::optional<ReasoningEffort> effort_from_name(std::string_view name) {
  for (ReasoningEffort e : {ReasoningEffort::kLow, ReasoningEffort::kMedium, ReasoningEffort::kHigh})
    if (effort_name(e) == name) return e;
  return std::nullopt;
}

json to_json(const Conversation& c) {
  const ChatSettings& s = c.settings;
  json settings = {{"effort", std::string(effort_name(s.effort))},
                   {"system", s.system ? json(*s.system) : json(nullptr)},
                   {"developer", s.developer ? json(*s.developer) : json(nullptr)},
                   {"temperature", s.sampling.temperature},
                   {"top_p", s.sampling.top_p},
                   {"top_k", s.sampling.top_k},
                   {"min_p", s.sampling.min_p},
                   {"seed", s.sampling.seed},
                   {"max_tokens", s.max_tokens}};
  json messages = json::array();
  for (const ChatMessage& m : c.messages) {
    json jm = {{"role", std::string(role_name(m.role))}};
    if (m.role == Role::kAssistant) jm["channel"] = m.channel;
    jm["content"] = m.content;
    if (m.interrupted) jm["interrupted"] = true;
    messages.push_back(std::move(jm));
  }
  return {{"format", kFormat}, {"version", kVersion}, {"settings", std::move(settings)}, {"messages", std::move(messages)}};
}

Conversation conversation_from_json(const json& j, const std::string& where) {
  const Reader r(where);
  r.object(j, "the file");
  r.only_keys(j, "the file", {"format", "version", "settings", "messages"});
  const std::string format = r.string(r.need(j, "the file", "format"), "format");
  if (format != kFormat) r.fail("format", std::string("expected \"") + kFormat + "\", found \"" + format + "\"");
  const int64_t version = r.integer(r.need(j, "the file", "version"), "version", 1);
  if (version != kVersion) r.fail("version", "this ossrun reads version " + std::to_string(kVersion) + ", found " + std::to_string(version));
  Conversation c;
  if (j.contains("settings")) c.settings = settings_from_json(r, j["settings"]);
  const json& messages = r.need(j, "the file", "messages");
  if (!messages.is_array()) r.fail("messages", "expected an array, found " + std::string(messages.type_name()));
  for (size_t i = 0; i < messages.size(); ++i)
    c.messages.push_back(message_from_json(r, messages[i], "messages[" + std::to_string(i) + "]"));
  if (!c.messages.empty() && c.messages.front().role != Role::kUser)
    r.fail("messages[0]", "the conversation must begin with a user message");
  return c;
}

void save_conversation(const Conversation& c, const std::string& path) {
  std::ofstream f(path);
  if (!f) throw InputError(path + ": cannot open for writing");
  f << to_json(c).dump(2, ' ', false, json::error_handler_t::replace) << "\n";  // invalid UTF-8 typed by the user becomes U+FFFD
  f.close();
  if (!f) throw InputError(path + ": write failed");
}

Conversation load_conversation(const std::string& path) {
  return conversation_from_json(read_json_file(path), path);
}

}  // namespace ossrun::chat
