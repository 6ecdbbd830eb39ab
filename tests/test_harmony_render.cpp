// Harmony rendering against the spec's test vector (§8.5) and openai/harmony's documented renderings
// (docs/format.md, test-data): system and developer content, function tools as a TypeScript namespace, tool
// calls and results, and which analysis messages are dropped.
#include <doctest/doctest.h>

#include <algorithm>

#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/harmony.h"

namespace ossrun {
namespace {

const Tokenizer& o200k() {
  static const Tokenizer tokenizer = Tokenizer::from_tiktoken(default_tiktoken_path());
  return tokenizer;
}

// The rendered ids must equal the expected text encoded with its special tokens; on failure the decoded texts
// are shown side by side.
void check_rendering(const std::vector<TokenId>& ids, const std::string& expected_text) {
  const Tokenizer& t = o200k();
  std::string rendered = t.decode(ids);
  CHECK(rendered == expected_text);
  CHECK(ids == t.encode_with_specials(expected_text));
}

const char* kWeatherSchema = R"({
  "type": "object",
  "properties": {
    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
    "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
  },
  "required": ["location"]
})";

const char* kMultipleWeathersSchema = R"({
  "type": "object",
  "properties": {
    "locations": {"type": "array", "items": {"type": "string"},
                  "description": "List of city and state, e.g. [\"San Francisco, CA\", \"New York, NY\"]"},
    "format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
  },
  "required": ["locations"]
})";

DeveloperContent weather_developer() {
  DeveloperContent dev;
  dev.instructions = "Use a friendly tone.";
  dev.tools.push_back({"functions", "",
                       {{"get_location", "Gets the location of the user.", ""},
                        {"get_current_weather", "Gets the current weather in the provided location.", kWeatherSchema},
                        {"get_multiple_weathers", "Gets the current weather in the provided list of locations.",
                         kMultipleWeathersSchema}}});
  return dev;
}

SystemContent high_effort_dated() {
  SystemContent sys;
  sys.reasoning_effort = ReasoningEffort::kHigh;
  sys.current_date = "2025-06-28";
  return sys;
}

// docs/format.md, "Function calling": the system and developer messages with three functions.
const std::string kFormatMdPrompt =
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: high\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.\n"
    "Calls to these tools must go to the commentary channel: 'functions'.<|end|>"
    "<|start|>developer<|message|># Instructions\n\nUse a friendly tone.\n\n# Tools\n\n## functions\n\n"
    "namespace functions {\n\n"
    "// Gets the location of the user.\ntype get_location = () => any;\n\n"
    "// Gets the current weather in the provided location.\ntype get_current_weather = (_: {\n"
    "// The city and state, e.g. San Francisco, CA\nlocation: string,\n"
    "format?: \"celsius\" | \"fahrenheit\", // default: celsius\n}) => any;\n\n"
    "// Gets the current weather in the provided list of locations.\ntype get_multiple_weathers = (_: {\n"
    "// List of city and state, e.g. [\"San Francisco, CA\", \"New York, NY\"]\nlocations: string[],\n"
    "format?: \"celsius\" | \"fahrenheit\", // default: celsius\n}) => any;\n\n"
    "} // namespace functions<|end|>";

}  // namespace

TEST_CASE("harmony: the spec's 64-token test vector (§8.5)") {
  const HarmonyRenderer r(o200k());
  std::vector<Message> convo = {Message::system(SystemContent{}), Message::user("What is 2 + 2?")};
  const std::vector<TokenId> expected = {
      200006, 17360, 200008, 3575, 553, 17554, 162016, 11, 261, 4410, 6439, 2359, 22203, 656, 7788, 17527,
      558, 87447, 100594, 25, 220, 1323, 19, 12, 3218, 279, 30377, 289, 25, 14093, 279, 2,
      13888, 18403, 25, 8450, 11, 49159, 11, 1721, 13, 21030, 2804, 413, 7360, 395, 1753, 3176,
      13, 200007, 200006, 1428, 200008, 4827, 382, 220, 17, 659, 220, 17, 30, 200007, 200006, 173781};
  REQUIRE(expected.size() == 64);
  CHECK(r.render_for_completion(convo) == expected);
  CHECK(r.stop_tokens() == std::vector<TokenId>{200002, 200012});
}

TEST_CASE("harmony: docs/format.md function-calling prompt") {
  const HarmonyRenderer r(o200k());
  std::vector<Message> convo = {Message::system(high_effort_dated()), Message::developer(weather_developer()),
                                Message::user("What is the weather like in SF?")};
  check_rendering(r.render_for_completion(convo),
                  kFormatMdPrompt + "<|start|>user<|message|>What is the weather like in SF?<|end|><|start|>assistant");
}

