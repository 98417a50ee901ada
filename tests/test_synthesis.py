"""Stage 01 with a scripted teacher (fast, deterministic) and against `creativity-llm serve` over HTTP."""
import json, random, re, subprocess, time
from collections import Counter

import pytest

from conftest import CLI, ROOT, cli
from creativity_llm.core import stage_dir
from creativity_llm.pipeline import RunConfig
from creativity_llm.generate import Completion
from creativity_llm.synthesis import LeakageError, check_leakage, synthesize


VOCAB = ("hinge spring valve magnet sensor lattice gear polymer coating lever pulley siphon membrane ratchet "
         "bimetal capillary damper flywheel solenoid cam piezo wick bellows clutch nozzle baffle").split()


class ScriptedTeacher:
    "Well-formed answers that differ by prompt, so that parsing, dedup, split and cards run on real shapes."
    def __init__(self): self.calls = 0
    def __call__(self, prompts, return_exceptions=False, seed=0, max_new_tokens=64, **kw):
        self.calls += 1
        out = []
        for msgs in prompts:
            user = re.sub(r"\W+", " ", msgs[-2]["content"]).strip()
            doc, task = user[60:200], user[-90:]  # words of the document, words of the task
            prefill = msgs[-1]["content"]
            words = " ".join(random.Random(f"{seed}{user}").choices(VOCAB, k=9))  # a new seed, a new answer
            if prefill == "1.":
                text = f" {words[:40]} for {doc[:30]}.\n2. {task[45:]} with {words[40:]}.\n3. For {task[20:70]}, {doc[60:90]} by hand."
            elif prefill.startswith("Choice"):
                text = f" idea 2, folding {doc[:40]}. It saves space. Combine it with idea 3 for use without power."
            else:
                text = f" Quantification\nQuestion: How much did the method improve in {doc[:50]}?\nAnswer: By 3.1 points in {doc[50:100]}."
            out.append(Completion(text, "stop"))
        return out


def test_stage_with_scripted_teacher(tmp_path):
    cfg = RunConfig(model="micro:llama", synth_max_docs=8, heldout_per_category=1)
    teacher = ScriptedTeacher()
    stats = synthesize(cfg, tmp_path, generator=teacher, log=lambda *a: None)
    out = stage_dir(tmp_path, "01")
    from datasets import Dataset
    train = Dataset.from_parquet(str(out / "seed_pairs.parquet")).to_list()
    held = Dataset.from_parquet(str(out / "eval_heldout.parquet")).to_list()
    rows = train + held
    assert stats["pairs"] == len(rows) == 8 * 3 + 8 and stats["prompts"]["creativity"] == 24
    assert set(Counter(r["category"] for r in rows if r["task"] == "creativity")) == {"divergent", "reasoning", "perspective", "constraint"}
    assert {r["lehnert_category"] for r in rows if r["task"] == "qa"} == {"Quantification"}
    assert all(r["dc_format"].startswith("## Divergent: ideas\n1. ") and "## Convergent" in r["dc_format"] for r in rows if r["task"] == "creativity")
    assert all(r["answer_first"].startswith("Answer: ") and "\nRationale: " in r["answer_first"] for r in rows)
    assert all(len(r["prompt_hash"]) == 16 and r["teacher"] == "micro:llama" for r in rows)
    assert {r["source_id"] for r in train}.isdisjoint({r["source_id"] for r in held})
    check_leakage(train, held, cfg.near_dup_threshold)
    card = (out / "cards" / "seed_pairs.md").read_text()
    assert "More Information Needed" not in card and "## Creation process" in card and "micro:llama" in card
    assert json.loads((out / "stats.json").read_text())["leakage_check"]["train"] == len(train)


def test_leakage_is_caught():
    base = {"category": "divergent", "lehnert_category": "", "input": "an abstract about pumps " * 4}
    train = [{**base, "id": "a/x", "source_id": "a", "response": "one two three four five"}]
    held = [{**base, "id": "b/x", "source_id": "b", "response": "six seven eight nine ten"}]
    with pytest.raises(LeakageError, match="near-duplicate input: train a/x ~ held-out b/x"):
        check_leakage(train, held, 0.8)


def test_stage_runs_against_http_backend(tmp_path):
    "Stage 01 through the pipeline with the teacher behind `creativity-llm serve` on 127.0.0.1."
    proc = subprocess.Popen([CLI, "serve", "--model", "micro:llama", "--port", "0", "--max-new-tokens", "24"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        while url is None:
            line = proc.stdout.readline()
            assert line, "serve exited"
            if m := re.search(r"on (http://127\.0\.0\.1:\d+)/v1", line): url = m.group(1)
        r = cli("run", "--preset", "smoke", "--run-dir", tmp_path / "run", "--stages", "00-01", "-p", f"teacher_url={url}",
                "-p", "teacher_model=micro:llama", timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    finally:
        proc.terminate(); proc.wait(timeout=30)
    stats = json.loads((tmp_path / "run" / "01_synthesis" / "stats.json").read_text())
    assert stats["creativity"]["generated"] >= stats["prompts"]["creativity"] > 0
    assert stats["qa"]["generated"] >= stats["prompts"]["qa"] > 0
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["stages"]["01"]["status"] == "done" and m["stages"]["01"]["params"]["teacher_url"] == url
    assert m["stages"]["01"]["metrics"]["creativity"]["generated"] == stats["creativity"]["generated"]
    # the random micro model writes no usable list: every failure is counted by kind, none is fatal
    fails = stats["creativity"]["final_failures"]
    assert sum(fails.values()) + stats["prompts"]["convergent"] == stats["prompts"]["creativity"]
