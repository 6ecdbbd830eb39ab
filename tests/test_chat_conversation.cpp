// The chat's conversation file (/save, /load): a round trip keeps every field; each kind of bad file is an
// InputError that names the field and what is wrong.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "src/chat/conversation.h"
#include "src/model/error.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using nlohmann::json;

namespace {

chat::Conversation sample_conversation() {
  chat::Conversation c;
  c.settings.effort = ReasoningEffort::kHigh;
  c.settings.developer = "Answer in French.";
  c.settings.sampling = {.temperature = 0.5f, .top_p = 0.9f, .top_k = 40, .min_p = 0.05f, .seed = 18446744073709551615ull};
  c.settings.max_tokens = 77;
  c.messages.push_back({.role = Role::kUser, .channel = "", .content = "Bonjour \"toi\"\nligne 2 🙂", .interrupted = false, .tokens = {}});
  c.messages.push_back({.role = Role::kAssistant, .channel = "analysis", .content = "think", .interrupted = false, .tokens = {1, 2}});
  c.messages.push_back({.role = Role::kAssistant, .channel = "final", .content = "Salut", .interrupted = true, .tokens = {}});
  return c;
}

std::string load_error(const json& j) {
  try {
    chat::conversation_from_json(j, "f.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("chat conversation JSON: save then load gives back settings and messages") {
  test::TempDir dir("ossrun-chat");
  const chat::Conversation c = sample_conversation();
  const std::string path = (dir / "c.json").string();
  chat::save_conversation(c, path);
  const chat::Conversation d = chat::load_conversation(path);
  CHECK(d.settings.effort == ReasoningEffort::kHigh);
  CHECK(!d.settings.system);
  CHECK(d.settings.developer == "Answer in French.");
  CHECK(d.settings.sampling.temperature == 0.5f);
  CHECK(d.settings.sampling.top_p == 0.9f);
  CHECK(d.settings.sampling.top_k == 40);
  CHECK(d.settings.sampling.min_p == 0.05f);
  CHECK(d.settings.sampling.seed == 18446744073709551615ull);
  CHECK(d.settings.max_tokens == 77);
  REQUIRE(d.messages.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(d.messages[i].role == c.messages[i].role);
    CHECK(d.messages[i].channel == c.messages[i].channel);
    CHECK(d.messages[i].content == c.messages[i].content);
    CHECK(d.messages[i].interrupted == c.messages[i].interrupted);
    CHECK(d.messages[i].tokens.empty());  // sampled tokens are not saved
  }
  CHECK(chat::to_json(d) == chat::to_json(c));
}

TEST_CASE("chat conversation JSON: each bad file names its problem") {
  const json good = chat::to_json(sample_conversation());
  json j = good;
  j["format"] = "other";
  CHECK(load_error(j) == "f.json: format: expected \"ossrun-chat\", found \"other\"");
  j = good;
  j["version"] = 2;
  CHECK(load_error(j) == "f.json: version: this ossrun reads version 1, found 2");
  j = good;
  j.erase("messages");
  CHECK(load_error(j) == "f.json: the file: missing \"messages\"");
  j = good;
  j["messages"][1]["role"] = "bot";
  CHECK(load_error(j).starts_with("f.json: messages[1].role: expected \"user\" or \"assistant\", found \"bot\""));
  j = good;
  j["messages"][2]["channel"] = "shout";
  CHECK(load_error(j) == "f.json: messages[2].channel: expected \"analysis\", \"commentary\" or \"final\", found \"shout\"");
  j = good;
  j["messages"][0]["channel"] = "final";
  CHECK(load_error(j) == "f.json: messages[0].channel: a user message has no channel");
  j = good;
  j["messages"][0]["content"] = 5;
  CHECK(load_error(j) == "f.json: messages[0].content: expected a string, found 5");
  j = good;
  j["messages"][1].erase("channel");
  CHECK(load_error(j) == "f.json: messages[1]: missing \"channel\"");
  j = good;
  j["messages"][2]["interrupted"] = "yes";
  CHECK(load_error(j) == "f.json: messages[2].interrupted: expected true or false, found \"yes\"");
  j = good;
  j["settings"]["temprature"] = 1;
  CHECK(load_error(j) == "f.json: settings: unknown key \"temprature\"");
  j = good;
  j["settings"]["effort"] = "max";
  CHECK(load_error(j) == "f.json: settings.effort: expected \"low\", \"medium\" or \"high\", found \"max\"");
  j = good;
  j["settings"]["top_k"] = -1;
  CHECK(load_error(j) == "f.json: settings.top_k: expected at least 0, found -1");
  j = good;
  j["settings"]["max_tokens"] = 1.5;
  CHECK(load_error(j) == "f.json: settings.max_tokens: expected an integer, found 1.5");
  j = good;
  j["settings"]["top_p"] = 0;
  CHECK(load_error(j).starts_with("f.json: settings: "));  // the sampler's own range check, named
  j = good;
  j["messages"] = json::array({good["messages"][1]});
  CHECK(load_error(j) == "f.json: messages[0]: the conversation must begin with a user message");
  CHECK(load_error(json::array()) == "f.json: the file: expected an object, found array");

  test::TempDir dir("ossrun-chat");
  { std::ofstream(dir / "bad.json") << "{ not json"; }
  CHECK_THROWS_AS(chat::load_conversation((dir / "bad.json").string()), InputError);
  CHECK_THROWS_AS(chat::load_conversation((dir / "missing.json").string()), InputError);
  CHECK_THROWS_AS(chat::save_conversation(sample_conversation(), (dir / "no/such/dir/c.json").string()), InputError);
}
