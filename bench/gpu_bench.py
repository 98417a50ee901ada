"""The measurements `bench/gpu.sh` runs, one subcommand each, every one writing `<out>/<name>.json`; `report` turns them into RESULTS.md.

  models   config folders of the random models (`random:PATH`): Llama-3.1-8B for training, Llama-3.2-1B for decoding, with a tokenizer
  peak     the bf16 matmul rate (8192^3) and the device-to-device copy bandwidth: the peaks MFU and the decode bound are set against
  train    stage 05's training path (`lora.run_lora`: torchrun, DeepSpeed ZeRO-2 from the h100 preset, gradient checkpointing) on
           synthetic pairs of `--seq` tokens, one LoRA mode; tokens/s after warm-up, MFU = 4 N tokens/s / 989 TFLOP/s, peak memory
  decode   in-process `transformers` generation: ms per decode step at several batch sizes, and the memory-bandwidth bound
  report   RESULTS.md from the JSON files, `steps.tsv` (written by gpu.sh) and the logs

`--cpu-tiny` shrinks every size so that the whole script runs on a laptop CPU in minutes (the launcher and ZeRO-2 then run on gloo
with DeepSpeed's CPU accelerator): the GPU run is then the second run of a script that already works, not its first.
"""
from __future__ import annotations
import argparse, datetime as dt, json, platform, re, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the device machine runs the working tree, not an installed package
from creativity_llm.core import package_versions, write_json  # noqa: E402 (after the path above)
from creativity_llm.plan import H100_BF16_FLOPS  # noqa: E402
MFU_GOAL = 0.40
TRAIN_CONFIG, DECODE_CONFIG = ROOT / "configs/model_configs/llama-3.1-8b.json", ROOT / "configs/model_configs/llama-3.2-1b.json"
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            vocab_size=512, max_position_embeddings=2048, rope_scaling=None, tie_word_embeddings=False)


