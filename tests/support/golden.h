// The end-to-end golden check shared by the CPU and GPU engine tests (tests/goldens/<name>/golden.json,
// made by tools/reference/make_goldens.sh with transformers).
//
// A golden records the `ossrun synth` flags of its checkpoint (synth is deterministic from its seed), the
// prompt ids, per-position logits (full rows, or the top 32 with the row's log-sum-exp) and the greedy
// continuation. check_session_against_golden requires per position max|logit - golden| / max|golden| <=
// 5e-3, the same top-1 on every prompt position, and the same greedy continuation.
#pragma once
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/engine/session.h"
#include "src/model/checkpoint.h"
#include "tests/support/temp_dir.h"

namespace ossrun::test {

constexpr double kGoldenTolerance = 5e-3;  // max |logit - golden| / max |golden| per position

struct Golden {
  std::string name;  // the golden's directory name
  nlohmann::json json;
  std::vector<int32_t> prompt, greedy;
  std::vector<double> margins;  // golden top-2 margin at each greedy step (may be empty)
};

// Every tests/goldens/<name>/golden.json, sorted.
std::vector<std::filesystem::path> golden_files();
Golden load_golden(const std::filesystem::path& file);

// The golden's checkpoint, regenerated into `dir` with the built ossrun binary (REQUIREs success).
std::unique_ptr<Checkpoint> golden_checkpoint(const Golden& g, const TempDir& dir);

// Prefills the prompt (every position's logits checked), then decodes greedily with Session::decode (or,
// with sample_in_session, with set_sampler(greedy) + prefill_next/decode_next) and compares the continuation.
// Returns the worst relative logit error seen.
double check_session_against_golden(engine::Session& s, const Golden& g, bool sample_in_session = false);

}  // namespace ossrun::test
