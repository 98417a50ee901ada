"""Multiple-choice evaluation throughput (issue 7): items/s of `loglikelihoods` batched vs one item at a time, with the same
scorer, the same model and the same items, in one run; the ratio is printed last.

The defaults are stage 07's own workload: its retention set (`--data samples`: the shipped 200-item English set, as the
tiny run), SmolLM2-135M-Instruct, and the stage's batch size and dtype (`eval_batch_size`; `eval_dtype` 'auto-inference' =
bf16 on a CPU with native bf16, else fp32). `--data arc-easy` (../shared/data), `--lang ja --model gemma3-270m` or
`--dtype float32` measure other workloads.

After a warm-up, the two ways are timed in turn, `--repeats` times each, and each one's fastest time kept:
- one item at a time: `loglikelihoods(batch_size=1)`: one question through the decoder, its choices scored from its KV cache;
- batched: `loglikelihoods(batch_size=B)`: B questions at once, then all their choices from the shared caches;
- for reference (once), the textbook loop on the first `--plain-items` items: each (question, choice) pair run in full, one at a time.
In fp32 all three must agree to 1e-4 in log-probability (checked). In bf16 the rounding depends on a batch's padding, so the
largest difference and the share of items whose prediction is the same are printed instead."""
import argparse, time

import numpy as np
import torch

from creativity_llm.pipeline import RunConfig
from creativity_llm.multiple_choice import retention_items
from creativity_llm.models import load_model, pick_dtype
from creativity_llm.multiple_choice import _encode, loglikelihoods, requests_for

defaults = RunConfig()
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default=defaults.model)
ap.add_argument("--data", default=defaults.eval_mc_en, help="'samples', 'arc-easy', 'openbookqa', 'jcommonsenseqa', 'jmmlu' or a JSONL path")
ap.add_argument("--lang", default="en", choices=["en", "ja"])
ap.add_argument("--items", type=int, default=defaults.eval_mc_items)
ap.add_argument("--batch-size", type=int, default=defaults.eval_batch_size)
ap.add_argument("--dtype", default=defaults.eval_dtype)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--plain-items", type=int, default=32)
a = ap.parse_args()

model, tok = load_model(a.model, device="cpu", dtype=a.dtype)
dtype = pick_dtype(a.dtype, "cpu")
items = retention_items(a.data, a.lang, a.items, seed=0)
reqs = requests_for(items, a.lang)
plain_reqs = requests_for(items[:a.plain_items], a.lang)

@torch.inference_mode()
def per_request(reqs):
    out = []
    for c, x in reqs:
        full, n = _encode(tok, c, x)
        lp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), -1)
        out.append(float(lp[torch.arange(len(full) - n - 1, len(full) - 1), torch.tensor(full[-n:])].double().sum()))
    return np.array(out)

def timed(fn):
    t = time.perf_counter(); out = fn()
    return time.perf_counter() - t, out

def predictions(ll, its):
    k, out = 0, []
    for it in its: out.append(int(np.argmax(ll[k:k + len(it.choices)]))); k += len(it.choices)
    return np.array(out)

loglikelihoods(model, tok, reqs[:4 * a.batch_size], batch_size=a.batch_size, progress=False); per_request(reqs[:4])  # warm-up
one = batched = None
for _ in range(a.repeats):  # alternated, so that a slow spell of the machine hits both ways
    one = min(one or (np.inf,), timed(lambda: loglikelihoods(model, tok, reqs, batch_size=1, progress=False)), key=lambda r: r[0])
    batched = min(batched or (np.inf,), timed(lambda: loglikelihoods(model, tok, reqs, batch_size=a.batch_size, progress=False)), key=lambda r: r[0])
plain = timed(lambda: per_request(plain_reqs))

n_ctx = np.mean([len(_encode(tok, c, x)[0]) - len(tok(x, add_special_tokens=False)["input_ids"]) for c, x in reqs])
print(f"{len(items)} items of {a.data} ({a.lang}, {len(reqs)} choices, {n_ctx:.0f} question tokens on average), {a.model}, "
      f"{str(dtype).replace('torch.', '')}, {torch.get_num_threads()} threads, fastest of {a.repeats}")
print(f"{'one item at a time':>26}: {len(items) / one[0]:6.2f} items/s ({one[0]:.1f} s)")
print(f"{f'batched ({a.batch_size} items)':>26}: {len(items) / batched[0]:6.2f} items/s ({batched[0]:.1f} s)")
n_plain = min(a.plain_items, len(items))
print(f"{f'per request (first {n_plain})':>26}: {n_plain / plain[0]:6.2f} items/s ({plain[0]:.1f} s)")
d_one, d_batched = (np.abs(ll[:len(plain_reqs)] - plain[1]).max() for ll in (one[1], batched[1]))
same = (predictions(one[1], items) == predictions(batched[1], items)).mean()
print(f"max |Δ log p| vs per request: one at a time {d_one:.1e}, batched {d_batched:.1e}; batched vs one at a time "
      f"{np.abs(one[1] - batched[1]).max():.1e}, same prediction on {same:.1%} of items")
if dtype == torch.float32:
    assert max(d_one, d_batched, np.abs(one[1] - batched[1]).max()) < 1e-4, "fp32 scorers disagree"
print(f"batched / one item at a time (same scorer, same model, same items): {one[0] / batched[0]:.1f}x")
