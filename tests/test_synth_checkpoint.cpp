// Writing synthetic checkpoints: round trip through Checkpoint::open, sharding and the index, determinism,
// the BF16 expert layout, sparse experts, and the published shapes.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "src/model/bf16.h"
#include "src/model/checkpoint.h"
#include "src/model/error.h"
#include "src/model/inspect.h"
#include "src/model/mxfp4.h"
#include "src/synth/checkpoint_writer.h"
#include "tests/test_synth_util.h"

using namespace ossrun;
using namespace ossrun::synth;
using ossrun::test::TempDir;

namespace {

bool same_bytes(const TensorView& v, const std::vector<std::byte>& want) {
  return v.bytes.size() == want.size() && std::memcmp(v.bytes.data(), want.data(), want.size()) == 0;
}

// Every tensor in the checkpoint equals what SyntheticWeights generates in memory.
void check_tensors_equal_generated(const Checkpoint& ck, const SyntheticWeights& w) {
  for (size_t i = 0; i < w.specs().size(); ++i) {
    INFO(w.specs()[i].name);
    CHECK(same_bytes(ck.tensor(w.specs()[i].name), w.tensor_bytes(i)));
  }
}

}  // namespace

TEST_CASE("synth round trip: a tiny checkpoint reads back with every tensor as generated") {
  TempDir dir("roundtrip");
  const SynthConfig config = testing::tiny_config();
  const SynthOptions options{/*seed=*/42};
  const WriteReport report = write_synthetic_checkpoint(dir.path(), config, options, WriteOptions{.threads = 3});
  CHECK(report.shards == 1);
  CHECK(report.written_bytes == report.file_bytes);

  const auto ck = Checkpoint::open(dir.path());
  CHECK(ck->unused_tensors().empty());
  CHECK(model_config_to_json(ck->config()) == model_config_to_json(config.config));
  CHECK(nlohmann::json::parse(testing::read_file(dir / "config.json")) == config.document);
  const SyntheticWeights w(config.config, options);
  check_tensors_equal_generated(*ck, w);

  // The written MXFP4 is canonical: dequantizing and quantizing again gives the same bytes.
  for (const LayerWeights& lw : ck->weights().layers) {
    for (auto [blocks, scales] : {std::pair{&lw.gate_up_blocks, &lw.gate_up_scales}, std::pair{&lw.down_blocks, &lw.down_scales}}) {
      const int64_t n = scales->numel();
      int mismatches = 0;
      for (int64_t b = 0; b < n; ++b) {
        float v[32];
        mxfp4::dequantize_row(blocks->u8_data() + 16 * b, scales->u8_data() + b, 32, v);
        uint8_t packed[16], scale;
        mxfp4::quantize_block(v, packed, &scale);
        mismatches += scale != scales->u8_data()[b] || std::memcmp(packed, blocks->u8_data() + 16 * b, 16) != 0;
      }
      CHECK(mismatches == 0);
    }
  }

  const auto index = nlohmann::json::parse(testing::read_file(dir / "model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == summarize(config.config).tensor_bytes);
  CHECK(index["weight_map"].size() == w.specs().size());
  const auto generation = nlohmann::json::parse(testing::read_file(dir / "generation_config.json"));
  CHECK(!generation.contains("eos_token_id"));  // vocabulary 1000 holds none of the harmony ids
}

TEST_CASE("synth sharding: --shard-size splits greedily in key order and the index names the right files") {
  TempDir dir("shards");
  const SynthConfig config = testing::tiny_config();
  constexpr uint64_t kCap = 700'000;
  write_synthetic_checkpoint(dir.path(), config, SynthOptions{}, WriteOptions{.max_shard_bytes = kCap});
  const SyntheticWeights w(config.config, SynthOptions{});
  const ShardPlan plan = plan_shards(w.specs(), kCap);
  REQUIRE(plan.files.size() > 3);
  const size_t last = plan.files.size() - 1;
  char want_last[64];
  std::snprintf(want_last, sizeof want_last, "model-%05zu-of-%05zu.safetensors", last, last);
  CHECK(plan.files.back().name == want_last);
  CHECK(plan.files.front().name.substr(0, 11) == "model-00000");

  const auto index = nlohmann::json::parse(testing::read_file(dir / "model.safetensors.index.json"));
  std::set<std::string> files_named;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    const std::string file = it.value();
    files_named.insert(file);
    const SafetensorsFile shard(dir / file);
    CHECK_MESSAGE(shard.contains(it.key()), it.key() << " not in " << file);
  }
  CHECK(files_named.size() == plan.files.size());

  // Greedy: no shard over the cap unless one tensor is larger; the next tensor in key order would have overflowed.
  const std::vector<size_t> order = published_key_order(w.specs());
  std::vector<size_t> shard_of(w.specs().size());
  std::vector<uint64_t> data(plan.files.size());
  for (size_t s = 0; s < plan.files.size(); ++s) {
    data[s] = plan.files[s].data_bytes;
    for (const ShardTensor& t : plan.files[s].tensors) shard_of[t.spec] = s;
    CHECK(std::filesystem::file_size(dir / plan.files[s].name) == plan.files[s].file_size());
    CHECK((data[s] <= kCap || plan.files[s].tensors.size() == 1));
  }
  for (size_t k = 0; k + 1 < order.size(); ++k) {
    const size_t a = shard_of[order[k]], b = shard_of[order[k + 1]];
    CHECK((b == a || b == a + 1));
    if (b == a + 1) CHECK(data[a] + w.specs()[order[k + 1]].nbytes() > kCap);
  }

  const auto ck = Checkpoint::open(dir.path());
  CHECK(ck->shards().size() == plan.files.size());
  check_tensors_equal_generated(*ck, w);
}

TEST_CASE("synth determinism: same seed, same bytes, whatever the thread count or I/O path") {
  TempDir one("threads1"), many("threads5"), other("seed2");
  const SynthConfig config = testing::tiny_config({{"num_local_experts", 4}, {"num_experts_per_tok", 2}});
  write_synthetic_checkpoint(one.path(), config, SynthOptions{1},
                             WriteOptions{.max_shard_bytes = 1'000'000, .threads = 1, .direct_io = false});
  write_synthetic_checkpoint(many.path(), config, SynthOptions{1}, WriteOptions{.max_shard_bytes = 1'000'000, .threads = 5});
  write_synthetic_checkpoint(other.path(), config, SynthOptions{2}, WriteOptions{.max_shard_bytes = 1'000'000, .threads = 5});
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(one.path())) {
    INFO(e.path().filename());
    const std::string name = e.path().filename().string();
    CHECK(testing::read_file(e.path()) == testing::read_file(many / name));
    if (e.path().extension() == ".safetensors") CHECK(testing::read_file(e.path()) != testing::read_file(other / name));
    ++files;
  }
  CHECK(files > 4);
}

