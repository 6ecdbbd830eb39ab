#!/usr/bin/env python3
"""What a user already has: transformers' GptOssForCausalLM on the GPU, timed on the same checkpoint.

Loads an `ossrun synth` checkpoint (or a real one) with its MXFP4 experts dequantized to bf16 at load (the
MXFP4 GPU kernels transformers can use come from the `kernels` hub, which needs the internet; offline it
dequantizes), bf16 weights, its default attention, on cuda:0. Then, like `ossrun bench decode`:
  prefill   P random token ids, one forward (tok/s), for each P in --prefill
  decode    N greedy tokens after a prompt with the KV cache (model.generate, min_new_tokens = N), tok/s
Each timing is the median of --reps runs after a warm-up, with torch.cuda.synchronize around it.
Prints one line per figure and, with --json FILE, writes them.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import GptOssForCausalLM, Mxfp4Config


def timed(fn, reps):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--prefill", default="512,2048", help="prompt lengths to time, comma-separated")
    ap.add_argument("--decode-prompt", type=int, default=512)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = GptOssForCausalLM.from_pretrained(
        args.checkpoint, dtype=torch.bfloat16, device_map="cuda:0", local_files_only=True,
        quantization_config=Mxfp4Config(dequantize=True)).eval()
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(1)
    results = {"load_s": load_s, "attn_implementation": model.config._attn_implementation,
               "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    print(f"loaded in {load_s:.1f} s ({results['attn_implementation']} attention, bf16, experts dequantized)", flush=True)

    with torch.no_grad():
        for p in [int(x) for x in args.prefill.split(",")]:
            ids = torch.randint(0, vocab, (1, p), generator=gen).cuda()
            s = timed(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1), args.reps)
            results[f"prefill_{p}_tok_s"] = p / s
            print(f"transformers prefill {p:5d} tokens: {p / s:9.1f} tok/s ({s * 1e3:.1f} ms)", flush=True)

        ids = torch.randint(0, vocab, (1, args.decode_prompt), generator=gen).cuda()
        n = args.decode_tokens

        def gen_n(k):
            return lambda: model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=k,
                                          min_new_tokens=k, do_sample=False, pad_token_id=0)
        # Decode time = generate(n + 1) - generate(1): the prefill and the first token cancel out.
        full = timed(gen_n(n + 1), args.reps)
        first = timed(gen_n(1), args.reps)
        tok_s = n / (full - first)
        results["decode_tok_s"] = tok_s
        print(f"transformers decode {n} tokens after {args.decode_prompt}: {tok_s:.1f} tok/s "
              f"({(full - first) / n * 1e3:.2f} ms/token)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
