// What this CPU and its operating system let us run, read once from CPUID and XGETBV at run time.
//
// An instruction set is usable only when the CPU has it (CPUID) and the OS saves the register state it needs
// across context switches (XCR0 through XGETBV): a CPU with AVX-512 under an OS or hypervisor that does not
// enable the ZMM state must not run AVX-512 code. The kernel variant is chosen from these facts
// (kernels.h: isa_supported, default_isa), never from the flags of the build machine.
#pragma once
#include <string>

namespace ossrun::cpu {

struct CpuFeatures {
  // CPUID feature bits.
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool amx_bf16 = false;
  bool amx_tile = false;
  // Register state the OS has enabled in XCR0 (false when OSXSAVE is off).
  bool os_ymm = false;   // XMM and YMM state (bits 1, 2)
  bool os_zmm = false;   // opmask, ZMM_Hi256 and Hi16_ZMM state (bits 5, 6, 7)
  bool os_tile = false;  // XTILECFG and XTILEDATA state (bits 17, 18); Linux also wants arch_prctl per process

  // One line naming the features present, e.g. "avx avx2 fma f16c | os: ymm".
  std::string describe() const;
};

// The features of the CPU this process runs on (detected on first call).
const CpuFeatures& cpu_features();

}  // namespace ossrun::cpu
