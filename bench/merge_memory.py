"""Streamed merge (issue 22): peak memory of folding a LoRA adapter into a multi-shard model, the streamed merge of stage 05
(`merge_lora_streamed`) against the merge it replaced (load the base in fp32, peft's `merge_and_unload`, `save_pretrained`),
each in a fresh subprocess, measured as the increase of the process's peak RSS (VmHWM) over its RSS after imports.

The model is synthetic: a Llama of `--layers` layers, hidden `--hidden`, FFN 4 x hidden, saved in fp32 (or `--dtype`) in shards of
`--shard-mb`, with a random rank-16 attention adapter. Goal: streamed peak <= 1.5 x (largest shard + adapter), whatever the model
size; the old merge grows with the whole model. The merged files of both ways are compared tensor by tensor (equal in fp32).

    .venv/bin/python bench/merge_memory.py                  # 16 layers, hidden 1024: 1.1 GB fp32 in 4 shards of <= 300 MB"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--layers", type=int, default=16)
ap.add_argument("--hidden", type=int, default=1024)
ap.add_argument("--shard-mb", type=int, default=300)
ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
ap.add_argument("--child", choices=["streamed", "old"], help=argparse.SUPPRESS)
ap.add_argument("--dir", help=argparse.SUPPRESS)
args = ap.parse_args()


def status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024


if args.child:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from creativity_llm.lora import merge_lora_streamed
    d = Path(args.dir)
    base = status_mb("VmRSS")
    t = time.perf_counter()
    if args.child == "streamed":
        merge_lora_streamed(d / "base", d / "adapter", d / "streamed")
    else:  # what stage 05 did before issue 22
        model = AutoModelForCausalLM.from_pretrained(d / "base", dtype=torch.float32)
        PeftModel.from_pretrained(model, str(d / "adapter")).merge_and_unload().save_pretrained(d / "old", max_shard_size=f"{args.shard_mb}MB")
    print(json.dumps({"baseline_mb": base, "peak_mb": status_mb("VmHWM"), "seconds": time.perf_counter() - t}))
    sys.exit(0)

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from creativity_llm.lora import weight_shards

with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
    d = Path(tmp)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=8192, hidden_size=args.hidden, intermediate_size=4 * args.hidden, num_hidden_layers=args.layers,
                      num_attention_heads=args.hidden // 64, num_key_value_heads=args.hidden // 64, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(getattr(torch, args.dtype))
    model.save_pretrained(d / "base", max_shard_size=f"{args.shard_mb}MB")
    peft = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
    peft.save_pretrained(d / "adapter")
    del model, peft
    shards = weight_shards(d / "base")
    largest = max(s.stat().st_size for s in shards) / 2**20
    adapter = (d / "adapter" / "adapter_model.safetensors").stat().st_size / 2**20
    total = sum(s.stat().st_size for s in shards) / 2**20
    print(f"synthetic Llama: {args.layers} layers, hidden {args.hidden}, {args.dtype}: {total:.0f} MB in {len(shards)} shards "
          f"(largest {largest:.0f} MB), adapter {adapter:.1f} MB")
    out = {}
    for way in ("streamed", "old"):
        r = subprocess.run([sys.executable, __file__, "--child", way, "--dir", str(d), "--shard-mb", str(args.shard_mb)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if r.returncode: sys.exit(f"{way}: {r.stderr[-2000:]}")
        out[way] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{way:8}: peak RSS +{out[way]['peak_mb'] - out[way]['baseline_mb']:.0f} MB over {out[way]['baseline_mb']:.0f} MB after imports, "
              f"{out[way]['seconds']:.1f} s")
    if args.dtype == "float32":
        a = {k: v for s in weight_shards(d / "streamed") for k, v in load_file(s).items()}
        b = {k: v for s in weight_shards(d / "old") for k, v in load_file(s).items()}
        print(f"merged tensors equal to the old merge's: {a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)}")
    streamed = out["streamed"]["peak_mb"] - out["streamed"]["baseline_mb"]
    old = out["old"]["peak_mb"] - out["old"]["baseline_mb"]
    print(f"streamed peak / (largest shard + adapter) = {streamed / (largest + adapter):.2f} (goal <= 1.5); "
          f"streamed / old merge = {streamed / old:.3f}")
