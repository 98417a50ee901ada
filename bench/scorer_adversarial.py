"""Accuracy of `PatentQualityScorer` on the adversarial pair set (`tests/data/scorer_adversarial.jsonl`).

Each row of the set is a labelled pair of answers to one creativity prompt, `better` and `worse`, built to expose one
attack on the scorer (noun padding, one idea repeated, cue stuffing, list stuffing, unit filler, vague shells, off-topic
detail, full-width / mixed-script lists, long bland answers, and honest pairs where the longer answer is better); the
card `tests/data/scorer_adversarial.md` describes it. The scorer is built exactly as `tests/test_scoring.py` builds
`SCORER`: default `ScorerConfig`, reference corpus = the `better` and `worse` texts of `tests/data/scorer_pairs.jsonl`.

Each answer is scored with its pair's prompt (`score(text, prompt=...)`), as stages 04 and 07 score theirs.
A pair counts as correct only if total(better) - total(worse) >= `--margin` (default 0.02); accuracy without the
margin (total(better) > total(worse)) is printed too. The set is split in two halves by a fixed rule on the id, never
stored in the file:

    half = "dev" if int(hashlib.sha256(id.encode()).hexdigest(), 16) % 2 == 0 else "heldout"

Harden the scorer against `dev`; report `heldout` untouched. Prints accuracy per half, per attack, per language, and
the ids of the missed pairs (`--markdown`: the per-half and per-attack tables of the card as well).

    .venv/bin/python bench/scorer_adversarial.py [--margin 0.02] [--markdown] [--verbose]
"""
import argparse, hashlib, json, sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

from creativity_llm.scorer import PatentQualityScorer, ReferenceCorpus  # noqa: E402

ATTACKS = ("noun-padding", "one-idea-repeated", "cue-stuffing", "list-stuffing", "unit-filler", "vague-shell", "off-topic-detailed",
           "fullwidth-mixed-script", "long-bland-vs-short-original", "honest-longer-better")
FIELDS = ("id", "lang", "attack", "prompt", "better", "worse", "why")
HALVES = ("dev", "heldout")