TEST_CASE("harmony: a pending tool call keeps its analysis; the tool result goes to=assistant") {
  // docs/format.md's conversation after a tool call. The spec (§8.1) and harmony's renderer put the recipient
  // after the role ("assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"); format.md
  // shows the model's own order for it, which the parser reads (test_harmony_parser.cpp).
  const HarmonyRenderer r(o200k());
  std::vector<Message> convo = {Message::system(high_effort_dated()), Message::developer(weather_developer()),
                                Message::user("What is the weather like in SF?"),
                                Message::assistant("analysis", "Need to use function get_weather."),
                                Message::tool_call("functions.get_weather", "{\"location\":\"San Francisco\"}"),
                                Message::tool_result("functions.get_weather", "{\"sunny\": true, \"temperature\": 20}")};
  check_rendering(
      r.render_for_completion(convo),
      kFormatMdPrompt +
          "<|start|>user<|message|>What is the weather like in SF?<|end|>"
          "<|start|>assistant<|channel|>analysis<|message|>Need to use function get_weather.<|end|>"
          "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>"
          "{\"location\":\"San Francisco\"}<|call|>"
          "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"
          "{\"sunny\": true, \"temperature\": 20}<|end|><|start|>assistant");
  // The constrained content type is " " <|constrain|> "json", the special token itself.
  std::vector<TokenId> ids = r.render_for_completion(convo);
  auto it = std::find(ids.begin(), ids.end(), TokenId{200003});
  REQUIRE(it != ids.end());
  CHECK(*(it - 1) == 220);
  CHECK(*(it + 1) == 4108);
}

TEST_CASE("harmony: analysis before a final answer is dropped") {
  const HarmonyRenderer r(o200k());
  // harmony's test_dropping_cot_by_default.
  std::vector<Message> convo = {
      Message::user("What is 2 + 2?"),
      Message::assistant("analysis", "User asks: \xE2\x80\x9CWhat is 2 + 2?\xE2\x80\x9D Simple arithmetic. Provide answer."),
      Message::assistant("final", "2 + 2 equals 4."), Message::user("What about 9 / 2?")};
  const std::string dropped =
      "<|start|>user<|message|>What is 2 + 2?<|end|>"
      "<|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>"
      "<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant";
  check_rendering(r.render_for_completion(convo), dropped);
  // harmony's test_preserve_cot: nothing dropped when asked.
  check_rendering(r.render_for_completion(convo, Role::kAssistant, RenderOptions{.drop_analysis = false}),
                  "<|start|>user<|message|>What is 2 + 2?<|end|>"
                  "<|start|>assistant<|channel|>analysis<|message|>User asks: \xE2\x80\x9CWhat is 2 + 2?\xE2\x80\x9D "
                  "Simple arithmetic. Provide answer.<|end|>"
                  "<|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>"
                  "<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant");
  // Two finished turns: both analyses go (spec §8.2, the HF template). harmony 0.0.8's code would keep the
  // second, because it drops only what precedes the first final message.
  std::vector<Message> two_turns = {Message::user("a?"), Message::assistant("analysis", "think 1"),
                                    Message::assistant("final", "A."), Message::user("b?"),
                                    Message::assistant("analysis", "think 2"), Message::assistant("final", "B."),
                                    Message::user("c?")};
  check_rendering(r.render_for_completion(two_turns),
                  "<|start|>user<|message|>a?<|end|><|start|>assistant<|channel|>final<|message|>A.<|end|>"
                  "<|start|>user<|message|>b?<|end|><|start|>assistant<|channel|>final<|message|>B.<|end|>"
                  "<|start|>user<|message|>c?<|end|><|start|>assistant");
  // A turn still calling tools keeps its analysis; the finished turn before it does not.
  std::vector<Message> ongoing = {Message::user("a?"), Message::assistant("analysis", "think 1"),
                                  Message::assistant("final", "A."), Message::user("weather?"),
                                  Message::assistant("analysis", "need a tool"),
                                  Message::tool_call("functions.lookup_weather", "{}"),
                                  Message::tool_result("functions.lookup_weather", "sunny")};
  std::vector<Message> kept = HarmonyRenderer::kept_messages(ongoing, RenderOptions{});
  REQUIRE(kept.size() == 6);
  CHECK(kept[1].channel == "final");
  CHECK(kept[3].text() == "need a tool");
}

