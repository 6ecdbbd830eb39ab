#!/usr/bin/env bash
# The main job on an embedded default, from a fresh clone: set-up, build ossrun (build/release; with the CUDA
# backend when nvcc is present), make a small synthetic gpt-oss checkpoint with the real o200k_harmony tokenizer
# (models/tiny-chat), check it with `ossrun inspect`, and generate text from it with the CPU engine. The weights are
# random, so the text is too: this shows the whole path working, not a model's answer.
#   OSSRUN_CUDA_ARCHS  CUDA architectures to build for (default: 86;89;90;120)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
mkdir -p build
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="${OSSRUN_CUDA_ARCHS:-86;89;90;120}" >build/release.configure.log 2>&1 ||
  { cat build/release.configure.log; exit 1; }
cmake --build build/release -j "$(nproc)" --target ossrun
ossrun=build/release/src/cli/ossrun

model=models/tiny-chat
if [ ! -f "$model/config.json" ]; then
  echo "== making a small synthetic gpt-oss checkpoint in $model =="
  "$ossrun" synth "$model" --preset tiny-chat --seed 1
fi
echo "== ossrun inspect $model =="
"$ossrun" inspect "$model"
echo "== ossrun generate --model $model --prompt 'The capital of France is' --max-tokens 24 --seed 1 =="
"$ossrun" generate --model "$model" --prompt "The capital of France is" --max-tokens 24 --seed 1
echo