TEST_CASE("synth --expert-format bf16 holds the same experts, dequantized and transposed to [E, in, out]") {
  TempDir mx("mxfp4"), dense("bf16");
  const SynthOptions options{/*seed=*/9};
  write_synthetic_checkpoint(mx.path(), testing::tiny_config({}, ExpertFormat::MXFP4), options, WriteOptions{});
  write_synthetic_checkpoint(dense.path(), testing::tiny_config({}, ExpertFormat::BF16), options, WriteOptions{});
  const auto a = Checkpoint::open(mx.path()), b = Checkpoint::open(dense.path());
  REQUIRE(b->config().expert_format == ExpertFormat::BF16);
  const ModelConfig& c = a->config();
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (int e = 0; e < c.num_local_experts; ++e) {
      const ExpertSlice q = a->expert(l, e), d = b->expert(l, e);
      int mismatches = 0;
      const int64_t H = c.hidden_size, I = c.intermediate_size;
      for (int64_t o = 0; o < 2 * I; ++o)  // gate_up: logical [2I, H], dense [H, 2I]
        for (int64_t h = 0; h < H; ++h)
          mismatches += mxfp4::element(q.gate_up_blocks.u8_data() + o * H / 2, q.gate_up_scales.u8_data() + o * H / 32, h) !=
                        bf16_to_float(d.gate_up_weight.bf16_data()[h * 2 * I + o]);
      for (int64_t o = 0; o < H; ++o)  // down: logical [H, I], dense [I, H]
        for (int64_t i = 0; i < I; ++i)
          mismatches += mxfp4::element(q.down_blocks.u8_data() + o * I / 2, q.down_scales.u8_data() + o * I / 32, i) !=
                        bf16_to_float(d.down_weight.bf16_data()[i * H + o]);
      CHECK(mismatches == 0);
      CHECK(std::memcmp(q.gate_up_bias.bytes.data(), d.gate_up_bias.bytes.data(), q.gate_up_bias.bytes.size()) == 0);
    }
  }
  for (const TensorSpec& s : expected_tensors(c))
    if (s.component != Component::Experts) CHECK_MESSAGE(a->tensor(s.name).bytes.size() == b->tensor(s.name).bytes.size(), s.name);
  CHECK(std::memcmp(a->weights().embed.bytes.data(), b->weights().embed.bytes.data(), a->weights().embed.bytes.size()) == 0);
}

