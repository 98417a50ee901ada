"""Compare two run directories file by file: every file byte-identical except those on the skip list below.

    python bench/compare_runs.py runs/tiny_a runs/tiny_b
    python bench/compare_runs.py runs/before runs/after --ignore-field fingerprint   # two commits of the code

Outputs are reproducible: the same command, seed and machine give the same bytes. What may differ is named here, once,
with the reason; anything else that differs is a defect. Exit status 0 when nothing outside the skip list differs, 1 otherwise.

Between two commits, one thing differs by design: the training fingerprints (stage 02's experts, stage 05's checkpoints)
hash the source of the training code, so that a checkpoint written by other code is never resumed. `--ignore-field NAME`
compares a JSON, JSON-lines or Parquet file that differs once more with every key or column NAME removed, and reports
those that are then equal apart; it never hides a file that differs anywhere else.
"""
from __future__ import annotations
import argparse, fnmatch, hashlib, sys
from collections import defaultdict
from pathlib import Path

SKIP = {  # glob (relative to the run directory, '/'-separated) → why its bytes may differ between two identical runs
    "manifest.json": "the run's log: start and finish times, wall times, history, absolute paths",
    "notebooks/*": "executed notebooks: cell outputs carry progress bars, timings and log lines",
    "logs/*": "each stage kernel's whole output (and the plan's warnings), appended run after run: timestamps, timings, progress bars",
    ".run.lock": "lock file of the runner",
    ".manifest.lock": "lock file of the manifest",
    "*/tensorboard/*": "TensorBoard event files (stage 05's and the expert bank's): named by time, host and pid, each event stamped with its wall time",
    "*/.cache/*.jsonl": "answer caches: scratch state a stage keeps to resume; lines are appended as answers arrive (endpoint answers in completion order), and a resumed run keeps its first run's lines",
}


def skip_reason(rel: str) -> str | None:
    "The reason `rel` is on the skip list, or None."
    return next((why for pattern, why in SKIP.items() if fnmatch.fnmatchcase(rel, pattern)), None)  # '*' matches across '/' here


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20): h.update(b)
    return h.hexdigest()


def files(root: Path) -> dict[str, Path]:
    "Every regular file under `root`, hidden ones included, by its '/'-separated relative path."
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def compare(a, b) -> dict:
    "{'same': [...], 'differ': [...], 'only_a': [...], 'only_b': [...], 'skipped': {rel: why}} over the files of two run directories."
    fa, fb = files(Path(a)), files(Path(b))
    out = {"same": [], "differ": [], "only_a": [], "only_b": [], "skipped": {}}
    for rel in sorted(set(fa) | set(fb)):
        if (why := skip_reason(rel)) is not None: out["skipped"][rel] = why
        elif rel not in fb: out["only_a"].append(rel)
        elif rel not in fa: out["only_b"].append(rel)
        elif fa[rel].stat().st_size == fb[rel].stat().st_size and _sha256(fa[rel]) == _sha256(fb[rel]): out["same"].append(rel)
        else: out["differ"].append(rel)
    return out


def _without(obj, names: set):
    if isinstance(obj, dict): return {k: _without(v, names) for k, v in obj.items() if k not in names}
    if isinstance(obj, list): return [_without(v, names) for v in obj]
    return obj


def content_without(path: Path, names: set):
    "The file's content with every key (JSON, JSON lines) or column (Parquet) in `names` removed; None for other kinds of file."
    import json
    if path.suffix == ".json": return _without(json.loads(path.read_text()), names)
    if path.suffix == ".jsonl": return [_without(json.loads(l), names) for l in path.read_text().splitlines() if l.strip()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        t = pq.read_table(path)
        return t.drop_columns([c for c in t.column_names if c in names]).to_pylist()
    return None


def equal_apart_from(a: Path, b: Path, names: set) -> bool:
    "Whether two files are equal once the fields `names` are removed from both (only for JSON, JSON lines and Parquet)."
    ca = content_without(a, names)
    return ca is not None and ca == content_without(b, names)


def _top(rel: str) -> str: return rel.split("/", 1)[0] if "/" in rel else "(run)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a"); ap.add_argument("run_b")
    ap.add_argument("--ignore-field", action="append", default=[], metavar="NAME",
                    help="a key or column whose values may differ (e.g. fingerprint, between two commits); repeatable")
    args = ap.parse_args(argv)
    for d in (args.run_a, args.run_b):
        if not Path(d).is_dir(): ap.error(f"{d}: not a directory")
    res = compare(args.run_a, args.run_b)
    fields = set(args.ignore_field)
    apart = [r for r in res["differ"] if fields and equal_apart_from(Path(args.run_a, r), Path(args.run_b, r), fields)]
    res["differ"] = [r for r in res["differ"] if r not in apart]
    per = defaultdict(lambda: defaultdict(int))
    for key in ("same", "differ", "only_a", "only_b"):
        for rel in res[key]: per[_top(rel)][key] += 1
    for rel in res["skipped"]: per[_top(rel)]["skipped"] += 1
    print(f"{'folder':16} {'identical':>9} {'differ':>6} {'only A':>6} {'only B':>6} {'skipped':>7}")
    for top in sorted(per):
        c = per[top]
        print(f"{top:16} {c['same']:9d} {c['differ']:6d} {c['only_a']:6d} {c['only_b']:6d} {c['skipped']:7d}")
    reasons = defaultdict(list)
    for rel, why in res["skipped"].items(): reasons[why].append(rel)
    print("\nskipped (named in bench/compare_runs.py):")
    for why, rels in reasons.items(): print(f"  {len(rels):4d} file(s): {why}")
    if apart: print(f"\nequal apart from {', '.join(sorted(fields))}:")
    for rel in apart: print(f"  {rel}")
    bad = [("differs", r) for r in res["differ"]] + [("only in A", r) for r in res["only_a"]] + [("only in B", r) for r in res["only_b"]]
    for what, rel in bad: print(f"{what}: {rel}")
    total = len(res["same"]) + len(apart) + len(bad)
    print(f"\n{len(res['same'])} of {total} compared files byte-identical" + (f", {len(apart)} equal apart from {', '.join(sorted(fields))}" if apart else "")
          + f", {len(bad)} not; {len(res['skipped'])} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
