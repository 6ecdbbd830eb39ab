// End-to-end goldens: the CPU engine against transformers (tools/reference/make_golden.py, run on the GPU
// host) on synthetic checkpoints, for every kernel ISA this CPU runs (tests/support/golden.h says what is
// compared). No golden directory at all is a failure, so a missing golden cannot pass silently.
#include <doctest/doctest.h>

#include "src/engine/session.h"
#include "tests/support/golden.h"

using namespace ossrun;

namespace {

std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

}  // namespace

TEST_CASE("engine goldens: transformers' logits and greedy continuations on synthetic checkpoints") {
  const auto files = test::golden_files();
  REQUIRE_MESSAGE(!files.empty(), "no tests/goldens/<name>/golden.json: the end-to-end check has nothing to compare");
  for (const auto& f : files) {
    const test::Golden g = test::load_golden(f);
    test::TempDir dir("ossrun-golden");
    auto ck = test::golden_checkpoint(g, dir);
    for (cpu::Isa isa : supported_isas()) {
      INFO(g.name << ", isa " << std::string(cpu::isa_name(isa)));
      engine::Session s(*ck, {.ctx = static_cast<int64_t>(g.prompt.size() + g.greedy.size()) + 1,
                              .isa = isa,
                              .prefill_batch = 16,
                              .backend = engine::Backend::Cpu});
      const double worst = test::check_session_against_golden(s, g);
      MESSAGE(g.name << " " << std::string(cpu::isa_name(isa)) << ": max relative logit error " << worst);
    }
  }
}
