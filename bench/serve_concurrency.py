"""`creativity-llm serve` under concurrent clients (issue 21): wall time of N requests sent at once against the same N sent one
at a time, same server, prompts and seeds; the ratio is printed last.

The server runs in this process on 127.0.0.1 (its `BatchingEngine`, the model's threads) and the clients are threads, as
the pipeline's `OpenAIGenerator` sends them. Sampled (temperature 0.7, a seed per request), `--max-tokens` tokens each. A
seeded request draws its tokens with its own generator, so the answers of the two ways are compared too: on CPU in fp32
they are the same text unless padding changes the logits in the last bits (the count of differing answers is printed).

    .venv/bin/python bench/serve_concurrency.py                    # SmolLM2, 16 requests, 48 tokens
    .venv/bin/python bench/serve_concurrency.py --model micro:llama --requests 8"""
import argparse, threading, time
from concurrent.futures import ThreadPoolExecutor

import httpx

from creativity_llm.generate import TransformersGenerator
from creativity_llm.models import load_model
from creativity_llm.serve import BatchingEngine, make_server

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", default="smollm2")
ap.add_argument("--requests", type=int, default=16)
ap.add_argument("--max-tokens", type=int, default=48)
ap.add_argument("--max-batch", type=int, default=16)
ap.add_argument("--window-ms", type=float, default=20.0)
args = ap.parse_args()

model, tok = load_model(args.model, device="cpu", dtype="float32")
engine = BatchingEngine(TransformersGenerator(model, tok, progress=False, max_new_tokens=args.max_tokens), max_batch=args.max_batch,
                        window_s=args.window_ms / 1000)
srv = make_server(engine, args.model, port=0, max_tokens_cap=args.max_tokens)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_address[1]}/v1/chat/completions"
topics = ["a folding chair", "a solar lamp", "a rice cooker", "a bicycle lock", "a water filter", "a kite", "a thermos", "a stapler"]
prompts = [f"Give three new uses for {topics[i % len(topics)]} (variant {i})." for i in range(args.requests)]

def ask(i):
    r = httpx.post(url, timeout=600, json={"messages": [{"role": "user", "content": prompts[i]}], "max_tokens": args.max_tokens,
                                           "temperature": 0.7, "top_p": 0.95, "seed": 1000 + i})
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"], int(r.headers["X-Batch-Size"])

ask(0)  # warm-up
t0 = time.perf_counter()
one_by_one = [ask(i) for i in range(args.requests)]
t_seq = time.perf_counter() - t0
t0 = time.perf_counter()
with ThreadPoolExecutor(args.requests) as pool: together = list(pool.map(ask, range(args.requests)))
t_con = time.perf_counter() - t0
srv.shutdown(); srv.server_close()

print(f"{args.model}, {args.requests} requests of {args.max_tokens} tokens, CPU fp32, max batch {args.max_batch}, window {args.window_ms:g} ms")
print(f"one at a time: {t_seq:.1f} s ({args.requests / t_seq:.2f} requests/s), batch sizes {sorted({b for _, b in one_by_one})}")
print(f"all at once:   {t_con:.1f} s ({args.requests / t_con:.2f} requests/s), batch sizes {sorted(b for _, b in together)}")
print(f"answers that differ between the two ways: {sum(a != b for (a, _), (b, _) in zip(one_by_one, together))} of {args.requests}")
print(f"speed-up of concurrent requests: {t_seq / t_con:.2f}x")
