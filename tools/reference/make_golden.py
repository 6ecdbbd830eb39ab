#!/usr/bin/env python3
"""Golden outputs for ossrun's engine tests, computed by transformers from a synthetic checkpoint.

Run on a machine with torch and transformers (the GPU host has them). The checkpoint is one that
`ossrun synth` wrote; the golden records the synth arguments so the test can regenerate the identical
checkpoint (synth is deterministic from its seed) instead of committing weights.

The model is loaded as transformers' GptOssForCausalLM with its MXFP4 experts dequantized at load
(Mxfp4Config(dequantize=True)), eager attention, and every parameter in float32, so the golden is the
reference model computed in fp32 (gpt-oss.md §11 records that this load works offline).

Output (JSON):
  synth_args    the `ossrun synth` flags that recreate the checkpoint (without the output directory)
  prompt_ids    the prompt, random ids from --prompt-seed
  logits        per prompt position: the full row when the vocabulary has at most --full-rows-max ids,
                else {"top_ids", "top_values", "lse"} with the top 32
  greedy        the greedy continuation of the prompt (argmax, recomputed without a KV cache each step)
  greedy_margin per greedy step, logit(top1) - logit(top2): how well conditioned each choice is
  versions      torch and transformers versions
"""
import argparse
import json
import os
import sys

import torch
import transformers
from transformers import GptOssForCausalLM, Mxfp4Config


def load_model(checkpoint: str) -> GptOssForCausalLM:
    with open(os.path.join(checkpoint, "config.json")) as f:
        quantized = "quantization_config" in json.load(f)
    # MXFP4 experts are dequantized at load; a checkpoint with BF16 experts loads as it is.
    extra = {"quantization_config": Mxfp4Config(dequantize=True)} if quantized else {}
    model = GptOssForCausalLM.from_pretrained(
        checkpoint, dtype=torch.float32, attn_implementation="eager", local_files_only=True, **extra)
    # Whatever dtype a loader left a tensor in, upcast it (exact from bf16) so the whole forward is fp32.
    # (transformers refuses model.float() on a model it loaded through a quantizer.)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point() and t.dtype != torch.float32:
                t.data = t.data.float()
    return model.eval()


def rows_to_json(logits: torch.Tensor, full_rows_max: int) -> list:
    out = []
    for row in logits:
        row = row.double()
        if row.numel() <= full_rows_max:
            out.append([float(f"{v:.7g}") for v in row.tolist()])
        else:
            top = torch.topk(row, 32)
            out.append({
                "top_ids": top.indices.tolist(),
                "top_values": [float(f"{v:.7g}") for v in top.values.tolist()],
                "lse": float(torch.logsumexp(row, 0)),
            })
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="directory written by ossrun synth")
    ap.add_argument("--synth-args", required=True, help="the ossrun synth flags used, as one string")
    ap.add_argument("--prompt-len", type=int, default=40)
    ap.add_argument("--prompt-seed", type=int, default=1)
    ap.add_argument("--greedy-tokens", type=int, default=32)
    ap.add_argument("--full-rows-max", type=int, default=4096)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = load_model(args.checkpoint)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(args.prompt_seed)
    prompt = torch.randint(0, vocab, (args.prompt_len,), generator=gen).tolist()

    with torch.no_grad():
        logits = model(torch.tensor([prompt]), use_cache=False).logits[0]
        ids = list(prompt)
        greedy, margins = [], []
        for _ in range(args.greedy_tokens):
            last = model(torch.tensor([ids]), use_cache=False).logits[0, -1].double()
            top2 = torch.topk(last, 2)
            nxt = int(top2.indices[0])
            greedy.append(nxt)
            margins.append(float(top2.values[0] - top2.values[1]))
            ids.append(nxt)

    if not torch.isfinite(logits).all():
        print("make_golden: non-finite logits; the checkpoint is not usable as a golden", file=sys.stderr)
        return 1
    golden = {
        "synth_args": args.synth_args.split(),
        "prompt_ids": prompt,
        "logits": rows_to_json(logits, args.full_rows_max),
        "greedy": greedy,
        "greedy_margin": [float(f"{m:.4g}") for m in margins],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with open(args.out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
    print(f"make_golden: {args.out}: {len(prompt)} prompt ids, vocab {vocab}, "
          f"max |logit| {logits.abs().max():.4g}, min greedy margin {min(margins):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
