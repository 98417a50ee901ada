"""Documents scored per second by PatentQualityScorer on one CPU core, for a 1,000-response mix of Japanese and English.

The responses are numbered idea lists (2 to 5 items) assembled with a fixed seed from the sentences of the project's
sample corpus (`data/samples`, English and Japanese inventions and abstracts), so the benchmark needs nothing outside
the repository. The reference corpus is the 1,000 responses themselves, as in the pipeline stage, and every response is
scored with itself left out. The sample corpus is small, so the same sentence recurs across responses; to measure text
that is all new (the realistic case for generated pairs), the word caches are emptied before *every document* (the
per-word stem cache, a vocabulary rather than text, is kept), and the
figure printed last is that one. The figure with the cache kept across documents is printed too.

Baseline, measured in the same process: the morphological analysis / tokenization alone (MeCab for Japanese, the
regular-expression tokenizer for English) of the same responses. The ratio says how much the five dimensions cost on
top of reading the words. The throughput is printed last.
"""
import argparse, json, os, random, re, time

from creativity_llm.scorer import PatentQualityScorer, ReferenceCorpus, ScorerConfig, clean_text, clear_caches, content_words, split_ideas
from creativity_llm.sources import load_samples


def make_responses(n: int, seed: int = 0) -> list[str]:
    "n numbered idea lists, half Japanese, half English, built from sample sentences."
    docs = load_samples("inventions") + load_samples("academic")
    sentences = {"en": [], "ja": []}
    for d in docs:
        parts = re.split(r"(?<=[。.!?])\s*", d.text)
        sentences[d.lang] += [p.strip() for p in parts if len(p.strip()) > 15]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pool = sentences["ja" if i % 2 else "en"]
        out.append("\n".join(f"{k}. {s}" for k, s in enumerate(rng.sample(pool, rng.randint(2, 5)), 1)))
    return out


def best_of(fn, docs, repeats: int, cold: bool) -> float:
    "Best wall time of `fn` over all docs; `cold` empties the word cache before each document (all text new)."
    times = []
    for _ in range(repeats):
        clear_caches()
        t0 = time.perf_counter()
        for d in docs:
            if cold: clear_caches()
            fn(d)
        times.append(time.perf_counter() - t0)
    return min(times)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--originality", default="pool")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"): os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    docs = make_responses(args.docs)
    chars = sum(map(len, docs))
    content_words("warm-up: MeCab loads its dictionary once"); content_words("辞書を読み込む")
    t0 = time.perf_counter(); reference = ReferenceCorpus(docs); build_s = time.perf_counter() - t0
    scorer = PatentQualityScorer(ScorerConfig(originality=args.originality), reference)
    tokenize = lambda d: [content_words(seg) for seg in split_ideas(clean_text(d))]
    tokenize_s = best_of(tokenize, docs, args.repeats, cold=True)
    score_s = best_of(scorer.score, docs, args.repeats, cold=True)
    warm_s = best_of(scorer.score, docs, args.repeats, cold=False)
    print(json.dumps({"docs": len(docs), "japanese": sum(1 for d in docs if re.search("[ぁ-ん]", d)), "mean_chars": round(chars / len(docs)),
                      "originality": args.originality, "reference_build_s": round(build_s, 3), "tokenize_only_s": round(tokenize_s, 3),
                      "score_s": round(score_s, 3), "score_over_tokenize": round(score_s / tokenize_s, 2),
                      "score_with_word_cache_s": round(warm_s, 3), "docs_per_s_with_word_cache": round(len(docs) / warm_s), "cpu_cores": 1}))
    print(f"documents scored per second on one core: {len(docs) / score_s:,.0f}")
