"""Gradient checkpointing (issue 22): peak memory of LoRA training with and without it, each in a fresh subprocess, measured as
the increase of the process's peak RSS over its RSS after imports and model load; the ratio is printed last.

CPU, fp32, attention-only LoRA, `--steps` optimizer steps of `--batch` pairs padded to `--length` tokens (every pair is the
same length, so activations are what they would be at that length). On a GPU the same comparison is torch.cuda.max_memory_allocated.

    .venv/bin/python bench/checkpointing_memory.py                       # SmolLM2-135M, batch 8, 384 tokens
    .venv/bin/python bench/checkpointing_memory.py --model micro:llama"""
import argparse, json, os, resource, subprocess, sys, tempfile

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default="smollm2")
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--length", type=int, default=384)
ap.add_argument("--steps", type=int, default=2)
ap.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
args = ap.parse_args()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


if args.child:
    import torch
    from creativity_llm.pipeline import RunConfig
    from creativity_llm.models import load_model
    from creativity_llm.lora import train_mode
    _, tok = load_model(args.model, device="cpu", dtype="float32")  # converted and cached once, outside the measurement's peak
    words = "lever spring hinge valve magnet gear cam wick bellows baffle".split()
    n = 1
    while len(tok(" ".join(words[i % len(words)] for i in range(n)))["input_ids"]) < args.length - 48: n += 8
    filler = " ".join(words[i % len(words)] for i in range(n))  # the prompt frame and answer make up the rest of the length
    rows = [{"id": f"s{i}/p{i}", "source_id": f"s{i}", "task": "creativity", "instruction": f"{i}: {filler}", "response": "A use.",
             "answer": "A use.", "rationale": "Because.", "dc_format": "", "answer_first": "Answer: A use.\nRationale: Because."}
            for i in range(args.batch * args.steps)]
    cfg = RunConfig(model=args.model, device="cpu", dtype="float32", lora_max_len=args.length + 32, lora_batch_size=args.batch,
                    lora_epochs=1, lora_eval_fraction=0.0, lora_hard_weighting=False, lora_save_steps=1000,
                    lora_gradient_checkpointing=args.child == "on")
    torch.set_num_threads(os.cpu_count() or 1)
    base = rss_mb()
    import creativity_llm.training as training
    training.split_by_source = lambda rs, fraction, seed=0: (rs, [])  # every pair trains; no evaluation pass in the measurement
    with tempfile.TemporaryDirectory() as d:
        stats = train_mode(cfg, d, "attention", rows, log=lambda *a: None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"baseline_mb": base, "peak_mb": peak, "increase_mb": peak - base, "steps": stats["optimizer_steps"], "loss": stats["train_loss"]}))
    sys.exit(0)

out = {}
for mode in ("off", "on"):
    r = subprocess.run([sys.executable, __file__, "--child", mode, "--model", args.model, "--batch", str(args.batch), "--length", str(args.length),
                        "--steps", str(args.steps)], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if r.returncode: sys.exit(f"{mode}: {r.stderr[-2000:]}")
    out[mode] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"checkpointing {mode:3}: peak RSS +{out[mode]['increase_mb']:.0f} MB over {out[mode]['baseline_mb']:.0f} MB after load, "
          f"{out[mode]['steps']} steps, mean loss {out[mode]['loss']:.5f}")
from creativity_llm.models import load_model, resolve_model, converted_gguf_dir
from creativity_llm.training import memory_plan
src = resolve_model(args.model)
config = (converted_gguf_dir(src.path) if src.kind == "gguf" else src.path) / "config.json" if src.kind != "micro" else load_model(args.model, device="cpu")[0].config
for mode in ("off", "on"):  # the plan's saved activations and the answer tokens' logits and loss, against the measured increase
    plan = memory_plan(config, "attention", r=8, batch_size=args.batch, seq_len=args.length, gpus=1, dtype="float32",
                       gradient_checkpointing=mode == "on", answer_tokens=16)
    predicted = (plan["bytes"]["activations"] + plan["bytes"]["logits_and_loss"]) / 2**20
    print(f"checkpointing {mode:3}: memory_plan's activations and logits {predicted:.0f} MB; measured increase minus plan "
          f"{out[mode]['increase_mb'] - predicted:.0f} MB (a second model copy, optimizer, allocator and backward transients)")
print(f"{args.model}, batch {args.batch} x {args.length} tokens: peak training memory with checkpointing / without = "
      f"{out['on']['increase_mb'] / out['off']['increase_mb']:.2f}")
