// Running the peer implementation (the gpt-tokenizer npm package that tools/setup.sh installs) from tests:
// node runs a small script from tests/tokenizer/ that imports the package by absolute path, reads a JSON
// request file and writes a JSON response file. Nothing is installed at test time; when node or the package is
// missing the test fails and says to run tools/setup.sh.
#pragma once
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "src/model/error.h"
#include "src/tokenizer/data_paths.h"
#include "tests/support/temp_dir.h"

namespace ossrun::test {

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline std::filesystem::path tokenizer_test_dir() { return std::filesystem::path(OSSRUN_SOURCE_DIR) / "tests/tokenizer"; }

// Runs node SCRIPT PACKAGE_DIR REQUEST RESPONSE and returns the response.
inline nlohmann::json run_peer(const std::string& script, const nlohmann::json& request) {
  REQUIRE_MESSAGE(std::system("node --version > /dev/null 2>&1") == 0,
                  "node is not on PATH; run tools/setup.sh (it installs node and the gpt-tokenizer peer)");
  std::filesystem::path package;
  try {
    package = peer_package_dir();
  } catch (const InputError& e) {
    FAIL(e.what());
  }
  TempDir dir("ossrun-peer");
  const auto request_file = dir.path() / "request.json", response_file = dir.path() / "response.json",
             log_file = dir.path() / "node.log";
  std::ofstream(request_file) << request.dump();
  std::string command = "node " + shell_quote((tokenizer_test_dir() / script).string()) + " " +
                        shell_quote(package.string()) + " " + shell_quote(request_file.string()) + " " +
                        shell_quote(response_file.string()) + " > " + shell_quote(log_file.string()) + " 2>&1";
  int rc = std::system(command.c_str());
  std::stringstream log;
  log << std::ifstream(log_file).rdbuf();
  REQUIRE_MESSAGE(rc == 0, "the peer script " << script << " failed (exit " << rc << "):\n"
                                                << log.str() << "\n(run tools/setup.sh if the package is missing)");
  std::ifstream in(response_file);
  return nlohmann::json::parse(in);
}

inline std::string base64_encode(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(alphabet[(v >> (6 * k)) & 63]);
  }
  if (size_t rest = bytes.size() - i) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

inline std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) continue;  // padding
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace ossrun::test
