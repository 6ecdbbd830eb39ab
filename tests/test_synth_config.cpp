// Synthetic checkpoint configs: presets, overrides (flags, --config-json, --set), generation_config, byte sizes.
#include <doctest/doctest.h>

#include <fstream>

#include "src/model/error.h"
#include "tests/test_synth_util.h"

using namespace ossrun;
using namespace ossrun::synth;

TEST_CASE("model_config_to_json round-trips plain RoPE and a non-default swiglu_alpha") {
  ModelConfig c = synth_preset("tiny");
  c.rope.yarn = false;
  c.rope.theta = 10000;
  c.swiglu_alpha = 1.5;
  const ModelConfig back = parse_model_config(model_config_to_json(c), "test");
  CHECK(!back.rope.yarn);
  CHECK(back.rope.theta == 10000);
  CHECK(back.swiglu_alpha == 1.5);
  CHECK(!model_config_to_json(synth_preset("gpt-oss-20b")).contains("swiglu_alpha"));  // the published form
}

TEST_CASE("synth presets: the published config.json values") {
  const SynthConfig c20 = resolve_synth_config(SynthConfigRequest{"gpt-oss-20b"});
  CHECK(c20.document == model_config_to_json(c20.config));
  CHECK(c20.document["num_hidden_layers"] == 24);
  CHECK(c20.document["num_local_experts"] == 32);
  CHECK(c20.document["eos_token_id"] == 200002);
  CHECK(c20.document["pad_token_id"] == 199999);
  CHECK(c20.document["rope_scaling"]["truncate"] == false);
  CHECK(c20.document["quantization_config"]["quant_method"] == "mxfp4");
  CHECK(c20.document["layer_types"][0] == "sliding_attention");
  CHECK(c20.document["layer_types"][23] == "full_attention");
  const SynthConfig c120 = resolve_synth_config(SynthConfigRequest{"gpt-oss-120b"});
  CHECK(c120.config.num_hidden_layers == 36);
  CHECK(c120.config.num_local_experts == 128);
  CHECK_THROWS_WITH_AS(synth_preset("gpt-oss-7b"), doctest::Contains("tiny, tiny-chat, gpt-oss-20b, gpt-oss-120b"), InputError);

  const nlohmann::json g = generation_config_json(c20.config);
  CHECK(g["bos_token_id"] == 199998);
  CHECK(g["eos_token_id"] == nlohmann::json({200002, 199999, 200012}));
  CHECK(g["pad_token_id"] == 199999);
}

TEST_CASE("synth overrides: flags, --config-json and --set, with dependent fields kept consistent") {
  SynthConfigRequest r{"gpt-oss-20b"};
  r.fields = {{"num_hidden_layers", 3}, {"vocab_size", 5000}, {"num_experts_per_tok", 2}, {"experts_per_token", 2}};
  r.expert_format = ExpertFormat::BF16;
  r.sets = {"rope_scaling.factor=16", "rope_theta=20000", "sliding_window=64"};
  ossrun::test::TempDir dir("config");
  std::filesystem::create_directories(dir.path());
  {
    std::ofstream(dir / "patch.json") << R"({"num_local_experts": 8, "swiglu_limit": 5.0})";
  }
  r.config_json_files = {dir / "patch.json"};
  const SynthConfig c = resolve_synth_config(r);
  CHECK(c.config.num_hidden_layers == 3);
  CHECK(c.config.layer_types.size() == 3);
  CHECK(c.config.num_local_experts == 8);
  CHECK(c.config.num_experts_per_tok == 2);
  CHECK(c.config.swiglu_limit == 5.0);
  CHECK(c.config.rope.factor == 16);
  CHECK(c.config.rope.theta == 20000);
  CHECK(c.config.sliding_window == 64);
  CHECK(c.config.expert_format == ExpertFormat::BF16);
  CHECK(!c.document.contains("quantization_config"));
  CHECK(!c.document.contains("eos_token_id"));  // 200002 does not fit a 5000-token vocabulary
  CHECK(!c.document.contains("pad_token_id"));
  CHECK(parse_model_config(c.document, "written").num_hidden_layers == 3);

  SynthConfigRequest set_only{"tiny"};
  set_only.sets = {"num_experts_per_tok=2", "experimental_note=hello"};
  const SynthConfig s = resolve_synth_config(set_only);
  CHECK(s.document["experts_per_token"] == 2);
  CHECK(s.document["experimental_note"] == "hello");

  SynthConfigRequest bad{"tiny"};
  bad.fields = {{"num_key_value_heads", 3}};
  CHECK_THROWS_WITH_AS(resolve_synth_config(bad), doctest::Contains("num_key_value_heads"), InputError);
  bad.fields = {{"hidden_size", 100}};
  CHECK_THROWS_WITH_AS(resolve_synth_config(bad), doctest::Contains("multiple of 32"), InputError);
  bad.fields = {};
  bad.sets = {"no_equals_sign"};
  CHECK_THROWS_WITH_AS(resolve_synth_config(bad), doctest::Contains("key=value"), InputError);
  bad.sets = {"hidden_size.x=1"};
  CHECK_THROWS_AS(resolve_synth_config(bad), InputError);
  bad.sets = {};
  bad.config_json_files = {dir / "missing.json"};
  CHECK_THROWS_WITH_AS(resolve_synth_config(bad), doctest::Contains("missing.json"), InputError);
}

TEST_CASE("parse_byte_size") {
  CHECK(parse_byte_size("4800000000", "x") == 4'800'000'000ull);
  CHECK(parse_byte_size("4.8GB", "x") == 4'800'000'000ull);
  CHECK(parse_byte_size("100MB", "x") == 100'000'000ull);
  CHECK(parse_byte_size("64KiB", "x") == 65536ull);
  CHECK(parse_byte_size("2GiB", "x") == 2147483648ull);
  for (const char* bad : {"", "0", "-5", "12XB", "GB", "1e30"})
    CHECK_THROWS_WITH_AS(parse_byte_size(bad, "--shard-size"), doctest::Contains("--shard-size"), InputError);
}
