// config.json parsing: both RoPE spellings, defaults, and a clear error for each missing or nonsensical value.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "src/model/config.h"
#include "src/model/error.h"
#include "tests/support/safetensors_writer.h"

using namespace ossrun;
using nlohmann::json;

namespace {

// The published gpt-oss-20b config.json (spec §1.1), as transformers 4.55 wrote it.
json published_20b() {
  return json::parse(R"({
    "architectures": ["GptOssForCausalLM"], "attention_bias": true, "attention_dropout": 0.0,
    "eos_token_id": 200002, "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880,
    "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 2880,
    "layer_types": ["sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention",
      "full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention",
      "full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention",
      "full_attention","sliding_attention","full_attention","sliding_attention","full_attention","sliding_attention",
      "full_attention"],
    "max_position_embeddings": 131072, "model_type": "gpt_oss", "num_attention_heads": 64, "num_experts_per_tok": 4,
    "num_hidden_layers": 24, "num_key_value_heads": 8, "num_local_experts": 32, "output_router_logits": false,
    "pad_token_id": 199999,
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
      "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
      "rope_type": "yarn", "truncate": false},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
    "tie_word_embeddings": false, "transformers_version": "4.55.0.dev0", "use_cache": true, "vocab_size": 201088})");
}

void expect_config_error(const json& j, const std::string& fragment) {
  try {
    parse_model_config(j, "config.json");
    FAIL("accepted a bad config; expected an error containing: " << fragment);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("config: the published gpt-oss-20b config.json") {
  ModelConfig c = parse_model_config(published_20b(), "config.json");
  CHECK(c.hidden_size == 2880);
  CHECK(c.num_hidden_layers == 24);
  CHECK(c.num_local_experts == 32);
  CHECK(c.num_experts_per_tok == 4);
  CHECK(c.q_dim() == 4096);
  CHECK(c.kv_dim() == 512);
  CHECK(c.layer_types[0] == LayerType::SlidingAttention);
  CHECK(c.layer_types[1] == LayerType::FullAttention);
  CHECK(c.rope.yarn);
  CHECK(c.rope.theta == 150000);
  CHECK(c.rope.factor == 32);
  CHECK(c.rope.original_max_position_embeddings == 4096);
  CHECK_FALSE(c.rope.truncate);
  CHECK(c.expert_format == ExpertFormat::MXFP4);
  CHECK(c.eos_token_ids == std::vector<int64_t>{200002});
  CHECK(c.pad_token_id == 199999);
  CHECK(c.swiglu_limit == 7.0);
}

TEST_CASE("config: transformers 5 rope_parameters spelling reads the same") {
  json j = published_20b();
  json rp = j["rope_scaling"];
  rp["rope_theta"] = 150000;
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rp;
  ModelConfig a = parse_model_config(published_20b(), "a");
  ModelConfig b = parse_model_config(j, "b");
  CHECK(a.rope.theta == b.rope.theta);
  CHECK(a.rope.factor == b.rope.factor);
  CHECK(a.rope.beta_fast == b.rope.beta_fast);
  CHECK(a.rope.beta_slow == b.rope.beta_slow);
  CHECK(a.rope.truncate == b.rope.truncate);
}

TEST_CASE("config: round trip through model_config_to_json") {
  for (ExpertFormat f : {ExpertFormat::MXFP4, ExpertFormat::BF16}) {
    ModelConfig c = test::micro_config(f);
    ModelConfig d = parse_model_config(model_config_to_json(c), "x");
    CHECK(d.hidden_size == c.hidden_size);
    CHECK(d.layer_types == c.layer_types);
    CHECK(d.expert_format == c.expert_format);
    CHECK(d.rope.truncate == c.rope.truncate);
    CHECK(d.sliding_window == c.sliding_window);
    CHECK(d.eos_token_ids == c.eos_token_ids);
  }
}

TEST_CASE("config: missing required values") {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"}) {
    json j = published_20b();
    j.erase(key);
    expect_config_error(j, std::string("\"") + key + "\" is missing");
  }
  json j = published_20b();
  j.erase("num_local_experts");
  expect_config_error(j, "\"num_experts\" is missing");
}

TEST_CASE("config: nonsensical values") {
  auto with = [](const char* key, json v) {
    json j = published_20b();
    j[key] = std::move(v);
    return j;
  };
  expect_config_error(with("hidden_size", -5), "must be between 1");
  expect_config_error(with("hidden_size", "2880"), "must be an integer");
  expect_config_error(with("hidden_size", 2890), "multiple of 32");
  expect_config_error(with("num_key_value_heads", 7), "must divide num_attention_heads");
  json too_many = with("num_experts_per_tok", 40);
  too_many["experts_per_token"] = 40;
  expect_config_error(too_many, "more than the 32 experts");
  expect_config_error(with("experts_per_token", 2), "but num_experts_per_tok is 4");
  expect_config_error(with("rms_norm_eps", 0), "above 0");
  expect_config_error(with("head_dim", 63), "must be even");
  expect_config_error(with("layer_types", json::array({"sliding_attention"})), "has 1 entries but num_hidden_layers is 24");
  expect_config_error(with("model_type", "llama"), "ossrun runs \"gpt_oss\"");
  expect_config_error(with("quantization_config", json{{"quant_method", "gptq"}}), "quant_method \"gptq\"");
  expect_config_error(with("eos_token_id", 300000), "below vocab_size");
  json j = published_20b();
  j["layer_types"][3] = "local_attention";
  expect_config_error(j, "\"local_attention\"");
  j = published_20b();
  j["rope_scaling"]["rope_type"] = "linear";
  expect_config_error(j, "\"linear\"");
  j = published_20b();
  j["rope_scaling"]["beta_slow"] = 64.0;
  expect_config_error(j, "below beta_fast");
}

TEST_CASE("config: not an object") { expect_config_error(json::array({1, 2}), "not a JSON object"); }

TEST_CASE("config: absent layer_types alternate sliding and full, starting with sliding") {
  json j = published_20b();
  j.erase("layer_types");
  ModelConfig c = parse_model_config(j, "x");
  REQUIRE(c.layer_types.size() == 24);
  CHECK(c.layer_types[0] == LayerType::SlidingAttention);
  CHECK(c.layer_types[23] == LayerType::FullAttention);
}
