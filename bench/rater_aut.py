"""Agreement of the LLM creativity rater (`creativity_llm.rater`) with human originality ratings on the AUT.

Rows: the 3,030-row test file `../shared/data/creativity_aut/aut_human_originality_gt_main2.jsonl` (Ocsai 1's test split,
21 objects), the figures reported; the weight of the rater in the combination with the heuristic is chosen on the 1,010-row
val file `ocsai1_main2_val.jsonl` after dropping its rows that repeat a test response (object and response equal, case and
spaces folded). The heuristic is `PatentQualityScorer`'s total with each object's responses as its reference, as
`scorer.validate_aut` scores them. Printed: Spearman rho with a 1,000-resample bootstrap CI for the rater, the heuristic and
the combination, the failures and where the ratings came from (probabilities or text), the mean probability mass on the
rating tokens, the weight, the model and the prompt version; the figures last.

    .venv/bin/python bench/rater_aut.py                                  # SmolLM2-135M-Instruct (the embedded GGUF), CPU
    .venv/bin/python bench/rater_aut.py --model micro:llama --rows 200   # a smoke run of the path (random weights)
    .venv/bin/python bench/rater_aut.py --endpoint http://HOST:8000 --endpoint-model NAME   # any OpenAI-compatible server with logprobs

Ratings are cached (--cache, default bench/cache/rater/<model>.jsonl, not committed): a killed run re-rates only what is missing.
"""
import argparse, json, random, re, sys, time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from creativity_llm.generate import AnswerCache, model_identity  # noqa: E402
from creativity_llm.rater import RATER_PROMPTS, EndpointRater, LocalRater, best_weight, rate_rows, validate_rater  # noqa: E402
from creativity_llm.scorer import PatentQualityScorer, ReferenceCorpus, load_aut  # noqa: E402

AUT = ROOT.parent / "shared" / "data" / "creativity_aut"


def fold(r: dict) -> tuple[str, str]:
    return r["prompt"].strip().lower(), re.sub(r"\s+", " ", r["response"].strip().lower())


def heuristic_totals(rows: list[dict]) -> list[float]:
    "Each response's total against the other responses to its object (itself left out), in the rows' order."
    by_prompt = defaultdict(list)
    for k, r in enumerate(rows): by_prompt[r["prompt"]].append(k)
    out = [0.0] * len(rows)
    for ks in by_prompt.values():
        scorer = PatentQualityScorer(reference=ReferenceCorpus([rows[k]["response"] for k in ks]))
        for k in ks: out[k] = scorer.score(rows[k]["response"]).total
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", help="a local model spec (smollm2, micro:llama, a folder, a .gguf)")
    ap.add_argument("--endpoint", help="rate through this OpenAI-compatible server instead of a local model")
    ap.add_argument("--endpoint-model", default="default")
    ap.add_argument("--test", type=Path, default=AUT / "aut_human_originality_gt_main2.jsonl")
    ap.add_argument("--val", type=Path, default=AUT / "ocsai1_main2_val.jsonl")
    ap.add_argument("--rows", type=int, default=0, help="a seeded sample of this many test rows (0: all) and as many val rows at most")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--cache", type=Path, help="ratings cache (JSONL)")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args(argv)

    test, val = load_aut(args.test), load_aut(args.val)
    seen = {fold(r) for r in test}
    val_kept = [r for r in val if fold(r) not in seen]
    if args.rows:
        rng = random.Random(0)
        test = rng.sample(test, min(args.rows, len(test)))
        val_kept = rng.sample(val_kept, min(args.rows, len(val_kept)))
    if args.endpoint:
        name = f"endpoint:{args.endpoint_model}"
        cache = AnswerCache(args.cache or ROOT / "bench" / "cache" / "rater" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.jsonl")
        rater = EndpointRater(args.endpoint, args.endpoint_model, cache=cache, progress=True)
    else:
        from creativity_llm.models import load_model
        name = args.model
        model, tok = load_model(args.model, device="cpu", dtype="float32")
        cache = AnswerCache(args.cache or ROOT / "bench" / "cache" / "rater" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.jsonl")
        rater = LocalRater(model, tok, batch_size=args.batch_size, cache=cache, identity=model_identity(args.model), progress=True)
    t0 = time.perf_counter()
    val_ratings = rate_rows(rater, val_kept)
    test_ratings = rate_rows(rater, test)
    seconds = time.perf_counter() - t0
    cache.close()
    weight = best_weight(val_ratings, heuristic_totals(val_kept), [r["originality_human"] for r in val_kept])
    report = validate_rater(test_ratings, heuristic_totals(test), [r["originality_human"] for r in test], weight, n_boot=args.n_boot)
    fmt = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"
    print(json.dumps({"model": name, "prompt": RATER_PROMPTS["en"].version, "test_rows": len(test), "val_rows": len(val_kept),
                      "val_dropped_as_repeats": len(val) - len([r for r in val if fold(r) not in seen]), "rating_seconds": round(seconds, 1),
                      "cache": cache.summary(), **{k: v for k, v in report.items() if k not in ("rater", "heuristic", "combined")}}))
    print(f"Spearman rho with human originality, {report['n']} test rows ({report['failed']} failed ratings), model {name}, "
          f"prompt {RATER_PROMPTS['en'].version}, weight {weight:g} chosen on {len(val_kept)} val rows:")
    print(f"  rater alone      {fmt(report['rater'])}")
    print(f"  heuristic total  {fmt(report['heuristic'])}")
    print(f"  combined         {fmt(report['combined'])}")
    return report


if __name__ == "__main__":
    main()
