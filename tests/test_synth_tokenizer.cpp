// A full-vocabulary synthetic checkpoint carries the o200k_harmony tokenizer files, and they tokenize exactly as
// the rank file they were made from; a small test vocabulary gets none.
#include <doctest/doctest.h>

#include "src/synth/checkpoint_writer.h"
#include "src/synth/synth_config.h"
#include "src/tokenizer/data_paths.h"
#include "src/tokenizer/tokenizer.h"
#include "tests/support/temp_dir.h"

using namespace ossrun;

TEST_CASE("synth tokenizer: tiny-chat gets tokenizer.json that encodes like the rank file") {
  test::TempDir tmp;
  synth::WriteOptions write;
  write.tiktoken_file = default_tiktoken_path();
  const synth::WriteReport r =
      synth::write_synthetic_checkpoint(tmp.path(), synth::resolve_synth_config({"tiny-chat"}), synth::SynthOptions{}, write);
  CHECK(r.tokenizer);
  const Tokenizer from_json = Tokenizer::from_model_dir(tmp.path());
  const Tokenizer from_ranks = Tokenizer::from_tiktoken(write.tiktoken_file);
  const std::string text = "Hello, world! Ça va? 12345 <|start|> — naïve façade 🙂";
  CHECK(from_json.encode(text) == from_ranks.encode(text));
  CHECK(from_json.decode(from_json.encode(text)) == text);
  CHECK(std::filesystem::exists(tmp / "tokenizer_config.json"));
  CHECK(std::filesystem::exists(tmp / "special_tokens_map.json"));
}

TEST_CASE("synth tokenizer: a 1000-token test vocabulary gets no tokenizer files") {
  test::TempDir tmp;
  synth::WriteOptions write;
  write.tiktoken_file = default_tiktoken_path();
  const synth::WriteReport r =
      synth::write_synthetic_checkpoint(tmp.path(), synth::resolve_synth_config({"tiny"}), synth::SynthOptions{}, write);
  CHECK_FALSE(r.tokenizer);
  CHECK_FALSE(std::filesystem::exists(tmp / "tokenizer.json"));
}
