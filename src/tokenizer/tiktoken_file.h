// tiktoken rank files (`o200k_base.tiktoken`): one line per mergeable token, "BASE64 RANK", ranks 0, 1, 2, ...
// in order. A token's rank is its id.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace ossrun {

// The token byte strings indexed by rank. Throws InputError naming the file and line when a line is not
// "base64 rank", the ranks are not 0..n-1 in order, a token repeats, or a single byte has no token.
std::vector<std::string> read_tiktoken_ranks(const std::filesystem::path& file);

}  // namespace ossrun
