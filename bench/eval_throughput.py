"""Multiple-choice scoring speed: the project's `loglikelihoods` against lm-evaluation-harness's `HFLM` at its best batch size, on the
same requests and the same model object, in one run; the ratio is printed last (issue 37).

    .venv/bin/python bench/eval_throughput.py                          # ARC-Easy 400 zero-shot, then leaderboard JCommonsenseQA 400 3-shot
    .venv/bin/python bench/eval_throughput.py --workloads arc-easy --items 100 --sweep-items 25

For each workload: the requests are built once (`requests_for`: for a leaderboard set, exactly the (context, continuation) pairs
lm-eval's own task builds, `tests/test_lm_eval_parity.py`); `HFLM.loglikelihood` is timed on the first `--sweep-items` items at batch
sizes 1, 8, 16, 32 and 64 (lm-eval's `batch_size="auto"` picks 64 on a CPU), then at its fastest on all items and ours at stage 07's
`eval_batch_size` and `eval_batch_tokens` on all items, the two in turn `--repeats` times, the fastest of each kept. In fp32 every choice's log-likelihood must agree to 1e-4 and every prediction must be the same (checked:
the comparison is void otherwise). Data from ../shared/data; SmolLM2-135M-Instruct (it knows no Japanese, but a token costs the same).

`--vs one-at-a-time` times the project's scorer batched against itself one item at a time instead (issue 7)."""
import argparse, os, sys, time

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import numpy as np
import torch

from creativity_llm.models import load_model
from creativity_llm.multiple_choice import loglikelihoods, requests_for, retention_items
from creativity_llm.pipeline import RunConfig

WORKLOADS = {"arc-easy": ("en", "zero-shot"), "jcommonsenseqa-leaderboard": ("ja", "3-shot, lm-eval's ja_leaderboard_jcommonsenseqa"),
             "samples": ("en", "zero-shot")}
SWEEP = (1, 8, 16, 32, 64)


def hflm_loglikelihoods(model, tok, reqs, batch_size: int) -> np.ndarray:
    "lm-eval's `HFLM.loglikelihood` on (context, continuation) pairs, the model object given as it is."
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size)
    insts = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(reqs)]
    return np.array([ll for ll, _ in lm.loglikelihood(insts, disable_tqdm=True)], float)


def timed(fn):
    t = time.perf_counter(); out = fn()
    return time.perf_counter() - t, out


def predictions(ll, items) -> np.ndarray:
    ends = np.cumsum([len(it.choices) for it in items])
    return np.array([int(np.argmax(s)) for s in np.split(ll, ends[:-1])])


def against_lm_eval(model, tok, spec: str, a) -> float:
    lang, desc = WORKLOADS[spec]
    items = retention_items(spec, lang, a.items, seed=0)
    sweep_items = items[:a.sweep_items]
    reqs, sweep_reqs = requests_for(items, lang), requests_for(sweep_items, lang)
    n_tok = sum(len(tok(c + x, add_special_tokens=False)["input_ids"]) for c, x in reqs)
    print(f"{spec} ({desc}): {len(items)} items, {len(reqs)} choices, {n_tok / len(reqs):.0f} tokens per (context, choice) on average", flush=True)
    loglikelihoods(model, tok, sweep_reqs[:8], batch_size=8, progress=False); hflm_loglikelihoods(model, tok, sweep_reqs[:8], 8)  # warm-up
    sweep = {}
    for bs in SWEEP:
        sweep[bs] = timed(lambda: hflm_loglikelihoods(model, tok, sweep_reqs, bs))[0]
        print(f"  lm-eval HFLM, batch {bs:>2}, first {len(sweep_items)} items: {sweep[bs]:6.1f} s", flush=True)
    best = min(sweep, key=sweep.get)
    theirs = ours = (np.inf,)
    for _ in range(a.repeats):  # in turn, the fastest of each kept: a slow spell of the machine hits both
        theirs = min(theirs, timed(lambda: hflm_loglikelihoods(model, tok, reqs, best)), key=lambda r: r[0])
        ours = min(ours, timed(lambda: loglikelihoods(model, tok, reqs, batch_size=a.batch_size, progress=False, batch_tokens=a.batch_tokens)), key=lambda r: r[0])
    diff, same = np.abs(ours[1] - theirs[1]).max(), (predictions(ours[1], items) == predictions(theirs[1], items)).mean()
    print(f"  lm-eval HFLM, batch {best} (its best), all {len(items)} items, fastest of {a.repeats}: {theirs[0]:6.1f} s ({len(items) / theirs[0]:.2f} items/s)")
    print(f"  ours (loglikelihoods, batch {a.batch_size} / {a.batch_tokens} positions), all {len(items)} items, fastest of {a.repeats}: {ours[0]:6.1f} s ({len(items) / ours[0]:.2f} items/s)")
    print(f"  max |Δ log-likelihood| of a choice {diff:.1e}; same prediction on {same:.1%} of items")
    assert diff < 1e-4 and same == 1.0, "the two scorers disagree: the timing compares different work"
    return theirs[0] / ours[0]


def against_one_at_a_time(model, tok, spec: str, a) -> float:
    lang, _ = WORKLOADS[spec]
    items = retention_items(spec, lang, a.items, seed=0)
    reqs = requests_for(items, lang)
    loglikelihoods(model, tok, reqs[:32], batch_size=8, progress=False)
    one = timed(lambda: loglikelihoods(model, tok, reqs, batch_size=1, progress=False))
    batched = timed(lambda: loglikelihoods(model, tok, reqs, batch_size=a.batch_size, progress=False, batch_tokens=a.batch_tokens))
    print(f"{spec}: {len(items)} items; one at a time {one[0]:.1f} s, batched ({a.batch_size}) {batched[0]:.1f} s; "
          f"max |Δ log p| {np.abs(one[1] - batched[1]).max():.1e}")
    return one[0] / batched[0]


def main(argv=None) -> int:
    defaults = RunConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--workloads", default="arc-easy,jcommonsenseqa-leaderboard", help=f"comma-separated, of: {', '.join(WORKLOADS)}")
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--sweep-items", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=defaults.eval_batch_size, help="ours: questions per batch (stage 07's eval_batch_size)")
    ap.add_argument("--batch-tokens", type=int, default=defaults.eval_batch_tokens, help="ours: packed positions per batch at most (eval_batch_tokens)")
    ap.add_argument("--repeats", type=int, default=2, help="timings on all items, in turn; the fastest of each kept")
    ap.add_argument("--vs", default="lm-eval", choices=["lm-eval", "one-at-a-time"])
    a = ap.parse_args(argv)
    model, tok = load_model(a.model, device="cpu", dtype="float32")  # fp32: lm-eval takes its log-softmax in the model's dtype
    print(f"{a.model}, float32, {torch.get_num_threads()} threads", flush=True)
    compare = against_lm_eval if a.vs == "lm-eval" else against_one_at_a_time
    ratios = {spec: compare(model, tok, spec, a) for spec in a.workloads.split(",")}
    what = "lm-eval HFLM at its best batch / ours" if a.vs == "lm-eval" else "one item at a time / batched"
    print(f"{what} (same requests, same model): " + ", ".join(f"{spec} {r:.1f}x" for spec, r in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
