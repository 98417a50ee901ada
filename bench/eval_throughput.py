"""Multiple-choice evaluation throughput (issue 7): items/s of `loglikelihoods` batched vs one item at a time, same model
(the embedded SmolLM2-135M-Instruct by default), same ARC-Easy items from ../shared/data, CPU fp32, one run; the ratio is printed last.

Three ways to the same numbers, timed in this order after a warm-up:
- per request: each (question, choice) pair run in full, one at a time, logits over the whole sequence (the textbook loop);
- one item at a time: `loglikelihoods(batch_size=1)`: one question through the decoder, its choices scored from its KV cache;
- batched: `loglikelihoods(batch_size=B)`: B questions at once, then all their choices from the shared cache.
All three must agree to 1e-4 in log-probability (checked here)."""
import argparse, time
from pathlib import Path

import numpy as np
import torch

from creativity_llm.models import load_model
from creativity_llm.multiple_choice import _encode, load_mc, loglikelihoods, requests_for

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default="smollm2")
ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/english_mc/arc_easy_test.jsonl"))
ap.add_argument("--items", type=int, default=64)
ap.add_argument("--batch-size", type=int, default=16)
a = ap.parse_args()

model, tok = load_model(a.model, device="cpu", dtype="float32")
items = load_mc(a.data, limit=a.items)
reqs = requests_for(items)

@torch.inference_mode()
def per_request(reqs):
    out = []
    for c, x in reqs:
        full, n = _encode(tok, c, x)
        lp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), -1)
        out.append(float(lp[torch.arange(len(full) - n - 1, len(full) - 1), torch.tensor(full[-n:])].double().sum()))
    return np.array(out)

loglikelihoods(model, tok, reqs[:8], batch_size=2, progress=False); per_request(reqs[:4])  # warm-up
timed = {}
for name, fn in (("per request", lambda: per_request(reqs)), ("one item at a time", lambda: loglikelihoods(model, tok, reqs, batch_size=1, progress=False)),
                 (f"batched ({a.batch_size} items)", lambda: loglikelihoods(model, tok, reqs, batch_size=a.batch_size, progress=False))):
    t = time.perf_counter(); ll = fn(); timed[name] = (time.perf_counter() - t, ll)
ref = timed["per request"][1]
tokens = sum(len(_encode(tok, c, x)[0]) for c, x in reqs)
print(f"{len(items)} items ({len(reqs)} choices, {tokens} tokens run in full), {a.model}, {torch.get_num_threads()} threads")
for name, (t, ll) in timed.items():
    d = np.abs(ll - ref).max()
    assert d < 1e-4, f"{name}: max |Δ log p| {d:.1e}"
    print(f"{name:>22}: {len(items) / t:6.2f} items/s ({t:.1f} s), max |Δ log p| vs per request {d:.1e}")
one, batched = timed["one item at a time"][0], timed[f"batched ({a.batch_size} items)"][0]
print(f"batched / one item at a time with the same shared-prefix scorer: {one / batched:.1f}x")
print(f"batched / one item at a time, each choice run in full (the plain loop): {timed['per request'][0] / batched:.1f}x")
