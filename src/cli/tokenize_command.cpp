// `ossrun tokenize --model DIR`: text on stdin to token ids on stdout (o200k_harmony, special-token strings as
// plain text), or ids back to text with --decode.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/model/error.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string tiktoken_file;
  bool lines = false;
  bool decode = false;
  bool count = false;
  bool specials = false;
};

Tokenizer load_tokenizer(const TokenizeOptions& o) {
  if (!o.tiktoken_file.empty()) return Tokenizer::from_tiktoken(o.tiktoken_file);
  return Tokenizer::from_model_dir(o.model_dir);
}

std::string read_all_stdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return text;
}

std::string join_ids(const std::vector<TokenId>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(' ');
    out += std::to_string(ids[i]);
  }
  return out;
}

// Ids separated by white space (and optionally commas or brackets, so JSON arrays paste in).
std::vector<TokenId> parse_ids(const std::string& text) {
  std::vector<TokenId> ids;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    size_t used = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v > UINT32_MAX) throw InputError("--decode: \"" + word + "\" is not a token id");
    ids.push_back(static_cast<TokenId>(v));
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',' || c == '[' || c == ']') {
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  return ids;
}

void run(const TokenizeOptions& o) {
  const Tokenizer tokenizer = load_tokenizer(o);
  std::string input = read_all_stdin();
  auto encode = [&](std::string_view text) {
    return o.specials ? tokenizer.encode_with_specials(text) : tokenizer.encode(text);
  };
  if (o.decode) {
    auto emit = [&](const std::string& ids_text) {
      std::string text = tokenizer.decode(parse_ids(ids_text));
      std::fwrite(text.data(), 1, text.size(), stdout);
    };
    if (!o.lines) return emit(input);
    std::istringstream in(input);
    for (std::string line; std::getline(in, line);) {
      emit(line);
      std::fputc('\n', stdout);
    }
    return;
  }
  if (!o.lines) {
    std::vector<TokenId> ids = encode(input);
    std::string out = o.count ? std::to_string(ids.size()) : join_ids(ids);
    std::printf("%s\n", out.c_str());
    return;
  }
  // --lines: each line without its "\n" (a "\r" before it stays part of the line).
  size_t start = 0;
  while (start < input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    std::vector<TokenId> ids = encode(std::string_view(input).substr(start, end - start));
    std::string out = o.count ? std::to_string(ids.size()) : join_ids(ids);
    std::printf("%s\n", out.c_str());
    start = end + 1;
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Text on stdin to o200k_harmony token ids (or back with --decode)");
  auto o = std::make_shared<TokenizeOptions>();
  auto* model = cmd->add_option("--model", o->model_dir, "Checkpoint directory holding tokenizer.json");
  auto* tiktoken = cmd->add_option("--tiktoken", o->tiktoken_file, "Use a tiktoken rank file instead of --model");
  model->excludes(tiktoken);
  cmd->add_flag("--lines", o->lines, "One output line per input line (the line's \\n is not encoded)");
  cmd->add_flag("--decode", o->decode, "Read ids (space, comma or newline separated) and print the text");
  cmd->add_flag("--count", o->count, "Print only the number of tokens");
  cmd->add_flag("--specials", o->specials, "Turn special-token strings such as <|start|> into their ids");
  cmd->footer("Examples:\n  echo 'Hello world' | ossrun tokenize --model ~/models/gpt-oss-20b\n"
              "  echo '13225 2375' | ossrun tokenize --model ~/models/gpt-oss-20b --decode");
  cmd->callback([o] {
    if (o->model_dir.empty() && o->tiktoken_file.empty()) throw CLI::RequiredError("--model");
    run(*o);
  });
}

}  // namespace ossrun::cli
