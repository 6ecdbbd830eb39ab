#include "src/tokenizer/tiktoken_file.h"

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "src/model/error.h"

namespace ossrun {
namespace {

// Standard base64 with '=' padding; false on any other character or a bad length.
bool decode_base64(std::string_view in, std::string& out) {
  static const std::array<int8_t, 256> value = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  if (in.empty() || in.size() % 4 != 0) return false;
  size_t pad = in.back() == '=' ? (in[in.size() - 2] == '=' ? 2 : 1) : 0;
  out.clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t acc = 0;
    for (size_t k = 0; k < 4; ++k) {
      unsigned char c = static_cast<unsigned char>(in[i + k]);
      bool padding = i + 4 == in.size() && k >= 4 - pad;
      if (padding) {
        if (c != '=') return false;
        acc <<= 6;
        continue;
      }
      if (value[c] < 0) return false;
      acc = (acc << 6) | static_cast<uint32_t>(value[c]);
    }
    out.push_back(static_cast<char>(acc >> 16));
    if (i + 4 < in.size() || pad < 2) out.push_back(static_cast<char>((acc >> 8) & 0xFF));
    if (i + 4 < in.size() || pad < 1) out.push_back(static_cast<char>(acc & 0xFF));
  }
  return true;
}

}  // namespace

std::vector<std::string> read_tiktoken_ranks(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError("cannot open the tiktoken rank file " + file.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  std::vector<std::string> tokens;
  std::unordered_set<std::string_view> seen;
  auto fail = [&](size_t line, const std::string& what) -> void {
    throw InputError(file.string() + ":" + std::to_string(line) + ": " + what);
  };
  std::string bytes;
  size_t pos = 0;
  for (size_t line = 1; pos < text.size(); ++line) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view row(text.data() + pos, end - pos);
    pos = end + 1;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (row.empty()) {
      if (pos >= text.size()) break;  // a final newline
      fail(line, "empty line");
    }
    size_t space = row.find(' ');
    if (space == std::string_view::npos) fail(line, "expected \"BASE64 RANK\", found no space");
    std::string_view rank_text = row.substr(space + 1);
    uint64_t rank = 0;
    auto [ptr, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || ptr != rank_text.data() + rank_text.size())
      fail(line, "the rank \"" + std::string(rank_text) + "\" is not a non-negative integer");
    if (rank != tokens.size())
      fail(line, "expected rank " + std::to_string(tokens.size()) + " (ranks must be 0, 1, 2, ... in order), found " +
                     std::to_string(rank));
    if (!decode_base64(row.substr(0, space), bytes))
      fail(line, "the token \"" + std::string(row.substr(0, space)) + "\" is not valid base64");
    tokens.push_back(bytes);
  }
  if (tokens.empty()) throw InputError(file.string() + ": no tokens (is this a tiktoken rank file?)");
  seen.reserve(tokens.size());
  std::array<bool, 256> single_byte{};
  for (size_t rank = 0; rank < tokens.size(); ++rank) {
    if (!seen.insert(tokens[rank]).second) fail(rank + 1, "the token of rank " + std::to_string(rank) + " repeats");
    if (tokens[rank].size() == 1) single_byte[static_cast<unsigned char>(tokens[rank][0])] = true;
  }
  for (int b = 0; b < 256; ++b)
    if (!single_byte[b])
      throw InputError(file.string() + ": no token for the single byte " + std::to_string(b) +
                       " (every byte needs one for byte-level BPE)");
  return tokens;
}

}  // namespace ossrun
