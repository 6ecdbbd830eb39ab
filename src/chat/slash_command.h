// The chat's slash commands: a line that starts with "/" is a command, not a message ("//" at the start sends
// a message that starts with "/").
//
//   /help                     the commands and the input rules
//   /reset                    forget the conversation (settings stay)
//   /effort [low|medium|high] show or set the reasoning effort
//   /stats                    speeds of the last answer and the session, expert hit rate, placement, memory
//   /save FILE, /load FILE    the conversation and its settings as JSON
//   /quit (/exit)             leave
#pragma once
#include <string>
#include <string_view>
#include <variant>

namespace ossrun::chat {

enum class CommandKind { kHelp, kReset, kEffort, kStats, kSave, kLoad, kQuit };

struct SlashCommand {
  CommandKind kind;
  std::string argument;  // /effort's level (empty: show it), /save's and /load's file
};

struct NotACommand {
  std::string message;  // the text to send ("//x" becomes "/x")
};

struct CommandError {
  std::string message;  // what is wrong and what to type instead
};

using ParsedInput = std::variant<NotACommand, SlashCommand, CommandError>;

ParsedInput parse_input(std::string_view text);

// The /help text.
std::string help_text();

}  // namespace ossrun::chat