def _read(out: Path, name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _device(cpu_tiny: bool):
    import torch
    if cpu_tiny: return torch.device("cpu")
    if not torch.cuda.is_available(): raise SystemExit("no CUDA device: run with --cpu-tiny on a machine without a GPU")
    return torch.device("cuda")


def models(a) -> dict:
    "Write the random models' folders: config.json and the tokenizer of `--tokenizer` (SmolLM2's where its package is installed)."
    from creativity_llm.models import ModelSpecError, resolve_model, write_random_model
    tokenizer = a.tokenizer
    if tokenizer == "auto":
        try: resolve_model("smollm2"); tokenizer = "smollm2"
        except ModelSpecError: tokenizer = "micro:llama"  # a GPU node without the SmolLM2 package: byte-level tokens do as well here
    out = {}
    for name, config in (("train", TRAIN_CONFIG), ("decode", DECODE_CONFIG)):
        data = json.loads(config.read_text())
        if a.cpu_tiny: data.update(TINY)
        folder = Path(a.models) / f"{name}{'-tiny' if a.cpu_tiny else ''}"
        if folder.is_dir() and (folder / "config.json").is_file() and not a.rewrite:
            out[name] = {"spec": f"random:{folder}", "written": False}
            continue
        out[name] = {"spec": write_random_model(folder, data, tokenizer), "written": True, "tokenizer": tokenizer, "config": str(config.relative_to(ROOT))}
    return out


def peak(a) -> dict:
    "The bf16 matmul rate and the copy bandwidth of this device (fp32 and small sizes on --cpu-tiny)."
    import torch
    dev = _device(a.cpu_tiny)
    n, dtype, copy_bytes = (512, torch.float32, 64 << 20) if a.cpu_tiny else (8192, torch.bfloat16, 4 << 30)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    def seconds_each(work, warmup: int) -> float:
        for _ in range(warmup): work()
        sync(); t = time.perf_counter()
        for _ in range(a.repeats): work()
        sync(); return (time.perf_counter() - t) / a.repeats
    x, y = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    mm_s = seconds_each(lambda: x @ y, warmup=3)
    x = y = None  # the matrices freed before the copy buffers are taken
    src = torch.empty(copy_bytes, dtype=torch.uint8, device=dev); dst = torch.empty_like(src)
    copy_s = seconds_each(lambda: dst.copy_(src), warmup=1)
    return {"device": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu", "matmul_n": n,
            "dtype": str(dtype).replace("torch.", ""), "matmul_tflops": 2 * n**3 / mm_s / 1e12, "repeats": a.repeats,
            "copy_bytes": copy_bytes, "copy_gb_per_s": 2 * copy_bytes / copy_s / 1e9}  # read and written


def train(a) -> dict:
    "One LoRA mode through stage 05's own `run_lora` on synthetic pairs; throughput after warm-up, MFU, peak memory."
    import shutil
    from creativity_llm.lora import run_lora, write_train_dc
    from creativity_llm.models import tokenizer_and_config
    from creativity_llm.pipeline import resolve_config
    from creativity_llm.training import step_throughput, synthetic_pairs
    import torch
    processes = 1 if _device(a.cpu_tiny).type == "cpu" else torch.cuda.device_count()  # stage 05 starts one per GPU
    overrides = dict(model=a.model, seed=0, lora_modes=a.mode, lora_merge="", lora_max_len=a.seq, lora_epochs=1, lora_eval_fraction=0.0,
                     lora_hard_weighting=False, lora_save_fraction=0.0, lora_save_steps=10**6, lora_report_to="none", lora_resume=False)
    if a.batch_size: overrides["lora_batch_size"] = a.batch_size
    if a.profile: overrides["lora_profile_steps"] = f"{a.warmup + a.steps + 1}-{a.warmup + a.steps + a.profile}"  # after the timed steps
    if a.cpu_tiny: overrides.update(device="cpu", dtype="float32", lora_deepspeed_on_cpu=True, lora_processes=1)
    else: overrides.update(device="cuda", dtype="bfloat16")
    cfg = resolve_config("h100", overrides=[f"{k}={v}" for k, v in overrides.items()])
    tok, _ = tokenizer_and_config(cfg.model)  # the tokenizer only: the weights are drawn in the workers
    steps = a.warmup + a.steps + a.profile
    pairs = synthetic_pairs(tok, steps * cfg.lora_batch_size * cfg.lora_grad_accum * processes, max_len=a.seq, answer_tokens=a.seq // 4)
    run_dir = Path(a.out) / f"train_{a.mode}_run"
    shutil.rmtree(run_dir, ignore_errors=True)
    write_train_dc(run_dir, pairs)
    t = time.perf_counter()
    result = run_lora(cfg, run_dir, log=lambda m: print(m, flush=True))
    seconds = time.perf_counter() - t
    timing = result["timing"][a.mode]
    speed = step_throughput(timing, warmup=a.warmup)
    n = timing["total_parameters"] - timing["trainable_parameters"]  # the frozen base; LoRA's own matmuls are < 0.1 % of its FLOPs
    per_token = 6 if timing["gradient_checkpointing"] else 4  # with checkpointing the forward runs twice
    peak_run = _read(Path(a.out), "peak")
    rate = speed["tokens_per_s"] or 0.0
    shutil.rmtree(run_dir / "05_lora" / "adapters", ignore_errors=True)
    return {"mode": a.mode, "model": a.model, "base_parameters": n, "trainable_parameters": timing["trainable_parameters"],
            "seq_len": a.seq, "micro_batch": cfg.lora_batch_size, "grad_accum": cfg.lora_grad_accum, "world_size": timing["world_size"],
            "deepspeed": timing["deepspeed"], "deepspeed_config": cfg.lora_deepspeed, "gradient_checkpointing": timing["gradient_checkpointing"],
            "device": timing["device"], "stage_seconds": seconds, **speed,
            "startup_s": seconds - sum(s["between"] for s in timing["steps"]),  # imports, launcher, model construction, DeepSpeed's set-up
            "between_steps_s": sum(s["between"] - s["seconds"] for s in timing["steps"]),  # data, logging
            "mfu_vs_989": 4 * n * rate / H100_BF16_FLOPS,
            "mfu_vs_measured_peak": 4 * n * rate / (peak_run["matmul_tflops"] * 1e12) if peak_run else None,
            "hardware_utilisation_with_recomputation_vs_989": per_token * n * rate / H100_BF16_FLOPS,
            "steps": timing["steps"], "profile": timing.get("profile")}


def decode(a) -> dict:
    "ms per decode step of `generate` at each batch size (greedy, fixed length), and the bound that reading weights and cache sets."
    import torch
    from creativity_llm.models import load_model
    dev = _device(a.cpu_tiny)
    model, tok = load_model(a.model, device=str(dev), dtype="float32" if a.cpu_tiny else "bfloat16", seed=0)
    cfg = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * next(model.parameters()).element_size()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    peak_run = _read(Path(a.out), "peak")
    g = torch.Generator().manual_seed(0)
    rows = []
    for batch in a.batches:
        ids = torch.randint(300, min(len(tok), cfg.vocab_size) - 1, (batch, a.prompt), generator=g).to(dev)
        kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=tok.pad_token_id)
        def timed(new: int) -> float:
            sync(); t = time.perf_counter()
            with torch.no_grad(): out = model.generate(**kw, max_new_tokens=new, min_new_tokens=new)
            sync()
            assert out.shape[1] == a.prompt + new
            return time.perf_counter() - t
        timed(2)  # warm-up: kernels, allocator
        one = statistics.median(timed(1) for _ in range(3))
        full = statistics.median(timed(a.new) for _ in range(3))
        step_ms = (full - one) / (a.new - 1) * 1e3
        context = a.prompt + a.new / 2  # mean cache length over the timed steps
        bytes_per_step = weight_bytes + batch * context * kv_per_token
        bound_ms = bytes_per_step / (peak_run["copy_gb_per_s"] * 1e9) * 1e3 if peak_run else None
        rows.append({"batch": batch, "ms_per_step": step_ms, "prefill_and_first_token_ms": one * 1e3, "tokens_per_s": batch / step_ms * 1e3,
                     "bytes_per_step": bytes_per_step, "bandwidth_bound_ms": bound_ms,
                     "share_of_bound": bound_ms / step_ms if bound_ms else None})
        print(rows[-1], flush=True)
    return {"model": a.model, "parameters": sum(p.numel() for p in model.parameters()), "dtype": str(model.dtype).replace("torch.", ""),
            "prompt_tokens": a.prompt, "new_tokens": a.new, "weight_bytes": weight_bytes, "kv_bytes_per_token": kv_per_token,
            "attention": cfg._attn_implementation, "rows": rows}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = package_versions()  # what the manifest records, and the two that matter here besides
    for name in ("accelerate", "deepspeed"):
        try: out[name] = version(name)
        except PackageNotFoundError: out[name] = None
    try:
        import torch
        out["cuda"] = torch.version.cuda
        if torch.cuda.is_available(): out["gpu"] = torch.cuda.get_device_name()
    except Exception as e: out["torch_error"] = repr(e)
    return out


def _fmt(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


def report(a) -> str:
    "RESULTS.md from what the steps left in `--out`."
    out = Path(a.out)
    steps = [l.split("\t") for l in (out / "steps.tsv").read_text().splitlines()] if (out / "steps.tsv").is_file() else []
    versions = _read(out, "versions") or _versions()
    lines = [f"# GPU bench results{' (CPU-tiny check of the script, not GPU figures)' if a.cpu_tiny else ''}", "",
             f"Written {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by `{a.command}` "
             f"(each step below is a subcommand of `bench/gpu_bench.py`; logs beside this file).", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
             "| step | status | seconds | log |", "|---|---|---:|---|"]
    for name, rc, seconds, log in steps:
        status = "ok" if rc == "0" else "timed out" if rc in ("124", "137") else f"failed (exit {rc})"
        lines.append(f"| {name} | {status} | {seconds} | `{log}` |")
    p = _read(out, "peak")
    if p:
        lines += ["", "## Peaks", "", f"{p['device']}: {p['dtype']} matmul {p['matmul_n']}³: **{p['matmul_tflops']:.3g} TFLOP/s** "
                  f"(mean of {p['repeats']} after 3 warm-ups); device-to-device copy of {p['copy_bytes'] / 2**30:.2f} GiB: "
                  f"**{p['copy_gb_per_s']:.0f} GB/s** (bytes read + written)."]
    modes = [m for m in (_read(out, f"train_{mode}") for mode in ("attention", "all-linear")) if m]
    if modes:
        m0 = modes[0]
        lines += ["", "## Training: stage 05's path", "",
                  f"`lora.run_lora` on {m0['model']} ({m0['base_parameters'] / 1e9:.2f}B frozen), {m0['seq_len']}-token synthetic pairs "
                  f"(`training.synthetic_pairs`), micro-batch {m0['micro_batch']} × accumulation {m0['grad_accum']} × {m0['world_size']} process(es), "
                  f"DeepSpeed {'on (' + m0['deepspeed_config'] + ')' if m0['deepspeed'] else 'off'}, gradient checkpointing "
                  f"{'on' if m0['gradient_checkpointing'] else 'off'}, hard-sample weighting off (its difficulty pass runs before training, "
                  f"outside the timed steps), {m0['device']}. Tokens/s per process over the steps after warm-up, each step timed from its "
                  f"first micro-batch to its optimizer step (`trainer.StepClock`, the device synchronised). "
                  f"MFU = 4·N·tokens/s ÷ peak (forward 2N + the frozen base's input-gradient backward 2N); with recomputation "
                  f"{'6N' if m0['gradient_checkpointing'] else '4N'}. N counts every frozen parameter, the input embedding's too.", "",
                  "| mode | trainable | timed steps (warm-up) | median step s | tokens/s | MFU vs 989 TFLOP/s | MFU vs measured peak | with recomputation vs 989 | peak memory GiB | tokens/s incl. logging |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for m in modes:
            pct = lambda x: "—" if x is None else f"{100 * x:.1f} %"
            lines.append(f"| {m['mode']} | {m['trainable_parameters']:,} | {m['timed_steps']} ({m['warmup_steps']}) | {_fmt(m['median_step_s'])} | "
                         f"{_fmt(m['tokens_per_s'], ',.0f')} | {pct(m['mfu_vs_989'])} | {pct(m['mfu_vs_measured_peak'])} | "
                         f"{pct(m['hardware_utilisation_with_recomputation_vs_989'])} | {_fmt(m['peak_memory_gib'], '.1f')} | {_fmt(m['tokens_per_s_wall'], ',.0f')} |")
        lines += ["", "Outside the timed steps: " + "; ".join(f"{m['mode']}: start-up {m['startup_s']:.0f} s (imports, torchrun, model construction, "
                  f"DeepSpeed), between steps {m['between_steps_s']:.1f} s (data, logging), the stage {m['stage_seconds']:.0f} s" for m in modes) + "."]
        for m in modes:
            prof = m.get("profile")
            if not prof: continue
            parts = ", ".join(f"{k} {v / prof['total_s']:.0%}" for k, v in prof["by_part_s"].items()) if prof["total_s"] else "empty"
            lines += ["", f"Profile of {m['mode']}, steps {prof['steps']} ({prof['clock']} time {prof['total_s']:.2f} s): {parts}. Ops with the most self time:", "",
                      "| op | calls | self s | input shapes |", "|---|---:|---:|---|"]
            lines += [f"| `{o['op'][:60]}` | {o['calls']} | {o['self_s']:.4f} | {o['input_shapes']} |" for o in prof["top"][:12]]
        by = {m["mode"]: m for m in modes}
        if {"attention", "all-linear"} <= set(by) and by["attention"]["peak_memory_gib"] and by["all-linear"]["peak_memory_gib"]:
            a_mem, l_mem = by["attention"]["peak_memory_gib"], by["all-linear"]["peak_memory_gib"]
            lines += ["", f"Peak memory: attention-only {a_mem:.2f} GiB {'<' if a_mem < l_mem else '>='} all-linear {l_mem:.2f} GiB."]
        best = max((m["mfu_vs_989"] for m in modes if m["mode"] == "attention"), default=None)
        if best is not None and not a.cpu_tiny:
            lines += ["", f"Goal MFU ≥ {MFU_GOAL:.0%} of 989 TFLOP/s (attention-only): {'met' if best >= MFU_GOAL else 'not met'} ({best:.1%})."]
    tests = out / "gpu_tests.log"
    if tests.is_file():
        tail = [l for l in tests.read_text().splitlines() if l.strip()][-1:] or ["(empty log)"]
        lines += ["", "## GPU-marked tests", "", f"`pytest -m gpu`: {tail[0]}"]
    smoke = out / "smoke.log"
    if smoke.is_file():
        text = smoke.read_text().splitlines()
        done = [l.strip() for l in text if "] done in " in l or "] skipped" in l]
        running = [l.strip() for l in text if "] running" in l]
        rc = {name: code for name, code, *_ in steps}.get("smoke")
        runner = re.compile(r"^(stage \S+ (failed in|could not run|is waiting)|creativity-llm: error|  executed notebook)")  # pipeline.run_stage's words
        failed = [l for l in text if runner.match(l)] if rc != "0" else []
        lines += ["", "## Smoke pipeline", "", f"{len(done)} stages done" + (": " + "; ".join(done) if done else "") + "."]
        if failed: lines += ["", "First failure, as the runner reported it:", "", "```", *failed[:4], "```"]
        elif rc not in (None, "0"):
            lines += ["", f"Stopped (exit {rc}) while {running[-1] if running else 'starting'}; the log's last lines:", "", "```", *text[-6:], "```"]
    d = _read(out, "decode")
    if d:
        lines += ["", "## Decoding: in-process `transformers` generate", "",
                  f"{d['model']} ({d['parameters'] / 1e9:.2f}B, {d['dtype']}, attention `{d['attention']}`), prompts of {d['prompt_tokens']} random tokens, "
                  f"{d['new_tokens']} new tokens greedy; ms per step = (time for {d['new_tokens']} tokens − time for 1) ÷ {d['new_tokens'] - 1}. "
                  "Bound: the weights plus the batch's key-value cache read once per step at the measured copy bandwidth.", "",
                  "| batch | ms per step | tokens/s | bound ms | bound ÷ measured |", "|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            lines.append(f"| {r['batch']} | {r['ms_per_step']:.2f} | {r['tokens_per_s']:,.0f} | {_fmt(r['bandwidth_bound_ms'], '.2f')} | {_fmt(r['share_of_bound'], '.0%')} |")
    text = "\n".join(lines) + "\n"
    (out / "RESULTS.md").write_text(text)
    print(text)
    return {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["models", "peak", "train", "decode", "report", "versions"])
    ap.add_argument("--out", required=True, help="output folder (JSON per step, RESULTS.md)")
    ap.add_argument("--cpu-tiny", action="store_true", help="tiny sizes on the CPU: checks the script, measures nothing of a GPU")
    ap.add_argument("--models", default=str(ROOT / "bench/cache/gpu_models"), help="models: where the random models' folders go")
    ap.add_argument("--tokenizer", default="auto", help="models: tokenizer spec ('auto': SmolLM2's if installed, else the byte-level one)")
    ap.add_argument("--rewrite", action="store_true", help="models: write the folders again")
    ap.add_argument("--model", help="train / decode: the model spec (random:FOLDER)")
    ap.add_argument("--mode", default="attention", help="train: LoRA mode")
    ap.add_argument("--seq", type=int, default=1024, help="train: tokens per pair")
    ap.add_argument("--batch-size", type=int, default=0, help="train: micro-batch (0: the h100 preset's)")
    ap.add_argument("--warmup", type=int, default=3, help="train: optimizer steps before timing")
    ap.add_argument("--steps", type=int, default=10, help="train: timed optimizer steps")
    ap.add_argument("--profile", type=int, default=0, help="train: optimizer steps after the timed ones to run under torch.profiler")
    ap.add_argument("--repeats", type=int, default=10, help="peak: timed repeats")
    ap.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64], help="decode: batch sizes")
    ap.add_argument("--prompt", type=int, default=128, help="decode: prompt tokens")
    ap.add_argument("--new", type=int, default=64, help="decode: new tokens")
    ap.add_argument("--command", default="bash bench/gpu.sh", help="report: the command that produced the results")
    a = ap.parse_args(argv)
    result = {"models": models, "peak": peak, "train": train, "decode": decode, "report": report, "versions": lambda a: _versions()}[a.step](a)
    if a.step != "report":
        write_json(Path(a.out) / f"{f'train_{a.mode}' if a.step == 'train' else a.step}.json", result)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
