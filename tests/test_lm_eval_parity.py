"""The multiple-choice scorer equals lm-evaluation-harness (a dev dependency), run on shipped items with SmolLM2: per-choice
log-likelihoods within 1e-4, and acc, acc_norm (per character) and acc_bytes (per UTF-8 byte) identical item by item."""
import importlib.util, os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # lm-eval and datasets: never the network
import numpy as np
import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("lm_eval_parity", ROOT / "bench" / "lm_eval_parity.py")
parity = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(parity)


@pytest.fixture(scope="module")
def smollm2():
    from creativity_llm.models import load_model
    return load_model("smollm2", device="cpu", dtype="float32")  # fp32: lm-eval takes its log-softmax in the model's dtype


def _old_norm_pred(item, loglik) -> int:
    "What acc_norm predicted before 2026-12: log-likelihood per UTF-8 byte of delimiter and choice (not lm-eval's)."
    return int(np.argmax(np.array(loglik) / [len((" " + c).encode()) for c in item.choices]))


# Items of `retention_items("samples", lang, 200, seed=0)` that the old per-byte norm and lm-eval's per-character norm judge differently
# with SmolLM2 (found once by scoring all 200): the 40 items scored lead with them, so the test has teeth without scoring 200 each time
SEPARATING = {"en": (45, 179), "ja": (27, 72, 117)}


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_scorer_equals_lm_eval(smollm2, tmp_path, lang):
    from creativity_llm.multiple_choice import retention_items
    model, tok = smollm2
    pool = retention_items("samples", lang, 200, seed=0)
    picked = sorted(list(dict.fromkeys([*SEPARATING[lang], *range(len(pool))]))[:40])
    items = [pool[i] for i in picked]
    r = parity.compare_with_lm_eval(model, tok, items, lang, tmp_path, batch_size=16)
    separates = [i for i, it, row in zip(picked, items, r["items"]) if (_old_norm_pred(it, row["loglik"]) == it.label) != (row["pred_norm"] == it.label)]
    assert separates == list(SEPARATING[lang]), f"the items that separate the two definitions of acc_norm are now {separates}: update SEPARATING"
    assert r["max_abs_loglik_diff"] < 1e-4, r["max_abs_loglik_diff"]
    for metric, (ours, theirs) in r["correct"].items():
        assert ours == theirs, f"{metric}: items {[i for i, (x, y) in enumerate(zip(ours, theirs)) if x != y]} differ"
        assert r["ours"][metric] == pytest.approx(r["lm_eval"][metric], abs=1e-12)


