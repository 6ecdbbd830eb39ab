// Checkpoint directories: config + shards + index, validated against the tensor table. One test per defect.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "src/model/checkpoint.h"
#include "src/model/error.h"
#include "src/model/inspect.h"
#include "tests/support/safetensors_writer.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;
using ossrun::test::TempDir;

namespace {

void expect_open_error(const std::filesystem::path& dir, const std::string& fragment) {
  try {
    Checkpoint::open(dir);
    FAIL("accepted a bad checkpoint; expected an error containing: " << fragment);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

test::RawTensor* find(std::vector<test::RawTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  FAIL("no tensor " << name);
  return nullptr;
}

}  // namespace

TEST_CASE("checkpoint: a single-file MXFP4 checkpoint opens and binds every weight") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  test::write_checkpoint(tmp.path(), c, tensors);
  auto ck = Checkpoint::open(tmp.path());
  CHECK(ck->shards().size() == 1);
  CHECK(ck->unused_tensors().empty());
  const ModelWeights& w = ck->weights();
  REQUIRE(w.layers.size() == 2);
  CHECK(w.layers[1].gate_up_blocks.shape == std::vector<int64_t>{4, 128, 2, 16});
  CHECK(w.lm_head.shape == std::vector<int64_t>{100, 64});
  // The bytes are the ones written.
  const auto* want = find(tensors, "model.layers.1.mlp.experts.down_proj_scales");
  const TensorView got = ck->tensor("model.layers.1.mlp.experts.down_proj_scales");
  REQUIRE(got.bytes.size() == want->bytes.size());
  CHECK(std::equal(want->bytes.begin(), want->bytes.end(), reinterpret_cast<const uint8_t*>(got.bytes.data())));
}

TEST_CASE("checkpoint: the expert slice is the expert's contiguous byte range of each fused tensor") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  test::write_checkpoint(tmp.path(), c, tensors);
  auto ck = Checkpoint::open(tmp.path());
  const ExpertSlice s = ck->expert(1, 3);
  CHECK(s.layer == 1);
  CHECK(s.expert == 3);
  CHECK(s.gate_up_blocks.shape == std::vector<int64_t>{128, 2, 16});
  CHECK(s.down_scales.shape == std::vector<int64_t>{64, 2});
  const auto* full = find(tensors, "model.layers.1.mlp.experts.gate_up_proj_blocks");
  const size_t per = full->bytes.size() / 4;
  CHECK(std::equal(full->bytes.begin() + 3 * per, full->bytes.begin() + 4 * per,
                   reinterpret_cast<const uint8_t*>(s.gate_up_blocks.bytes.data())));
  CHECK(s.nbytes() == (128 * 32 + 128 * 2 + 128 * 2) + (64 * 32 + 64 * 2 + 64 * 2));
  CHECK_THROWS_AS(ck->expert(2, 0), std::out_of_range);
  CHECK_THROWS_AS(ck->expert(0, 4), std::out_of_range);
}

TEST_CASE("checkpoint: sharded with an index, zero-based shard names") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 3);
  CHECK(std::filesystem::exists(tmp / "model-00002-of-00002.safetensors"));
  auto ck = Checkpoint::open(tmp.path());
  CHECK(ck->shards().size() == 3);
  CHECK(ck->weights().final_norm.shape == std::vector<int64_t>{64});
}

TEST_CASE("checkpoint: unquantized BF16 experts in transformers' transposed layout") {
  TempDir tmp;
  const ModelConfig c = test::micro_config(ExpertFormat::BF16);
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c));
  auto ck = Checkpoint::open(tmp.path());
  CHECK(ck->config().expert_format == ExpertFormat::BF16);
  const ExpertSlice s = ck->expert(0, 1);
  CHECK(s.gate_up_weight.shape == std::vector<int64_t>{64, 128});  // (H, 2I)
  CHECK(s.down_weight.shape == std::vector<int64_t>{64, 64});      // (I, H)
  CHECK(s.gate_up_blocks.bytes.empty());
}

TEST_CASE("checkpoint: expert-pruned checkpoint with fewer experts per layer") {
  TempDir tmp;
  ModelConfig c = test::micro_config();
  c.num_local_experts = 3;
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c));
  auto ck = Checkpoint::open(tmp.path());
  CHECK(ck->weights().layers[0].router_weight.shape == std::vector<int64_t>{3, 64});
  CHECK(ck->expert(0, 2).down_bias.shape == std::vector<int64_t>{64});
}

TEST_CASE("checkpoint: tensors the model does not use are reported, not fatal") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  tensors.push_back({"model.extra.thing", DType::U8, {2}, {1, 2}});
  test::write_checkpoint(tmp.path(), c, tensors);
  auto ck = Checkpoint::open(tmp.path());
  CHECK(ck->unused_tensors() == std::vector<std::string>{"model.extra.thing"});
}

TEST_CASE("checkpoint: missing tensor") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  tensors.erase(tensors.begin() + 5);
  const std::string name = test::micro_tensors(c)[5].name;
  test::write_checkpoint(tmp.path(), c, tensors);
  expect_open_error(tmp.path(), "tensor '" + name + "' is missing");
}

