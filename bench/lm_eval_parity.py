"""Our multiple-choice scorer (stage 07) against lm-evaluation-harness itself, on the same items and the same model.

    .venv/bin/python bench/lm_eval_parity.py                       # SmolLM2, 200 ARC-Easy items from the shared data
    .venv/bin/python bench/lm_eval_parity.py --data samples --lang ja --items 100

lm-eval runs a `multiple_choice` task defined on a local JSONL file (no download): the prompt is ours (`PROMPTS`), the
choices follow a space, the metrics are lm-eval's own `acc`, `acc_norm` (log-likelihood / characters of the choice) and
`acc_bytes` (/ UTF-8 bytes). Prints both sets of figures, the largest difference of a per-choice log-likelihood and the
items whose predictions differ; `tests/test_lm_eval_parity.py` runs the same comparison on shipped items.
"""
from __future__ import annotations
import argparse, json, os, sys
from pathlib import Path

import numpy as np


def lm_eval_task(items, lang: str, folder: Path, name: str) -> dict:
    "A zero-shot lm-eval `multiple_choice` task config over `items`, written to `folder/<name>.jsonl`, with our prompt."
    from creativity_llm.multiple_choice import PROMPTS
    template, delimiter = PROMPTS[lang]
    path = Path(folder) / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"id": it.id, "question": it.question, "choices": list(it.choices), "label": it.label}, ensure_ascii=False) + "\n"
                            for it in items), encoding="utf-8")
    return {"task": name, "dataset_path": "json", "test_split": "test", "output_type": "multiple_choice", "num_fewshot": 0,
            "dataset_kwargs": {"data_files": {"test": str(path)}, "cache_dir": str(Path(folder) / "hf_datasets")},
            "doc_to_text": template.replace("{question}", "{{question}}"), "doc_to_choice": "choices", "doc_to_target": "label",
            "target_delimiter": delimiter, "metadata": {"version": 1.0},
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm", "acc_bytes")]}


def lm_eval_leaderboard_requests(spec: str, start: int, n: int, folder: Path) -> list:
    """lm-eval's requests (`Instance`s) for documents `start`..`start + n - 1` of a leaderboard set, their shots as lm-eval draws them
    when it evaluates the whole file in order: its sampler, seeded as `simple_evaluate` seeds it (1234), makes the one draw per earlier
    document that `build_all_requests` makes (without rendering them), then lm-eval builds these documents' contexts and requests."""
    from lm_eval.tasks import TaskManager, get_task_dict
    from creativity_llm.multiple_choice import LM_EVAL_FEWSHOT_SEED, leaderboard_task
    cfg = leaderboard_task(spec, folder)
    task = get_task_dict([cfg], TaskManager(include_defaults=False))[cfg["task"]]
    task.set_fewshot_seed(LM_EVAL_FEWSHOT_SEED)
    docs = list(task.eval_docs)
    shots = task.config.num_fewshot or 0
    own = task.fewshot_cfg.split == task.config.test_split
    for doc in docs[:start if shots else 0]: task.sampler.sample(n=shots, eval_doc=doc if own else None)
    out = []
    for doc_id in range(start, start + n):
        ctx = task.fewshot_context(docs[doc_id], num_fewshot=shots, gen_prefix=task.doc_to_prefix(docs[doc_id]))
        out += task.construct_requests(doc=docs[doc_id], ctx=ctx, metadata=(cfg["task"], doc_id, 1))
    return out


def compare_with_lm_eval(model, tok, items, lang: str, folder, batch_size: int = 16) -> dict:
    "Score `items` with `evaluate_mc` and with lm-eval; per-choice log-likelihoods and per-item correctness of both."
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from creativity_llm.multiple_choice import evaluate_mc
    ours = evaluate_mc(model, tok, items, lang, batch_size=batch_size, progress=False)
    name = f"parity_{lang}"
    res = lm_eval.simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size), tasks=[lm_eval_task(items, lang, Path(folder), name)],
                                  task_manager=TaskManager(include_defaults=False), log_samples=True, bootstrap_iters=0,
                                  random_seed=None, numpy_random_seed=None, torch_random_seed=None, fewshot_random_seed=None)
    samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
    theirs_ll = [np.array([r[0] for r in s["filtered_resps"]], float) for s in samples]
    metrics = {k: res["results"][name][f"{k},none"] for k in ("acc", "acc_norm", "acc_bytes")}
    rows = ours["items"]
    return {"n": len(items), "ours": {k: ours[k] for k in ("acc", "acc_norm", "acc_bytes")}, "lm_eval": metrics, "items": rows,
            "max_abs_loglik_diff": max(float(np.max(np.abs(np.array(r["loglik"]) - t))) for r, t in zip(rows, theirs_ll)),
            "correct": {k: ([float(r[pred] == r["label"]) for r in rows], [float(s[k]) for s in samples])
                        for k, pred in (("acc", "pred"), ("acc_norm", "pred_norm"), ("acc_bytes", "pred_bytes"))}}


def main(argv=None) -> int:
    import tempfile
    from creativity_llm.multiple_choice import retention_items
    from creativity_llm.models import load_model
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--data", default="arc-easy", help="a retention set name of stage 07 ('samples', 'arc-easy', ...) or a JSONL path")
    ap.add_argument("--lang", default="en")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args(argv)
    model, tok = load_model(a.model, device="cpu", dtype="float32")  # fp32: lm-eval takes its log-softmax in the model's dtype
    items = retention_items(a.data, a.lang, a.items, seed=0)
    with tempfile.TemporaryDirectory() as d: r = compare_with_lm_eval(model, tok, items, a.lang, d, a.batch_size)
    print(f"{a.model} on {r['n']} items of {a.data} ({a.lang}):")
    for k in ("acc", "acc_norm", "acc_bytes"):
        ours, theirs = r["correct"][k]
        print(f"  {k:9} ours {r['ours'][k]:.3f}  lm-eval {r['lm_eval'][k]:.3f}  items that differ: {sum(x != y for x, y in zip(ours, theirs))}")
    print(f"  largest |log-likelihood difference| of a choice: {r['max_abs_loglik_diff']:.2e}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    sys.exit(main())
