#!/usr/bin/env bash
# The full-GPU engine beside transformers on one GPU machine, in one go (issue 5's speed figures):
#   tools/bench/gpu_engine.sh DIR [CHECKPOINT]
# DIR holds the ossrun binary and its libraries (tools/gpu_host.sh bundle). Writes a gpt-oss-20b-shaped
# synthetic checkpoint with skewed routing into CHECKPOINT (default /tmp/ossrun-20b) unless one is there,
# then runs `ossrun bench decode` at prompts of 512 and 2048 tokens (prefill tok/s, decode tok/s, bytes per
# token and the bound the copy bandwidth measured in the same run implies) and the transformers baseline
# (tools/bench/transformers_baseline.py) on the same checkpoint.
set -euo pipefail
dir="$(cd "${1:?usage: gpu_engine.sh DIR [CHECKPOINT]}" && pwd)"
ck="${2:-/tmp/ossrun-20b}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export LD_LIBRARY_PATH="$dir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OSSRUN_CACHE="$dir/cache"
[ -f "$ck/config.json" ] || "$dir/ossrun" synth "$ck" --preset gpt-oss-20b --routing-skew 1.0 --seed 7 --force
for p in 512 2048; do
  echo "== ossrun bench decode, prompt $p =="
  "$dir/ossrun" bench decode --model "$ck" --backend gpu --prompt-tokens "$p" --tokens 128 --ctx 4096
done
echo "== transformers baseline =="
PYTHONUNBUFFERED=1 python3 "$root/tools/bench/transformers_baseline.py" --checkpoint "$ck" --decode-tokens 64 --reps 3
