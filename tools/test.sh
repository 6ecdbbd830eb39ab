#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, a Release build with warnings as errors (the CUDA code
# compiled too when nvcc is present, for one architecture: OSSRUN_CUDA_ARCHS, default 90), every ctest test,
# then the same tests again in a CPU-only build under AddressSanitizer and UndefinedBehaviorSanitizer.
# GPU tests run only where a GPU is present and say so when skipped.
#   OSSRUN_TEST_JOBS   parallel build/test jobs (default: number of cores)
#   OSSRUN_NO_ASAN=1   skip the sanitizer pass (quicker local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${OSSRUN_TEST_JOBS:-$(nproc)}"

tools/setup.sh
mkdir -p build

step() { echo; echo "== $* =="; }

step "Release build (build/test)"
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSSRUN_WERROR=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${OSSRUN_CUDA_ARCHS:-90}" >build/test.configure.log 2>&1 ||
  { cat build/test.configure.log; exit 1; }
grep -E "ossrun: CUDA backend" build/test.configure.log || true
cmake --build build/test -j "$jobs"
step "tests (Release)"
ctest --test-dir build/test --output-on-failure -j "$jobs"

if [ "${OSSRUN_NO_ASAN:-0}" != 1 ]; then
  step "AddressSanitizer + UBSan build (build/asan, CPU only)"
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOSSRUN_CUDA=OFF -DOSSRUN_WERROR=ON \
    -DOSSRUN_SANITIZE=address,undefined >build/asan.configure.log 2>&1 || { cat build/asan.configure.log; exit 1; }
  cmake --build build/asan -j "$jobs"
  step "tests (ASan + UBSan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build/asan --output-on-failure -j "$jobs" -LE slow
fi
