"""Multiple-choice evaluation throughput (issue 7): items/s of `loglikelihoods` batched vs one request at a time, same model
(the embedded SmolLM2-135M-Instruct by default), same ARC-Easy items from ../shared/data, CPU fp32, one run; the ratio is printed last.
Both paths compute the same numbers (checked here to 1e-4 in log-probability, and the predictions must agree)."""
import argparse, time
from pathlib import Path

import numpy as np
import torch

from creativity_llm.models import load_model
from creativity_llm.multiple_choice import load_mc, requests_for, loglikelihoods

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--model", default="smollm2")
ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/english_mc/arc_easy_test.jsonl"))
ap.add_argument("--items", type=int, default=40)
ap.add_argument("--batch-size", type=int, default=32)
a = ap.parse_args()

model, tok = load_model(a.model, device="cpu", dtype="float32")
items = load_mc(a.data, limit=a.items)
reqs = requests_for(items)
loglikelihoods(model, tok, reqs[:4], batch_size=4, progress=False)  # warm-up
t = time.perf_counter(); single = loglikelihoods(model, tok, reqs, batch_size=1, progress=False); t_single = time.perf_counter() - t
t = time.perf_counter(); batched = loglikelihoods(model, tok, reqs, batch_size=a.batch_size, progress=False); t_batched = time.perf_counter() - t
assert np.allclose(single, batched, atol=1e-4, rtol=0), float(np.abs(single - batched).max())
print(f"{len(items)} items ({len(reqs)} choices), {a.model}, {torch.get_num_threads()} threads; max |Δ log p| batched vs single {np.abs(single - batched).max():.1e}")
print(f"one at a time: {len(items) / t_single:.2f} items/s ({t_single:.1f} s)")
print(f"batched ({a.batch_size}): {len(items) / t_batched:.2f} items/s ({t_batched:.1f} s)")
print(f"batched / one at a time: {t_single / t_batched:.1f}x")
