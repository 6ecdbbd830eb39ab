// Helpers for the GPU kernel tests (tests/test_gpu_*.cpp, built only with CUDA).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "src/gpu/device.h"

namespace ossrun::test {

// True when a GPU is usable. Otherwise says so in the test's output ("SKIPPED:", which ctest counts as a
// skip) and the caller returns.
inline bool gpu_or_skip() {
  const gpu::DeviceInfo& d = gpu::probe();
  if (d.present) return true;
  MESSAGE("SKIPPED: no GPU (" << d.reason << ")");
  return false;
}

// Checks |got[i] - want[i]| <= allowed for every i, where allowed = rtol * scale (scale: the magnitude of the
// output, e.g. its largest |value|). NaN never passes. Prints the first failures with index and values.
inline void check_close(const char* what, const std::vector<float>& got, const std::vector<double>& want, double scale,
                        double rtol) {
  REQUIRE(got.size() == want.size());
  const double allowed = rtol * scale;
  size_t bad = 0, worst_i = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= allowed)) {
      if (bad < 8)
        std::fprintf(stderr, "%s[%zu]: got %.9g, want %.9g (error %.3g, allowed %.3g)\n", what, i, got[i], want[i], err,
                     allowed);
      ++bad;
    }
    if (!std::isnan(worst) && !(err <= worst)) worst = err, worst_i = i;  // the first NaN sticks
  }
  INFO(what << ": " << bad << " of " << got.size() << " outside " << allowed << " (rtol " << rtol << " x scale " << scale
            << "); worst at [" << worst_i << "]: got " << got[worst_i] << ", want " << want[worst_i]);
  CHECK(bad == 0);
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::fmax(m, std::fabs(x));
  return m;
}

}  // namespace ossrun::test
