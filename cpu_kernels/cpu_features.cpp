// CPUID/XGETBV feature detection and the run-time choice of the kernel table.
#include "cpu_kernels/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_kernels/kernels.h"
#include "src/model/error.h"

namespace ossrun::cpu {

// Defined in the ISA translation units (kernels_*.cpp); each returns a constant table.
const KernelTable& scalar_kernel_table();
const KernelTable& avx2_kernel_table();
const KernelTable& avx512_kernel_table();

namespace {

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }

// XGETBV with ECX = 0 (XCR0). Inline assembly instead of _xgetbv so this file needs no -mxsave.
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  const uint32_t max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  const CpuidRegs l1 = cpuid(1, 0);
  f.fma = bit(l1.ecx, 12);
  f.avx = bit(l1.ecx, 28);
  f.f16c = bit(l1.ecx, 29);
  const bool osxsave = bit(l1.ecx, 27);
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;
    f.os_zmm = f.os_ymm && (xcr0 & 0xe0) == 0xe0;
    f.os_tile = (xcr0 & 0x60000) == 0x60000;
  }
  if (max_leaf >= 7) {
    const CpuidRegs l7 = cpuid(7, 0);
    f.avx2 = bit(l7.ebx, 5);
    f.avx512f = bit(l7.ebx, 16);
    f.avx512bw = bit(l7.ebx, 30);
    f.avx512vl = bit(l7.ebx, 31);
    f.avx512vnni = bit(l7.ecx, 11);
    f.amx_bf16 = bit(l7.edx, 22);
    f.amx_tile = bit(l7.edx, 24);
    if (l7.eax >= 1) f.avx512bf16 = bit(cpuid(7, 1).eax, 5);
  }
  return f;
}

// What `isa` needs that this CPU/OS lacks; empty when it can run.
std::vector<std::string> missing_for(Isa isa) {
  const CpuFeatures& f = cpu_features();
  std::vector<std::string> missing;
  auto need = [&](bool have, const char* what) {
    if (!have) missing.emplace_back(what);
  };
  switch (isa) {
    case Isa::Scalar:
      break;
    case Isa::Avx512:
      need(f.avx512f, "avx512f");
      need(f.avx512bw, "avx512bw");
      need(f.avx512vl, "avx512vl");
      need(f.os_zmm, "OS-enabled ZMM state (XCR0)");
      [[fallthrough]];  // the AVX-512 translation unit is also built with AVX2/FMA/F16C
    case Isa::Avx2:
      need(f.avx2, "avx2");
      need(f.fma, "fma");
      need(f.f16c, "f16c");
      need(f.os_ymm, "OS-enabled YMM state (XCR0)");
      break;
  }
  return missing;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& item : items) {
    if (!s.empty()) s += ", ";
    s += item;
  }
  return s;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&](bool have, const char* name) {
    if (!have) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512vnni");
  add(avx512bf16, "avx512bf16");
  add(amx_bf16, "amx-bf16");
  add(amx_tile, "amx-tile");
  s += " | os:";
  if (os_ymm) s += " ymm";
  if (os_zmm) s += " zmm";
  if (os_tile) s += " tile";
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "unknown";
}

bool isa_supported(Isa isa) { return missing_for(isa).empty(); }

Isa default_isa() {
  const char* env = std::getenv("OSSRUN_ISA");
  if (env == nullptr || *env == '\0') {
    for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
      if (isa_supported(isa)) return isa;
    }
    return Isa::Scalar;
  }
  const std::string requested = env;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (requested != isa_name(isa)) continue;
    const auto missing = missing_for(isa);
    if (!missing.empty()) {
      throw InputError("OSSRUN_ISA=" + requested + " asks for kernels this machine cannot run: it lacks " +
                       join(missing) + " (detected: " + cpu_features().describe() + ")");
    }
    return isa;
  }
  throw InputError("OSSRUN_ISA=" + requested + " is not an instruction set ossrun knows: expected scalar, avx2 or avx512");
}

const KernelTable& kernels(Isa isa) {
  const auto missing = missing_for(isa);
  if (!missing.empty()) {
    throw std::runtime_error(std::string("the ") + isa_name(isa) + " kernels cannot run on this machine: it lacks " +
                             join(missing));
  }
  switch (isa) {
    case Isa::Scalar:
      return scalar_kernel_table();
    case Isa::Avx2:
      return avx2_kernel_table();
    case Isa::Avx512:
      return avx512_kernel_table();
  }
  throw std::runtime_error("unknown instruction set");
}

}  // namespace ossrun::cpu