TEST_CASE("harmony: system message options") {
  SystemContent sys;
  CHECK(HarmonyRenderer::system_text(sys, false) ==
        "You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n\n"
        "Reasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every "
        "message.");
  sys.reasoning_effort = ReasoningEffort::kLow;
  sys.current_date = "2025-08-05";
  CHECK(HarmonyRenderer::system_text(sys, true) ==
        "You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n"
        "Current date: 2025-08-05\n\nReasoning: low\n\n# Valid channels: analysis, commentary, final. Channel must "
        "be included for every message.\nCalls to these tools must go to the commentary channel: 'functions'.");
  // harmony's test_reasoning_system_message_with_dates.
  SystemContent dated;
  dated.current_date = "2021-01-01";
  dated.knowledge_cutoff = "2021-01";
  dated.valid_channels = {"analysis", "final"};
  CHECK(HarmonyRenderer::system_text(dated, false) ==
        "You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2021-01\n"
        "Current date: 2021-01-01\n\nReasoning: medium\n\n# Valid channels: analysis, final. Channel must be "
        "included for every message.");
  // Built-in tools go in the system message's own "# Tools" section; without tools a namespace description is
  // plain text.
  SystemContent with_python;
  with_python.tools.push_back({"python", "Use this tool to execute Python code.\nIt runs in a notebook.", {}});
  CHECK(HarmonyRenderer::system_text(with_python, false).find(
            "Reasoning: medium\n\n# Tools\n\n## python\n\nUse this tool to execute Python code.\nIt runs in a "
            "notebook.\n\n# Valid channels") != std::string::npos);
}

TEST_CASE("harmony: JSON schemas as TypeScript (titles, examples, nullable, enums, oneOf, defaults)") {
  // Hand-derived from harmony's json_schema_to_typescript for its "kitchensink" test schema.
  ToolNamespace ns{"functions", "", {{"kitchensink", "A function with various complex schemas.", R"({
    "description": "params object",
    "type": "object",
    "properties": {
      "string": {"type": "string", "title": "STRING", "description": "A string", "examples": ["hello", "world"]},
      "string_nullable": {"type": "string", "nullable": true, "description": "A nullable string",
                          "default": "the default"},
      "string_enum": {"type": "string", "enum": ["a", "b", "c"]},
      "oneof_string_or_number": {
        "oneOf": [{"type": "string", "default": "default_string_in_oneof"},
                  {"type": "number", "description": "numbers can happen too"}],
        "description": "a oneof", "default": 20}
    }
  })"}, {"untyped", "Two\nlines.", R"({"type": "object", "properties": {"n": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}}, "any": {}, "multi": {"type": ["integer", "null"]},
    "flag": {"type": "boolean", "default": false}, "list": {"type": "array"}}, "required": ["n", "flag"]})"}}};
  CHECK(render_tools_section({ns}) ==
        "# Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// A function with various complex schemas.\n"
        "type kitchensink = (_: // params object\n{\n// STRING\n//\n// A string\n// Examples:\n// - \"hello\"\n"
        "// - \"world\"\nstring?: string,\n// A nullable string\n"
        "string_nullable?: string | null, // default: \"the default\"\n"
        "string_enum?: \"a\" | \"b\" | \"c\",\n// a oneof\n// default: 20\noneof_string_or_number?:\n"
        " | string // default: \"default_string_in_oneof\"\n | number // numbers can happen too\n,\n}) => any;\n\n"
        "// Two\n// lines.\n"
        "type untyped = (_: {\nn: number,\ntags?: string[],\nany?: any,\nmulti?: number | null,\n"
        "flag: boolean, // default: false\nlist?: Array<any>,\n}) => any;\n\n} // namespace functions");
  ToolNamespace bad{"functions", "", {{"broken", "", "{not json"}}};
  CHECK_THROWS_WITH_AS(render_tools_section({bad}), doctest::Contains("functions.broken"), InputError);
  ToolNamespace not_object{"functions", "", {{"listy", "", "[1, 2]"}}};
  CHECK_THROWS_WITH_AS(render_tools_section({not_object}), doctest::Contains("JSON schema object"), InputError);
}

TEST_CASE("harmony: header pieces, names and errors") {
  const HarmonyRenderer r(o200k());
  Message named = Message::user("hi");
  named.name = "alice";
  Message typed = Message::assistant("commentary", "{}");
  typed.recipient = "functions.f";
  typed.content_type = "json";
  Message to_all = Message::assistant("final", "ok");
  to_all.recipient = "all";
  std::vector<Message> convo = {named, typed, to_all};
  // " to=all" is not written, yet (as in harmony) an assistant message with any recipient ends with <|call|>.
  check_rendering(r.render_conversation(convo),
                  "<|start|>user:alice<|message|>hi<|end|>"
                  "<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}<|call|>"
                  "<|start|>assistant<|channel|>final<|message|>ok<|call|>");
  // Special-token strings in content are plain text.
  std::vector<TokenId> ids = r.render_conversation(std::vector<Message>{Message::user("<|end|>")});
  CHECK(std::count(ids.begin(), ids.end(), TokenId{200007}) == 1);
  Message nameless_tool = Message::tool_result("", "x");
  CHECK_THROWS_AS(r.render_conversation(std::vector<Message>{nameless_tool}), InputError);
  Message misplaced = Message::user("x");
  misplaced.content = SystemContent{};
  CHECK_THROWS_AS(r.render_conversation(std::vector<Message>{misplaced}), InputError);
}

}  // namespace ossrun