TEST_CASE("synth --sparse-experts leaves the expert weights as holes and everything else real") {
  TempDir dir("sparse");
  const SynthConfig config = testing::tiny_config(
      {{"num_hidden_layers", 1}, {"hidden_size", 1024}, {"intermediate_size", 1024}, {"num_local_experts", 16}});
  SynthOptions options;
  options.sparse_experts = true;
  const WriteReport report = write_synthetic_checkpoint(dir.path(), config, options, WriteOptions{});
  CHECK(report.written_bytes < report.file_bytes / 2);
  const auto ck = Checkpoint::open(dir.path());
  struct stat st {};
  REQUIRE(::stat(ck->shards()[0]->path().c_str(), &st) == 0);
  CHECK(uint64_t(st.st_blocks) * 512 < report.file_bytes / 2);  // allocated, not apparent, size
  const SyntheticWeights w(config.config, options);
  for (size_t i = 0; i < w.specs().size(); ++i) {
    INFO(w.specs()[i].name);
    const TensorView v = ck->tensor(w.specs()[i].name);
    if (w.is_hole(i)) {
      CHECK(std::all_of(v.bytes.begin(), v.bytes.end(), [](std::byte b) { return b == std::byte{0}; }));
    } else {
      CHECK(same_bytes(v, w.tensor_bytes(i)));
    }
  }
}

TEST_CASE("synth refuses a non-empty directory unless told to replace the checkpoint in it") {
  TempDir dir("nonempty");
  { std::ofstream(dir / "notes.txt") << "keep me"; }
  { std::ofstream(dir / "model-00007-of-00009.safetensors") << "stale"; }
  const SynthConfig config = testing::tiny_config();
  CHECK_THROWS_AS(write_synthetic_checkpoint(dir.path(), config, SynthOptions{}, WriteOptions{}), InputError);
  write_synthetic_checkpoint(dir.path(), config, SynthOptions{}, WriteOptions{.overwrite = true});
  CHECK(std::filesystem::exists(dir / "notes.txt"));
  CHECK(!std::filesystem::exists(dir / "model-00007-of-00009.safetensors"));
  CHECK(Checkpoint::open(dir.path())->shards().size() == 1);
  TempDir parent("notadir");
  { std::ofstream(parent / "file") << "x"; }
  CHECK_THROWS_AS(write_synthetic_checkpoint(parent / "file", config, SynthOptions{}, WriteOptions{}), InputError);
}

TEST_CASE("synth shard plan of the 20b and 120b presets matches the published checkpoints") {
  const ShardPlan p20 = plan_shards(expected_tensors(synth_preset("gpt-oss-20b")), kDefaultMaxShardBytes);
  REQUIRE(p20.files.size() == 3);
  // Sizes of the published files (git-LFS pointers of the HF repo, gpt-oss.md §1.2).
  const uint64_t published[] = {4'792'272'488, 4'798'702'184, 4'170'342'232};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(p20.files[i].name == "model-0000" + std::to_string(i) + "-of-00002.safetensors");
    CHECK(p20.files[i].file_size() == published[i]);
  }
  CHECK(p20.total_size == 13'761'264'768ull);
  const ShardPlan p120 = plan_shards(expected_tensors(synth_preset("gpt-oss-120b")), kDefaultMaxShardBytes);
  CHECK(p120.files.size() == 15);
  CHECK(p120.files.back().name == "model-00014-of-00014.safetensors");
  CHECK(p120.total_size == 65'248'815'744ull);
}

TEST_CASE("synth presets: summarize gives the published parameter and byte counts") {
  const CheckpointSummary s20 = summarize(synth_preset("gpt-oss-20b"));
  CHECK(s20.params == 20'914'757'184);
  CHECK(s20.tensor_bytes == 13'761'264'768ull);
  CHECK(s20.active_params == 3'608'307'264);
  const CheckpointSummary s120 = summarize(synth_preset("gpt-oss-120b"));
  CHECK(s120.params == 116'829'156'672);
  CHECK(s120.tensor_bytes == 65'248'815'744ull);
  CHECK(s120.active_params == 5'132'849'472);
}
