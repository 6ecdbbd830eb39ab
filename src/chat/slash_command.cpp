#include "src/chat/slash_command.h"

#include <algorithm>
#include <vector>

namespace ossrun::chat {
namespace {

struct CommandSpec {
  const char* name;
  CommandKind kind;
  enum { kNone, kOptional, kRequired } argument;
  const char* usage;
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> specs = {
      {"help", CommandKind::kHelp, CommandSpec::kNone, "/help"},
      {"reset", CommandKind::kReset, CommandSpec::kNone, "/reset"},
      {"effort", CommandKind::kEffort, CommandSpec::kOptional, "/effort [low|medium|high]"},
      {"stats", CommandKind::kStats, CommandSpec::kNone, "/stats"},
      {"save", CommandKind::kSave, CommandSpec::kRequired, "/save FILE"},
      {"load", CommandKind::kLoad, CommandSpec::kRequired, "/load FILE"},
      {"quit", CommandKind::kQuit, CommandSpec::kNone, "/quit"},
      {"exit", CommandKind::kQuit, CommandSpec::kNone, "/exit"},
  };
  return specs;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

ParsedInput parse_input(std::string_view text) {
  if (text.starts_with("//")) return NotACommand{std::string(text.substr(1))};
  if (!text.starts_with("/")) return NotACommand{std::string(text)};
  const std::string_view body = trim(text.substr(1));
  const size_t space = body.find_first_of(" \t");
  const std::string_view name = body.substr(0, space);
  const std::string argument(space == std::string_view::npos ? std::string_view() : trim(body.substr(space)));
  for (const CommandSpec& c : commands()) {
    if (name != c.name) continue;
    if (c.argument == CommandSpec::kNone && !argument.empty())
      return CommandError{std::string("/") + c.name + " takes no argument (usage: " + c.usage + ")"};
    if (c.argument == CommandSpec::kRequired && argument.empty())
      return CommandError{std::string("/") + c.name + " needs an argument (usage: " + c.usage + ")"};
    if (c.kind == CommandKind::kEffort && !argument.empty() && argument != "low" && argument != "medium" && argument != "high")
      return CommandError{"unknown effort \"" + argument + "\" (usage: " + c.usage + ")"};
    return SlashCommand{c.kind, argument};
  }
  std::string message = name.empty() ? std::string("a command name must follow \"/\"")
                                     : "unknown command /" + std::string(name);
  const CommandSpec* closest = nullptr;
  size_t best = 3;  // suggest only names within two edits, or that the typed name begins
  for (const CommandSpec& c : commands()) {
    const size_t d = std::string_view(c.name).starts_with(name) && !name.empty() ? 0 : edit_distance(name, c.name);
    if (d < best) best = d, closest = &c;
  }
  if (closest) message += "; did you mean " + std::string(closest->usage) + "?";
  message += " (/help lists the commands; start a message with // to send a leading /)";
  return CommandError{message};
}

std::string help_text() {
  return "Commands:\n"
         "  /help                      this help\n"
         "  /reset                     forget the conversation (the settings stay)\n"
         "  /effort [low|medium|high]  show or set the reasoning effort\n"
         "  /stats                     speeds (last answer, session), expert hit rate, placement, memory\n"
         "  /save FILE                 save the conversation and its settings as JSON\n"
         "  /load FILE                 load a conversation saved by /save\n"
         "  /quit                      leave (also /exit, Ctrl-D, or Ctrl-C twice at an empty prompt)\n"
         "Input: a line ending in \\ continues on the next line; a line that is just \"\"\" starts a block that\n"
         "another \"\"\" line ends. Start a message with // to send a leading /. Ctrl-C stops an answer.\n";
}

}  // namespace ossrun::chat
