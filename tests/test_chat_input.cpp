// The chat's input: slash-command parsing (arguments, errors, suggestions) and multi-line assembly
// (backslash continuation, """ blocks).
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "src/chat/input_assembler.h"
#include "src/chat/slash_command.h"

using namespace ossrun::chat;

namespace {

SlashCommand command(const std::string& text) {
  const ParsedInput p = parse_input(text);
  REQUIRE(std::holds_alternative<SlashCommand>(p));
  return std::get<SlashCommand>(p);
}

std::string error(const std::string& text) {
  const ParsedInput p = parse_input(text);
  REQUIRE(std::holds_alternative<CommandError>(p));
  return std::get<CommandError>(p).message;
}

}  // namespace

TEST_CASE("chat slash commands: names, arguments, messages and errors") {
  CHECK(command("/help").kind == CommandKind::kHelp);
  CHECK(command("/quit").kind == CommandKind::kQuit);
  CHECK(command("/exit").kind == CommandKind::kQuit);
  CHECK(command("/stats ").kind == CommandKind::kStats);
  CHECK(command("/reset").kind == CommandKind::kReset);
  CHECK(command("/effort").argument.empty());
  CHECK(command("/effort  high ").argument == "high");
  CHECK(command("/save my chat.json").argument == "my chat.json");
  CHECK(command("/load\t/tmp/x.json").kind == CommandKind::kLoad);

  CHECK(std::get<NotACommand>(parse_input("hello /help")).message == "hello /help");
  CHECK(std::get<NotACommand>(parse_input("//usr/bin is a directory")).message == "/usr/bin is a directory");

  CHECK(error("/save") == "/save needs an argument (usage: /save FILE)");
  CHECK(error("/stats now") == "/stats takes no argument (usage: /stats)");
  CHECK(error("/effort extreme") == "unknown effort \"extreme\" (usage: /effort [low|medium|high])");
  CHECK(error("/sav x").starts_with("unknown command /sav; did you mean /save FILE?"));
  CHECK(error("/stast").starts_with("unknown command /stast; did you mean /stats?"));
  CHECK(error("/q").starts_with("unknown command /q; did you mean /quit?"));
  const std::string far = error("/frobnicate");
  CHECK(far.find("did you mean") == std::string::npos);
  CHECK(far.find("/help lists the commands") != std::string::npos);
  CHECK(error("/").starts_with("a command name must follow"));
}

TEST_CASE("chat slash commands: leading spaces make a message, not a command") {
  // A command must start the line: "  /stats" is text (the check above trims only after the slash).
  CHECK(std::holds_alternative<NotACommand>(parse_input(" /stats")));
}

TEST_CASE("chat multi-line input: backslash continuation and \"\"\" blocks") {
  InputAssembler in;
  CHECK(in.push("one line") == "one line");
  CHECK(!in.continuing());

  CHECK(!in.push("first \\"));
  CHECK(in.continuing());
  CHECK(!in.push("second\\"));
  CHECK(in.push("third") == "first \nsecond\nthird");
  CHECK(!in.continuing());

  CHECK(!in.push("\"\"\""));
  CHECK(in.continuing());
  CHECK(!in.push("def f():"));
  CHECK(!in.push(""));
  CHECK(!in.push("    return 1  \\"));
  CHECK(in.push("  \"\"\"  ") == "def f():\n\n    return 1  \\");
  CHECK(!in.continuing());
  CHECK(in.push("after") == "after");

  CHECK(!in.push("\"\"\""));
  CHECK(!in.push(""));
  CHECK(!in.push("x"));
  CHECK(in.push("\"\"\"") == "\nx");

  CHECK(!in.push("unfinished \\"));
  CHECK(in.finish() == "unfinished ");
  CHECK(!in.finish());
  CHECK(!in.push("\"\"\""));
  in.clear();
  CHECK(!in.continuing());
  CHECK(in.push("fresh") == "fresh");
}
