// The chat's conversation: its settings (reasoning effort, system and developer instructions, sampling) and
// its messages (user and assistant, the assistant's on a channel), saved and loaded as JSON.
//
// The system and developer messages are not stored as messages: they are made from the settings each time the
// conversation is rendered, so they can never be dropped or get out of step with /effort.
//
// The file (`/save FILE`, `/load FILE`):
//   {"format": "ossrun-chat", "version": 1,
//    "settings": {"effort": "medium", "system": null, "developer": "Answer briefly.", "temperature": 1.0,
//                 "top_p": 1.0, "top_k": 0, "min_p": 0.0, "seed": 42, "max_tokens": 1024},
//    "messages": [{"role": "user", "content": "hi"},
//                 {"role": "assistant", "channel": "analysis", "content": "..."},
//                 {"role": "assistant", "channel": "final", "content": "Hello!", "interrupted": true}]}
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/engine/sampler.h"
#include "src/tokenizer/harmony.h"

namespace ossrun::chat {

struct ChatSettings {
  ReasoningEffort effort = ReasoningEffort::kMedium;
  std::optional<std::string> system;     // replaces the system message's model identity line
  std::optional<std::string> developer;  // the developer message's instructions (the usual "system prompt")
  engine::SamplerOptions sampling;
  int64_t max_tokens = 1024;             // most tokens per answer
};

struct ChatMessage {
  Role role = Role::kUser;        // kUser or kAssistant
  std::string channel;            // assistant: "analysis", "commentary" or "final"; user: empty
  std::string content;
  bool interrupted = false;       // an assistant message cut short (Ctrl-C, --max-tokens, context full)
  std::vector<TokenId> tokens;    // assistant: the content as sampled (not saved); empty when unknown
};

struct Conversation {
  ChatSettings settings;
  std::vector<ChatMessage> messages;

  // Index of the first message of each turn (a user message and the assistant messages after it).
  std::vector<size_t> turn_starts() const;
};

// "low" / "medium" / "high"; nullopt otherwise.
std::optional<ReasoningEffort> effort_from_name(std::string_view name);

nlohmann::json to_json(const Conversation& c);
// Throws InputError naming the field and what is wrong ("messages[2].role: expected \"user\" or \"assistant\",
// found \"bot\""); `where` prefixes the message (the file name).
Conversation conversation_from_json(const nlohmann::json& j, const std::string& where);

void save_conversation(const Conversation& c, const std::string& path);  // throws InputError when it cannot write
Conversation load_conversation(const std::string& path);                 // throws InputError naming the problem

}  // namespace ossrun::chat
