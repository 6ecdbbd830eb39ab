#include "src/tokenizer/harmony.h"

#include <stdexcept>

#include "src/model/error.h"

namespace ossrun {

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kSystem: return "system";
    case Role::kDeveloper: return "developer";
    case Role::kUser: return "user";
    case Role::kAssistant: return "assistant";
    case Role::kTool: return "tool";
  }
  return "user";
}

std::optional<Role> role_from_name(std::string_view name) {
  for (Role r : {Role::kSystem, Role::kDeveloper, Role::kUser, Role::kAssistant, Role::kTool})
    if (role_name(r) == name) return r;
  return std::nullopt;
}

std::string_view effort_name(ReasoningEffort effort) {
  switch (effort) {
    case ReasoningEffort::kLow: return "low";
    case ReasoningEffort::kMedium: return "medium";
    case ReasoningEffort::kHigh: return "high";
  }
  return "medium";
}

const std::string& Message::text() const {
  if (const auto* s = std::get_if<std::string>(&content)) return *s;
  throw std::logic_error("Message::text() on a system or developer message");
}

Message Message::system(SystemContent c) {
  Message m;
  m.role = Role::kSystem;
  m.content = std::move(c);
  return m;
}

Message Message::developer(DeveloperContent c) {
  Message m;
  m.role = Role::kDeveloper;
  m.content = std::move(c);
  return m;
}

Message Message::user(std::string text) {
  Message m;
  m.role = Role::kUser;
  m.content = std::move(text);
  return m;
}

Message Message::assistant(std::string channel, std::string text) {
  Message m;
  m.role = Role::kAssistant;
  m.channel = std::move(channel);
  m.content = std::move(text);
  return m;
}

Message Message::tool_call(std::string recipient, std::string arguments_json) {
  Message m = assistant("commentary", std::move(arguments_json));
  m.recipient = std::move(recipient);
  m.content_type = "<|constrain|>json";
  return m;
}

Message Message::tool_result(std::string tool_name, std::string output) {
  Message m;
  m.role = Role::kTool;
  m.name = std::move(tool_name);
  m.recipient = "assistant";
  m.channel = "commentary";
  m.content = std::move(output);
  return m;
}

HarmonyRenderer::HarmonyRenderer(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer),
      start_(tokenizer.special("<|start|>")),
      end_(tokenizer.special("<|end|>")),
      message_(tokenizer.special("<|message|>")),
      channel_(tokenizer.special("<|channel|>")),
      constrain_(tokenizer.special("<|constrain|>")),
      return_(tokenizer.special("<|return|>")),
      call_(tokenizer.special("<|call|>")) {}

std::string HarmonyRenderer::system_text(const SystemContent& c, bool conversation_has_function_tools) {
  auto join = [](const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? std::string(separator) : "") + parts[i];
    return out;
  };
  std::vector<std::string> sections, top;
  if (c.model_identity) top.push_back(*c.model_identity);
  if (c.knowledge_cutoff) top.push_back("Knowledge cutoff: " + *c.knowledge_cutoff);
  if (c.current_date) top.push_back("Current date: " + *c.current_date);
  if (!top.empty()) sections.push_back(join(top, "\n"));
  if (c.reasoning_effort) sections.push_back("Reasoning: " + std::string(effort_name(*c.reasoning_effort)));
  if (!c.tools.empty()) sections.push_back(render_tools_section(c.tools));
  if (!c.valid_channels.empty()) {
    std::string channels = "# Valid channels: ";
    for (size_t i = 0; i < c.valid_channels.size(); ++i) channels += (i ? ", " : "") + c.valid_channels[i];
    channels += ".";
    if (c.channel_required) channels += " Channel must be included for every message.";
    if (conversation_has_function_tools)
      channels += "\nCalls to these tools must go to the commentary channel: 'functions'.";
    sections.push_back(channels);
  }
  return join(sections, "\n\n");
}

std::string HarmonyRenderer::developer_text(const DeveloperContent& c) {
  std::string out;
  if (c.instructions) out = "# Instructions\n\n" + *c.instructions;
  if (!c.tools.empty()) out += (c.instructions ? "\n\n" : "") + render_tools_section(c.tools);
  return out;
}

void HarmonyRenderer::render_message(const Message& m, bool conversation_has_function_tools,
                                     std::vector<TokenId>& out) const {
  out.push_back(start_);
  if (m.role == Role::kTool) {
    if (m.name.empty()) throw InputError("a tool message needs the tool's name (e.g. functions.get_weather)");
    text(m.name, out);
  } else {
    text(role_name(m.role), out);
    if (!m.name.empty()) text(":" + m.name, out);
  }
  if (!m.recipient.empty() && m.recipient != "all") text(" to=" + m.recipient, out);
  if (!m.channel.empty()) {
    out.push_back(channel_);
    text(m.channel, out);
  }
  if (!m.content_type.empty()) {
    constexpr std::string_view kConstrain = "<|constrain|>";
    if (m.content_type.starts_with(kConstrain)) {
      text(" ", out);
      out.push_back(constrain_);
      if (m.content_type.size() > kConstrain.size()) text(std::string_view(m.content_type).substr(kConstrain.size()), out);
    } else {
      text(" " + m.content_type, out);
    }
  }
  out.push_back(message_);
  if (const auto* s = std::get_if<std::string>(&m.content)) {
    text(*s, out);
  } else if (const auto* sys = std::get_if<SystemContent>(&m.content)) {
    if (m.role != Role::kSystem) throw InputError("system content in a " + std::string(role_name(m.role)) + " message");
    text(system_text(*sys, conversation_has_function_tools), out);
  } else {
    if (m.role != Role::kDeveloper)
      throw InputError("developer content in a " + std::string(role_name(m.role)) + " message");
    text(developer_text(std::get<DeveloperContent>(m.content)), out);
  }
  bool tool_call = m.role == Role::kAssistant && !m.recipient.empty();
  out.push_back(tool_call ? call_ : end_);
}

bool HarmonyRenderer::has_function_tools(std::span<const Message> messages) {
  for (const Message& m : messages)
    if (const auto* dev = std::get_if<DeveloperContent>(&m.content))
      for (const ToolNamespace& ns : dev->tools)
        if (ns.name == "functions" && !ns.tools.empty()) return true;
  return false;
}

std::vector<Message> HarmonyRenderer::kept_messages(std::span<const Message> messages, const RenderOptions& options) {
  std::vector<Message> kept;
  bool final_follows = false;  // walking backwards: has a later final answer been seen?
  for (size_t i = messages.size(); i-- > 0;) {
    const Message& m = messages[i];
    bool is_assistant = m.role == Role::kAssistant;
    if (options.drop_analysis && is_assistant && m.channel == "analysis" && final_follows) continue;
    if (is_assistant && m.channel == "final") final_follows = true;
    kept.push_back(m);
  }
  return {kept.rbegin(), kept.rend()};
}

std::vector<TokenId> HarmonyRenderer::render_conversation(std::span<const Message> messages,
                                                          const RenderOptions& options) const {
  const bool tools = has_function_tools(messages);
  std::vector<TokenId> out;
  for (const Message& m : kept_messages(messages, options)) render_message(m, tools, out);
  return out;
}

std::vector<TokenId> HarmonyRenderer::render_for_completion(std::span<const Message> messages, Role next,
                                                            const RenderOptions& options) const {
  std::vector<TokenId> out = render_conversation(messages, options);
  out.push_back(start_);
  text(role_name(next), out);
  return out;
}

}  // namespace ossrun
