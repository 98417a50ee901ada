"""The multiple-choice scorer equals lm-evaluation-harness (a dev dependency), run on shipped items with SmolLM2: per-choice
log-likelihoods within 1e-4, and acc, acc_norm (per character) and acc_bytes (per UTF-8 byte) identical item by item."""
import importlib.util, os

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