TEST_CASE("checkpoint: shape contradicting config.json") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  auto* t = find(tensors, "model.layers.0.mlp.router.weight");
  t->shape = {5, 64};
  t->bytes.resize(5 * 64 * 2);
  test::write_checkpoint(tmp.path(), c, tensors);
  expect_open_error(tmp.path(), "'model.layers.0.mlp.router.weight' is [5, 64] BF16 but config.json implies [4, 64] BF16");
}

TEST_CASE("checkpoint: dtype contradicting the format") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  auto tensors = test::micro_tensors(c);
  auto* t = find(tensors, "model.norm.weight");
  t->dtype = DType::F32;
  t->shape = {32};
  test::write_checkpoint(tmp.path(), c, tensors);
  expect_open_error(tmp.path(), "'model.norm.weight' is [32] F32 but config.json implies [64] BF16");
}

TEST_CASE("checkpoint: MXFP4 declared but BF16 experts stored") {
  TempDir tmp;
  auto tensors = test::micro_tensors(test::micro_config(ExpertFormat::BF16));
  test::write_checkpoint(tmp.path(), test::micro_config(ExpertFormat::MXFP4), tensors);
  expect_open_error(tmp.path(), "the files hold unquantized BF16 experts");
}

TEST_CASE("checkpoint: index naming a shard that is not there") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  std::filesystem::remove(tmp / "model-00001-of-00001.safetensors");
  expect_open_error(tmp.path(), "names shard 'model-00001-of-00001.safetensors'");
}

TEST_CASE("checkpoint: index placing a tensor in a shard that lacks it") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(tmp / "model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = "model-00000-of-00001.safetensors";
  std::ofstream(tmp / "model.safetensors.index.json") << index.dump();
  expect_open_error(tmp.path(), "says tensor 'model.norm.weight' is in model-00000-of-00001.safetensors");
}

TEST_CASE("checkpoint: index with a shard name outside the directory") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(tmp / "model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = "../model-00000-of-00001.safetensors";
  std::ofstream(tmp / "model.safetensors.index.json") << index.dump();
  expect_open_error(tmp.path(), "not a file name in the checkpoint directory");
}

TEST_CASE("checkpoint: index that is not valid JSON or has no weight_map") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  test::write_bytes(tmp / "model.safetensors.index.json", "{\"weight_map\": ");
  expect_open_error(tmp.path(), "model.safetensors.index.json: not valid JSON");
  test::write_bytes(tmp / "model.safetensors.index.json", "{\"metadata\": {}}");
  expect_open_error(tmp.path(), "no \"weight_map\"");
}

TEST_CASE("checkpoint: shards without an index, and no weights at all") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  std::filesystem::remove(tmp / "model.safetensors.index.json");
  expect_open_error(tmp.path(), "found 2 .safetensors files but no index");
  TempDir empty;
  std::ofstream(empty / "config.json") << model_config_to_json(c).dump();
  expect_open_error(empty.path(), "has neither model.safetensors.index.json nor model.safetensors");
}

TEST_CASE("checkpoint: missing or broken config.json") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c));
  std::filesystem::remove(tmp / "config.json");
  expect_open_error(tmp.path(), "config.json: cannot open");
  test::write_bytes(tmp / "config.json", "{\"hidden_size\": 64,");
  expect_open_error(tmp.path(), "config.json: not valid JSON");
  test::write_bytes(tmp / "config.json", "{\"hidden_size\": 64}");
  expect_open_error(tmp.path(), "\"intermediate_size\" is missing");
}

TEST_CASE("checkpoint: a truncated shard is rejected at open, naming the file") {
  TempDir tmp;
  const ModelConfig c = test::micro_config();
  test::write_checkpoint(tmp.path(), c, test::micro_tensors(c), 2);
  const auto shard = tmp / "model-00001-of-00001.safetensors";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) - 100);
  expect_open_error(tmp.path(), "model-00001-of-00001.safetensors: tensor");
}

TEST_CASE("checkpoint: not a directory") {
  TempDir tmp;
  expect_open_error(tmp / "nope", "not a directory");
}

TEST_CASE("inspect: the published shapes give the published parameter and byte counts") {
  ModelConfig c20 = test::micro_config();
  c20.hidden_size = 2880;
  c20.intermediate_size = 2880;
  c20.num_hidden_layers = 24;
  c20.num_attention_heads = 64;
  c20.num_key_value_heads = 8;
  c20.head_dim = 64;
  c20.num_local_experts = 32;
  c20.num_experts_per_tok = 4;
  c20.vocab_size = 201088;
  c20.layer_types.assign(24, LayerType::FullAttention);
  CheckpointSummary s = summarize(c20);
  CHECK(s.params == 20'914'757'184LL);
  CHECK(s.tensor_bytes == 13'761'264'768ULL);
  CHECK(s.active_params == 3'608'307'264LL);
  CHECK(s.expert_slice_bytes == 13'219'200ULL + 17'280ULL);

  ModelConfig c120 = c20;
  c120.num_hidden_layers = 36;
  c120.num_local_experts = 128;
  c120.layer_types.assign(36, LayerType::FullAttention);
  s = summarize(c120);
  CHECK(s.params == 116'829'156'672LL);
  CHECK(s.tensor_bytes == 65'248'815'744ULL);
  CHECK(s.active_params == 5'132'849'472LL);
}
