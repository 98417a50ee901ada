"Multiple-choice loaders on the shared benchmark files, and log-likelihood scoring against a per-request computation."
from pathlib import Path

import numpy as np
import pytest
import torch

from creativity_llm.models import micro_model
from creativity_llm.multiple_choice import MCFormatError, MCItem, evaluate_mc, load_mc, loglikelihoods, requests_for, _encode

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {"english_mc/arc_easy_test.jsonl": (2376, 4), "english_mc/openbookqa_test.jsonl": (500, 4),
         "jglue/jcommonsenseqa-v1.3_valid-v1.3.json": (1119, 5), "jmmlu/jmmlu_ccbysa.jsonl": (7097, 4)}


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
@pytest.mark.parametrize("name", FILES)
def test_shared_benchmarks_load(name):
    items = load_mc(SHARED / name)
    n, k = FILES[name]
    assert len(items) == n and {len(i.choices) for i in items} == {k}
    assert all(0 <= i.label < k and i.question.strip() for i in items) and len({i.id for i in items}) == n


def test_bad_rows_name_file_line_field(tmp_path):
    p = tmp_path / "mc.jsonl"
    p.write_text('{"question": "q", "choices": ["a", "b"], "label": 0}\n{"question": "q", "choices": ["a"], "label": 0}\n')
    with pytest.raises(MCFormatError, match=r"mc.jsonl:2: field 'choices' must be a list of at least 2"):
        load_mc(p)


def test_batched_scores_match_one_request_at_a_time():
    model, tok = micro_model(seed=1)
    rng = np.random.default_rng(0)
    words = "the a kettle pump valve salt heat light water stone glass".split()
    items = [MCItem(str(k), " ".join(rng.choice(words, rng.integers(2, 12))), tuple(" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(4)), 0)
             for k in range(12)]
    reqs = requests_for(items)
    with torch.no_grad():
        brute = []
        for c, x in reqs:
            full, n = _encode(tok, c, x)
            lp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].double(), -1)
            brute.append(sum(float(lp[t - 1, full[t]]) for t in range(len(full) - n, len(full))))
    for bs in (1, 5, 64):
        got = loglikelihoods(model, tok, reqs, batch_size=bs, progress=False)
        assert np.allclose(got, brute, atol=1e-4, rtol=0)
    res = evaluate_mc(model, tok, items, batch_size=7, progress=False)
    assert [r["pred"] for r in res["items"]] == [int(np.argmax(brute[4 * k:4 * k + 4])) for k in range(12)]
