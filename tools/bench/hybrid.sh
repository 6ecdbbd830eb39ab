#!/usr/bin/env bash
# The hybrid offload on one GPU machine, in one go (issue 6's figures):
#   tools/bench/hybrid.sh DIR [CHECKPOINT]
# DIR holds the ossrun binary and its libraries (tools/gpu_host.sh bundle). Uses (or writes) a
# gpt-oss-20b-shaped synthetic checkpoint with skewed routing in CHECKPOINT (default /tmp/ossrun-20b), then:
# `ossrun plan` and `ossrun generate` at a 4 GB VRAM budget, and `ossrun bench hybrid` at 4, 6, 8 and 12 GB
# (decode tok/s, hit rate, bytes moved per token and the bandwidth bound, prefill of 2048 tokens; the router
# cache beside all-experts-on-the-CPU and static per-layer placement at equal VRAM).
set -euo pipefail
dir="$(cd "${1:?usage: hybrid.sh DIR [CHECKPOINT]}" && pwd)"
ck="${2:-/tmp/ossrun-20b}"
export LD_LIBRARY_PATH="$dir:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OSSRUN_CACHE="$dir/cache"
[ -f "$ck/config.json" ] || "$dir/ossrun" synth "$ck" --preset gpt-oss-20b --routing-skew 1.0 --seed 7 --force >/dev/null
echo "== ossrun plan --vram 4G =="
"$dir/ossrun" plan --model "$ck" --vram 4G --ctx 4096
echo "== ossrun generate --vram 4G =="
"$dir/ossrun" generate --model "$ck" --vram 4G --ctx 4096 --prompt "The capital of France is" --max-tokens 64 --seed 1 >/dev/null
echo "== ossrun bench hybrid =="
"$dir/ossrun" bench hybrid --model "$ck" --vram 4G,6G,8G,12G
