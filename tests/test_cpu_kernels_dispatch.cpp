// Run-time ISA choice: CPUID/XGETBV detection (cross-checked against the kernel's view in /proc/cpuinfo),
// OSSRUN_ISA, and the kernel tables handed out per ISA.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "cpu_kernels/cpu_features.h"
#include "cpu_kernels/kernels.h"
#include "src/model/error.h"

namespace ossrun::cpu {
namespace {

// The flags of the first processor in /proc/cpuinfo; empty when the file is absent (not Linux).
std::set<std::string> proc_cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

// Sets OSSRUN_ISA for one scope and restores the previous value.
class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    if (const char* old = std::getenv("OSSRUN_ISA")) old_ = old;
    setenv("OSSRUN_ISA", value, 1);
  }
  ~ScopedIsaEnv() {
    if (old_) {
      setenv("OSSRUN_ISA", old_->c_str(), 1);
    } else {
      unsetenv("OSSRUN_ISA");
    }
  }

 private:
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("cpu_features agrees with the flags Linux reports in /proc/cpuinfo") {
  const auto flags = proc_cpuinfo_flags();
  if (flags.empty()) {
    MESSAGE("no /proc/cpuinfo here; nothing to compare with");
    return;
  }
  const CpuFeatures& f = cpu_features();
  INFO("detected: " << f.describe());
  // Linux clears the AVX, AVX-512 and AMX flags (and those depending on them) itself when the register state is
  // not enabled, so its flags correspond to "CPUID says so and XCR0 allows it".
  CHECK((f.avx2 && f.os_ymm) == flags.count("avx2"));
  CHECK((f.fma && f.os_ymm) == flags.count("fma"));
  CHECK(f.f16c == flags.count("f16c"));
  CHECK((f.avx512f && f.os_zmm) == flags.count("avx512f"));
  CHECK((f.avx512bw && f.os_zmm) == flags.count("avx512bw"));
  CHECK((f.avx512vl && f.os_zmm) == flags.count("avx512vl"));
  CHECK((f.avx512vnni && f.os_zmm) == flags.count("avx512_vnni"));
  CHECK((f.avx512bf16 && f.os_zmm) == flags.count("avx512_bf16"));
  CHECK((f.amx_tile && f.os_tile) == flags.count("amx_tile"));
  CHECK((f.amx_bf16 && f.os_tile) == flags.count("amx_bf16"));
}

TEST_CASE("each supported ISA hands out a complete table tagged with its ISA; unsupported ones throw") {
  CHECK(isa_supported(Isa::Scalar));
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    INFO("isa=" << isa_name(isa));
    if (!isa_supported(isa)) {
      CHECK_THROWS_WITH_AS(kernels(isa), doctest::Contains("lacks"), std::runtime_error);
      continue;
    }
    const KernelTable& t = kernels(isa);
    CHECK(t.isa == isa);
    CHECK((t.matvec_bf16 != nullptr));
    CHECK((t.matvec_bf16_t != nullptr));
    CHECK((t.matvec_mxfp4 != nullptr));
    CHECK((t.gate_up_swiglu_mxfp4 != nullptr));
    CHECK((t.dequantize_mxfp4_bf16 != nullptr));
  }
  // A wider ISA implies the narrower ones (the AVX-512 kernels also use AVX2/FMA/F16C).
  if (isa_supported(Isa::Avx512)) CHECK(isa_supported(Isa::Avx2));
}

TEST_CASE("default_isa picks the widest supported ISA unless OSSRUN_ISA names another") {
  {
    ScopedIsaEnv env("");
    const Isa widest = isa_supported(Isa::Avx512) ? Isa::Avx512 : isa_supported(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar;
    CHECK(default_isa() == widest);
  }
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    INFO("isa=" << isa_name(isa));
    ScopedIsaEnv env(isa_name(isa));
    if (isa_supported(isa)) {
      CHECK(default_isa() == isa);
      CHECK(default_kernels().isa == isa);
    } else {
      CHECK_THROWS_WITH_AS(default_isa(), doctest::Contains("lacks"), InputError);
    }
  }
  ScopedIsaEnv env("avx1024");
  CHECK_THROWS_WITH_AS(default_isa(), doctest::Contains("OSSRUN_ISA=avx1024 is not an instruction set"), InputError);
}

}  // namespace ossrun::cpu
