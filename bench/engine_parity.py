"""Parity of an engine with the in-process path (issue 21): the same greedy prompts through an OpenAI-compatible engine (vLLM, or
`creativity-llm serve`) and through `TransformersGenerator` (batch size 1), for the base and for LoRA adapters; the answers'
tokens compared.

    .venv/bin/python bench/engine_parity.py --engine-url http://gpu-node:8000/v1 --engine-model base --model /models/base \\
        --adapter divergent.energy=runs/h100/02_experts/adapters/divergent.energy --dtype bfloat16 --device cuda

Adapters are loaded into the engine as the pipeline loads them (`OpenAIGenerator.load_adapter`: a content-hashed name, through
`/v1/load_lora_adapter` unless already served). Per model it prints the share of answers identical token for token and the
median position of the first differing token (the answer's length when none differs).

What is tolerated: the same prompt, greedy, through the same weights in fp32 on CPU gives the same tokens (`serve` and the
in-process path: checked in tests/test_engine.py). In bf16 on a GPU the engine's kernels (vLLM's attention, its punica LoRA
kernels) round differently from transformers' and peft's, so a greedy answer may part at a near-tie of two tokens and then run
on differently; that is not an error. The check passes when, for the base and for each adapter, the median first difference
is at least `--min-agree` tokens (16) — a wrong chat template, adapter or scaling parts at token 0-2 on most prompts. This
threshold is a judgement, not yet measured against vLLM (no GPU was lent to the issue that wrote this script)."""
import argparse, statistics, sys

from creativity_llm.generate import OpenAIGenerator, TransformersGenerator
from creativity_llm.models import ModelSet, load_model

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--engine-url", required=True)
ap.add_argument("--engine-model", default="", help="the base's served name (default: --model)")
ap.add_argument("--model", required=True, help="the same base as a model spec, for the in-process path")
ap.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH")
ap.add_argument("--device", default="auto")
ap.add_argument("--dtype", default="auto")
ap.add_argument("--max-tokens", type=int, default=64)
ap.add_argument("--min-agree", type=int, default=16)
args = ap.parse_args()

PROMPTS = ["List three unusual uses of a paper clip.", "ペーパークリップの意外な使い方を三つ挙げてください。",
           "Explain in two sentences how a thermos keeps tea hot.", "折り畳み式の水切りかごを改良するアイデアを一つ述べてください。",
           "What could a bicycle dynamo power besides a lamp?", "Suggest a name for a solar-powered kettle and say why."]
messages = [[{"role": "user", "content": p}] for p in PROMPTS]
adapters = dict(a.split("=", 1) for a in args.adapter)
base, tok = load_model(args.model, device=args.device, dtype=args.dtype)
models = ModelSet(base, tok, adapters)
local = TransformersGenerator(models.model, tok, batch_size=1, progress=False, max_new_tokens=args.max_tokens, temperature=0.0)
engine = OpenAIGenerator(args.engine_url, model=args.engine_model or args.model, progress=False, max_new_tokens=args.max_tokens, temperature=0.0,
                         concurrency=len(PROMPTS))
ok = True
for name in ["base", *adapters]:
    engine.model = (args.engine_model or args.model) if name == "base" else engine.load_adapter(name, adapters[name])
    with models.use(name): mine = local(messages)
    theirs = engine(messages)
    firsts = []
    for a, b in zip(mine, theirs):
        ta, tb = tok(str(a), add_special_tokens=False)["input_ids"], tok(str(b), add_special_tokens=False)["input_ids"]
        firsts.append(next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb))))
    same = sum(str(a) == str(b) for a, b in zip(mine, theirs))
    med = statistics.median(firsts)
    ok &= med >= args.min_agree
    print(f"{name:30} identical {same}/{len(PROMPTS)}, first differing token: median {med:g} (each: {firsts})"
          + ("" if med >= args.min_agree else f"  <- below {args.min_agree}"))
print("parity: " + ("ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)
