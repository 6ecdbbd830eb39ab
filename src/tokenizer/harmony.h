// The harmony chat format of gpt-oss (spec §8): conversations rendered to token ids exactly as openai/harmony
// renders them, and the stop tokens. The parser of model output is in harmony_parser.h.
//
// A message is <|start|>{header}<|message|>{content}<|end|>, the header being the role (a tool message puts the
// tool's name there), an optional ":name", an optional " to={recipient}", an optional <|channel|>{channel} and an
// optional content type (" json" as text, or " " <|constrain|> "json"). An assistant message with a recipient (a
// tool call) ends with <|call|>. Every text piece is encoded on its own with special-token strings as plain text.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "src/tokenizer/tokenizer.h"

namespace ossrun {

enum class Role { kSystem, kDeveloper, kUser, kAssistant, kTool };
std::string_view role_name(Role role);
std::optional<Role> role_from_name(std::string_view name);

enum class ReasoningEffort { kLow, kMedium, kHigh };
std::string_view effort_name(ReasoningEffort effort);

// A function (or built-in tool) the model may call. `parameters_json` is a JSON schema ("" when the tool takes no
// arguments), rendered as a TypeScript-like type with its properties in the order written.
struct ToolDescription {
  std::string name;
  std::string description;
  std::string parameters_json;
};

// A tools namespace: "functions" for the developer's function tools, "browser" or "python" for built-ins.
struct ToolNamespace {
  std::string name;
  std::string description;  // lines rendered as "// " comments (plain lines when the namespace has no tools)
  std::vector<ToolDescription> tools;
};

// The system message's content. The defaults are harmony's SystemContent::new(): identity, cutoff 2024-06,
// no date, reasoning medium, the three channels required.
struct SystemContent {
  std::optional<std::string> model_identity = "You are ChatGPT, a large language model trained by OpenAI.";
  std::optional<std::string> knowledge_cutoff = "2024-06";
  std::optional<std::string> current_date;  // "YYYY-MM-DD"
  std::optional<ReasoningEffort> reasoning_effort = ReasoningEffort::kMedium;
  std::vector<ToolNamespace> tools;  // built-in tools
  std::vector<std::string> valid_channels = {"analysis", "commentary", "final"};
  bool channel_required = true;
};

// The developer message's content: the instructions (the usual "system prompt") and the function tools.
struct DeveloperContent {
  std::optional<std::string> instructions;
  std::vector<ToolNamespace> tools;  // usually one namespace, "functions"
};

struct Message {
  Role role = Role::kUser;
  std::string name;          // a tool message's tool ("functions.get_weather"); else an optional ":name"
  std::string recipient;     // "functions.get_weather", "assistant"; empty (or "all") for none
  std::string channel;       // "analysis", "commentary", "final"; empty for none
  std::string content_type;  // "json" or "<|constrain|>json"; empty for none
  std::variant<std::string, SystemContent, DeveloperContent> content;

  const std::string& text() const;  // the text content; throws std::logic_error for system/developer content

  static Message system(SystemContent content);
  static Message developer(DeveloperContent content);
  static Message user(std::string text);
  static Message assistant(std::string channel, std::string text);
  // An assistant tool call: channel commentary, recipient "functions.NAME", content type <|constrain|>json.
  static Message tool_call(std::string recipient, std::string arguments_json);
  // A tool's result: author = the tool, to=assistant on the commentary channel (spec §8.2).
  static Message tool_result(std::string tool_name, std::string output);
};

struct RenderOptions {
  // Drop analysis messages that a later final answer follows; keep those of a turn still calling tools (spec
  // §8.2, the HF template). harmony 0.0.8's own code drops only the analysis before the first final message
  // when the last assistant message is final; both agree on single-turn conversations and harmony's test data.
  bool drop_analysis = true;
};

// Keeps a reference to the tokenizer, which must outlive it.
class HarmonyRenderer {
 public:
  // Throws InputError when the tokenizer lacks a harmony special token.
  explicit HarmonyRenderer(const Tokenizer& tokenizer);

  // Appends one message.
  void render_message(const Message& message, bool conversation_has_function_tools,
                      std::vector<TokenId>& out) const;
  std::vector<TokenId> render_conversation(std::span<const Message> messages, const RenderOptions& options = {}) const;
  // The conversation followed by <|start|>{next role}: the prompt the model completes.
  std::vector<TokenId> render_for_completion(std::span<const Message> messages, Role next = Role::kAssistant,
                                             const RenderOptions& options = {}) const;

  // The messages render_conversation renders (after dropping analysis).
  static std::vector<Message> kept_messages(std::span<const Message> messages, const RenderOptions& options);
  static bool has_function_tools(std::span<const Message> messages);
  // The text of system and developer content.
  static std::string system_text(const SystemContent& content, bool conversation_has_function_tools);
  static std::string developer_text(const DeveloperContent& content);

  // Where generation stops: <|return|> and <|call|> (spec §8.4; <|end|> only separates messages).
  std::vector<TokenId> stop_tokens() const { return {return_, call_}; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  void text(std::string_view s, std::vector<TokenId>& out) const { tokenizer_.encode_into(s, out); }

  const Tokenizer& tokenizer_;
  TokenId start_, end_, message_, channel_, constrain_, return_, call_;
};

// The tools section ("# Tools\n\n## NAMESPACE\n\n..."), namespaces in name order; throws InputError naming the
// tool when its parameters are not a JSON object.
std::string render_tools_section(const std::vector<ToolNamespace>& namespaces);

}  // namespace ossrun