def half_of(pair_id: str) -> str:
    "The half a pair belongs to, by the fixed rule on its id."
    return "dev" if int(hashlib.sha256(pair_id.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def load_pairs(path: Path) -> list[dict]:
    "The rows of the set, checked: every field a non-empty string, ids unique, known attack and language."
    rows, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip(): continue
        row = json.loads(line)
        bad = [k for k in FIELDS if not isinstance(row.get(k), str) or not row[k].strip()]
        if bad: raise ValueError(f"{path}:{n}: field(s) {bad} missing or empty")
        if row["id"] in seen: raise ValueError(f"{path}:{n}: duplicate id {row['id']!r}")
        if row["attack"] not in ATTACKS: raise ValueError(f"{path}:{n}: unknown attack {row['attack']!r}")
        if row["lang"] not in ("en", "ja"): raise ValueError(f"{path}:{n}: lang must be 'en' or 'ja', got {row['lang']!r}")
        seen.add(row["id"])
        rows.append(row)
    return rows


def default_scorer(reference_pairs: Path) -> PatentQualityScorer:
    "The scorer of tests/test_scoring.py: default config, reference = both answers of every pair in `reference_pairs`."
    pairs = [json.loads(l) for l in reference_pairs.read_text(encoding="utf-8").splitlines() if l.strip()]
    return PatentQualityScorer(reference=ReferenceCorpus([p[k] for p in pairs for k in ("better", "worse")]))


def check_split(rows: list[dict]) -> list[str]:
    "Problems with the set's coverage: attacks missing from a half, attacks with fewer than 3 pairs (6 honest) in a language."
    problems = []
    for h in HALVES:
        have = {r["attack"] for r in rows if half_of(r["id"]) == h}
        problems += [f"half {h} has no pair of attack {a}" for a in ATTACKS if a not in have]
    counts = Counter((r["attack"], r["lang"]) for r in rows)
    for a in ATTACKS:
        for lang in ("en", "ja"):
            need = 6 if a == "honest-longer-better" else 3
            if counts[a, lang] < need: problems.append(f"{a} / {lang}: {counts[a, lang]} pairs, need {need}")
    return problems


def _acc(results: list[dict], key: str) -> str:
    ok = sum(r[key] for r in results)
    return f"{ok}/{len(results)} = {ok / len(results):.2f}" if results else "-"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "scorer_adversarial.jsonl", help="the adversarial set (JSONL)")
    ap.add_argument("--reference", type=Path, default=ROOT / "tests" / "data" / "scorer_pairs.jsonl",
                    help="pairs whose answers form the reference corpus, as in tests/test_scoring.py")
    ap.add_argument("--margin", type=float, default=0.02, help="total(better) - total(worse) needed for a pair to count as correct")
    ap.add_argument("--markdown", action="store_true", help="also print the per-half and per-attack tables in Markdown")
    ap.add_argument("--verbose", action="store_true", help="print both totals of every pair")
    args = ap.parse_args(argv)

    rows = load_pairs(args.data)
    scorer = default_scorer(args.reference)
    results = []
    for r in rows:
        b, w = (scorer.score(r[k], prompt=r["prompt"]).total for k in ("better", "worse"))
        results.append({**r, "half": half_of(r["id"]), "diff": b - w, "total_better": b, "total_worse": w,
                        "margin_ok": b - w >= args.margin, "plain_ok": b > w})

    print(f"{len(rows)} pairs from {args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data}; "
          f"correct = total(better) - total(worse) >= {args.margin:g} ('margin'), or > 0 ('plain')")
    for p in check_split(rows): print(f"WARNING: {p}")
    groups = [("all", "", results)]
    groups += [("half", h, [r for r in results if r["half"] == h]) for h in HALVES]
    groups += [("lang", lang, [r for r in results if r["lang"] == lang]) for lang in ("en", "ja")]
    groups += [("attack", a, [r for r in results if r["attack"] == a]) for a in ATTACKS]
    width = max(len(n) for _, n, _ in groups) + 8
    print(f"\n{'group':<{width}} {'margin':>16} {'plain':>16}")
    for kind, name, res in groups:
        print(f"{(kind + ' ' + name).strip():<{width}} {_acc(res, 'margin_ok'):>16} {_acc(res, 'plain_ok'):>16}")
    if args.verbose:
        print("\nid  half  total(better)  total(worse)  diff")
        for r in results: print(f"{r['id']:<42} {r['half']:<8} {r['total_better']:.3f}  {r['total_worse']:.3f}  {r['diff']:+.3f}")
    missed = [r for r in results if not r["margin_ok"]]
    print(f"\nmissed with margin {args.margin:g} ({len(missed)}):")
    for r in missed: print(f"  {r['id']:<42} {r['half']:<8} diff {r['diff']:+.3f}")
    if args.markdown:
        by = defaultdict(list)
        for r in results: by[r["attack"], r["half"]].append(r)
        print(f"\n| pairs | n | accuracy, margin {args.margin:g} | accuracy, no margin |\n|---|---|---|---|")
        for kind, name, res in groups[:5]:
            print(f"| {kind if kind == 'all' else name} | {len(res)} | {_acc(res, 'margin_ok')} | {_acc(res, 'plain_ok')} |")
        print(f"\n| attack | dev, margin {args.margin:g} | heldout, margin {args.margin:g} | all, margin {args.margin:g} | all, no margin |\n|---|---|---|---|---|")
        for a in ATTACKS:
            res = [r for r in results if r["attack"] == a]
            print(f"| `{a}` | {_acc(by[a, 'dev'], 'margin_ok')} | {_acc(by[a, 'heldout'], 'margin_ok')} | {_acc(res, 'margin_ok')} | {_acc(res, 'plain_ok')} |")
    return results


if __name__ == "__main__":
    main()
