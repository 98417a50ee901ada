"""Generated tokens per second of the batched local backend against one prompt at a time, same prompts, same model.

Both runs use the stage's own creativity prompts (English sample inventions), the tiny preset's teacher
(SmolLM2-135M-Instruct, teacher dtype 'auto-inference') and greedy decoding, so both sides produce the same
answers and the same number of tokens: the ratio measures batching alone. The ratio is printed last.
"""
import argparse, json, time

from creativity_llm.generate import TransformersGenerator
from creativity_llm.models import load_model
from creativity_llm.sources import load_samples
from creativity_llm.synthesis import creativity_messages


def tokens_per_s(gen: TransformersGenerator, prompts) -> tuple[float, int, list[str]]:
    t0 = time.perf_counter()
    out = gen(prompts)
    elapsed = time.perf_counter() - t0
    n = sum(len(gen.tok(o, add_special_tokens=False)["input_ids"]) for o in out)
    return n / elapsed, n, out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--dtype", default="auto-inference")
    args = ap.parse_args()
    model, tok = load_model(args.model, dtype=args.dtype)
    docs = [d for d in load_samples("inventions") if d.lang == "en"][: args.prompts]
    prompts = [creativity_messages(d, "divergent", 4) for d in docs]
    kw = dict(max_new_tokens=args.max_new_tokens, temperature=0.0, progress=False)
    sequential, n_seq, out_seq = tokens_per_s(TransformersGenerator(model, tok, batch_size=1, **kw), prompts)
    batched, n_bat, out_bat = tokens_per_s(TransformersGenerator(model, tok, batch_size=args.batch_size, **kw), prompts)
    same = sum(a == b for a, b in zip(out_seq, out_bat))
    print(json.dumps({"model": args.model, "prompts": len(prompts), "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                      "dtype": str(model.dtype), "sequential_tokens": n_seq, "batched_tokens": n_bat, "identical_answers": same,
                      "sequential_tok_per_s": round(sequential, 1), "batched_tok_per_s": round(batched, 1)}))
    print(f"batched / sequential tokens per second: {batched / sequential:.2f}x")