def _stand_in(tok):
    "A two-layer random Llama over `tok`'s vocabulary: lm-eval's contexts are long (3 shots), the tokenizer is what the identity is about."
    import torch
    from transformers import LlamaForCausalLM
    from creativity_llm.models import micro_config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(micro_config(len(tok), max_position_embeddings=4096, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()


@pytest.fixture(scope="module")
def stand_in():
    from creativity_llm.models import tokenizer_and_config
    tok, _ = tokenizer_and_config("smollm2")
    return _stand_in(tok), tok


@pytest.mark.parametrize("spec", ["jcommonsenseqa-leaderboard", "jnli-leaderboard", "jmmlu-global-mmlu"])
def test_leaderboard_format_equals_lm_eval(spec, tmp_path, request):
    """The Japanese leaderboard formats against lm-eval's own task definitions, on items from the middle of the shared files: the same
    context (description, the same 3 shots, template) and continuation for every choice of 24 items, and for 3 of them the same per-choice
    log-likelihoods (within 1e-4) and predictions, from lm-eval's HFLM and the project's scorer, SmolLM2's tokenizer over a random model
    (HFLM projects every position of a 3-shot context on the vocabulary: 3 items are 10 s of its time on 2 cores)."""
    from creativity_llm.multiple_choice import LEADERBOARD_SETS, evaluate_mc, mc_path, requests_for, retention_items
    try: mc_path(LEADERBOARD_SETS[spec][0], "ja")
    except FileNotFoundError:
        if os.environ.get("CI"): pytest.fail("the shared data must sit beside the repository under CI")
        pytest.skip("needs ../shared/data")
    from lm_eval.models.huggingface import HFLM
    items = retention_items(spec, "ja", 100_000)
    start = len(items) // 2
    theirs = parity.lm_eval_leaderboard_requests(spec, start, 24, tmp_path)
    ours = requests_for(items[start:start + 24], "ja")
    assert [tuple(i.arguments) for i in theirs] == ours
    model, tok = request.getfixturevalue("stand_in")  # only once the data are known to be here
    picked = items[start:start + 3]
    scored = [i for i in theirs if i.doc_id < start + 3]
    ll = np.array([r[0] for r in HFLM(pretrained=model, tokenizer=tok, batch_size=8).loglikelihood(scored, disable_tqdm=True)])
    res = evaluate_mc(model, tok, picked, "ja", batch_size=8, progress=False)
    mine = np.concatenate([r["loglik"] for r in res["items"]])
    assert np.abs(mine - ll).max() < 1e-4, np.abs(mine - ll).max()
    k = 0
    for r, it in zip(res["items"], picked):
        assert r["pred"] == int(np.argmax(ll[k:k + len(it.choices)])); k += len(it.choices)


MINI_TASK = """task: mini_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: choices
doc_to_target: label
"""


def test_stage_07_runs_an_lm_eval_task_for_the_base_and_an_adapter(tmp_path):
    "`eval_lm_eval_tasks`: lm-eval itself scores a local task for the base and an adapter (the PeftModel given to HFLM), into the same tables."
    import json
    import pyarrow.parquet as pq
    from peft import LoraConfig, get_peft_model
    from creativity_llm.core import stage_dir
    from creativity_llm.evaluation import run_eval
    from creativity_llm.models import load_model
    from creativity_llm.pipeline import RunConfig
    from creativity_llm.sources import samples_dir
    base, _ = load_model("micro:llama", device="cpu", seed=0)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))  # B != 0: the adapter changes the model
    lora.save_pretrained(stage_dir(tmp_path, "05") / "adapters" / "attention")
    (tmp_path / "mini.yaml").write_text(MINI_TASK.format(path=samples_dir() / "mc_en.jsonl"))
    cfg = RunConfig(model="micro:llama", device="cpu", eval_mc_en="", eval_mc_items=6, eval_kl_passages=0, eval_lm_eval_tasks=str(tmp_path / "mini.yaml"),
                    judge_injection_cases=0)
    logs = []
    res = run_eval(cfg, tmp_path, log=logs.append)
    out = stage_dir(tmp_path, "07")
    rows = [r for r in pq.read_table(out / "retention.parquet").to_pylist() if r["lang"] == "lm-eval mini_mc"]
    ll = {m: [json.loads(r["loglik"]) for r in rows if r["model"] == m] for m in ("base", "attention")}
    assert [r["id"] for r in rows if r["model"] == "base"] == ["0", "1", "2", "3", "4", "5"]  # lm-eval's `limit`: the file's first documents
    assert np.abs(np.array(ll["base"]) - np.array(ll["attention"])).max() > 1e-3  # the adapter was active when lm-eval scored it
    row = next(r for r in res["retention"] if r["lang"] == "lm-eval mini_mc" and r["model"] == "attention")
    assert row["n"] == 6 and 0 <= row["acc_mcnemar_p"] <= 1  # paired with the base, as the fast path's rows are
    report = (out / "report.md").read_text()
    assert "| lm-eval mini_mc | attention | 6 |" in report and "task `mini_mc` run by lm-evaluation-harness 0.4.13 itself" in report
    before = (out / "retention.parquet").read_bytes()
    logs.clear(); run_eval(cfg, tmp_path, log=logs.append)  # a re-run (a killed one, resumed) takes each model's figures from the cache
    assert any("retention cache: 2 answers reused" in l for l in logs) and (out / "retention.parquet").read_bytes() == before


def test_without_lm_eval_the_key_is_refused_in_one_line(monkeypatch):
    import sys
    from creativity_llm.core import ConfigError
    from creativity_llm.evaluation import check_retention_sets
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if not installed
    with pytest.raises(ConfigError) as e: check_retention_sets("", "", "jcommonsenseqa-leaderboard")
    assert str(e.value).count("\n") == 0 and "config key 'eval_lm_eval_tasks'" in str(e.value) and "pip install 'creativity_llm[lm-eval]'" in str(e.value)
