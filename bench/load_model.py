"""Load time of the tiny preset's model: plain transformers GGUF load vs. our first load (convert + cache) vs. cached.

Prints seconds for each and the speed-up of the cached load over the plain GGUF load, all measured in this run.
Each measurement runs in a fresh Python process; the clock starts after the imports (torch and transformers\ntake about 3 s to import here, the same for every variant).
"""
import argparse, json, subprocess, sys, tempfile, time

PLAIN = """
import time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from creativity_llm.models import resolve_model
p = resolve_model('smollm2').path
t = time.perf_counter()
AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name, local_files_only=True)
AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name, dtype=torch.float32, local_files_only=True)
print(time.perf_counter() - t)
"""
OURS = """
import sys, time
from creativity_llm.models import load_model
t = time.perf_counter()
load_model('smollm2', device='cpu', cache_dir=sys.argv[1])
print(time.perf_counter() - t)
"""


def timed(code: str, *args) -> float:
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2, help="cached loads to time (the best is reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        plain = timed(PLAIN)
        first = timed(OURS, cache)
        cached = min(timed(OURS, cache) for _ in range(args.repeats))
    print(json.dumps({"plain_gguf_load_s": round(plain, 2), "first_load_s": round(first, 2), "cached_load_s": round(cached, 2),
                      "speedup_cached_vs_plain": round(plain / cached, 1)}))
