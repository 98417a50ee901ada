"""Stage 04: the scorer's properties (hypothesis), the pairwise set, the AUT validation, and the stage's outputs."""
import json, math, os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT
from creativity_llm.core import stage_dir
from creativity_llm.pipeline import RunConfig
from creativity_llm.scorer import DIMENSIONS, PatentQualityScorer, ReferenceCorpus, ScorerConfig, load_aut, validate_aut
from creativity_llm.scoring import score_pairs, select_top
from creativity_llm.sources import SourceError

AUT = ROOT.parent / "shared" / "data" / "creativity_aut" / "aut_human_originality_gt_main2.jsonl"
PAIRS = [json.loads(l) for l in (ROOT / "tests" / "data" / "scorer_pairs.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
REFERENCE = ReferenceCorpus([p[k] for p in PAIRS for k in ("better", "worse")])
SCORER = PatentQualityScorer(reference=REFERENCE)


def _in_unit_interval(s):
    values = [getattr(s, k) for k in DIMENSIONS] + [s.total]
    return all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=400))  # every code point, lone surrogates included
def test_any_unicode_scores_in_unit_interval(text):
    s = SCORER.score(text)
    assert _in_unit_interval(s)
    assert set(s.reasons) == {*DIMENSIONS, "total"} and all(isinstance(r, str) and r for r in s.reasons.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["センサーで温度を測る。", "A fan cools the case. ", "\n1. ", "・", "60℃以上で", "the steel spring ",
                                 "when 3 bar ", "。", "⑤", "\u3000", "🙂", "so that it lasts", "何か"]), max_size=40))
def test_mixed_fragments_score_in_unit_interval(parts):
    assert _in_unit_interval(SCORER.score("".join(parts)))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=20), st.text(max_size=200))
def test_any_reference_corpus_works(corpus, text):
    for method in ("pool", "idf", "centroid"):
        assert _in_unit_interval(PatentQualityScorer(ScorerConfig(originality=method), ReferenceCorpus(corpus)).score(text))


def test_pairwise_set_is_ranked_by_total():
    assert len(PAIRS) >= 12 and {p["lang"] for p in PAIRS} >= {"en", "ja"}
    assert sum("long-repetitive" in p["kind"] for p in PAIRS) >= 4
    wrong = [p["id"] for p in PAIRS if not SCORER.score(p["better"]).total > SCORER.score(p["worse"]).total]
    assert len(wrong) / len(PAIRS) <= 0.10, f"ranked wrongly: {wrong}"


BATCH_TEXTS = [p[k] for p in PAIRS[:6] for k in ("better", "worse")]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(BATCH_TEXTS), min_size=2, max_size=6), st.randoms(use_true_random=False),
       st.sampled_from(["pool", "idf", "centroid"]))
def test_batch_originality_is_order_free_and_fair_to_copies(batch, rnd, method):
    "Within a batch: permuting it changes no score, identical answers score equal, and an answer with a copy in the batch is never fully original."
    scorer = PatentQualityScorer(ScorerConfig(originality=method), REFERENCE)
    scores = scorer.score_batch(batch)
    order = list(range(len(batch))); rnd.shuffle(order)
    again = scorer.score_batch([batch[k] for k in order])
    assert [s.to_dict() for s in again] == [scores[k].to_dict() for k in order]
    for i, t in enumerate(batch):
        copies = [j for j, u in enumerate(batch) if u == t]
        assert all(scores[j] == scores[i] for j in copies)
        if len(copies) > 1 and scores[i].n_ideas: assert scores[i].originality < 1.0, (t, scores[i].reasons["originality"])


def test_batch_originality_ranks_own_ideas_above_shared_ones():
    "An answer whose ideas no other answer has is more original than one that repeats the others' ideas, and only it may reach 1.0."
    shared = "1. A solar panel on the lid charges the lock.\n2. A fingerprint reader opens it."
    batch = [shared, "1. The lid carries a small solar panel that charges the lock.\n2. It opens with a fingerprint reader.", shared,
             "1. A cork lining keeps bread fresh inside.\n2. The box folds flat for posting."]
    scores = SCORER.score_batch(batch)
    assert scores[3].originality == 1.0 and max(s.originality for s in scores[:3]) < 0.5, [s.reasons["originality"] for s in scores]
    assert "3 other answers to this prompt" in scores[0].reasons["originality"]
    assert [s.originality for s in SCORER.score_batch([batch[3]])] == [SCORER.score(batch[3]).originality]  # a batch of one is `score`


def test_repeating_an_idea_does_not_pay():
    one = "A steel spring closes the lid when the box tips over."
    padded = " ".join([one] * 40)
    diverse = "1. A steel spring closes the lid.\n2. A camera app counts the boxes.\n3. A cork liner keeps food cool."
    s_pad, s_div = SCORER.score(padded), SCORER.score(diverse)
    assert s_pad.n_ideas == 1 and "39 repeats not counted" in s_pad.reasons["fluency"]
    assert s_pad.total < s_div.total
    assert SCORER.score(padded).elaboration == pytest.approx(SCORER.score(one).elaboration)


def test_padding_a_good_answer_does_not_pay():
    pads = ["\n- gear\n- battery\n- software\n- resin\n- heat\n- water\n- light\n- patient\n- wall\n- child\n- food\n- game",
            "\nTo prevent problems, so that it improves and reduces waste.", " It is 5 mm, 3 kg, 20 kW, 40 °C, 2 bar and 10 s."]
    for pad in pads:
        gains = [SCORER.score(p["better"] + pad).total - SCORER.score(p["better"]).total for p in PAIRS]
        assert sum(gains) / len(gains) <= 0, (pad, gains)
    many = "\n".join(f"- widget{i} holder at {i} mm and {i + 1} mm" for i in range(3000))  # thousands of ideas and quantities
    s = SCORER.score(many)
    assert s.elaboration < 1 and "only the first 64 distinct ideas" in s.reasons["fluency"]


def test_edges_are_defined():
    for empty in ("", "   ", "\n\t\u3000"):
        s = SCORER.score(empty)
        assert s.total == 0.0 and s.reasons["fluency"] == "no text"
    long = SCORER.score("センサーで温度を測り、ファンを回す。" * 6000)  # 108,000 characters
    assert long.n_ideas == 1 and "characters read" in long.reasons["fluency"]
    assert SCORER.score("温度センサーで過熱を防ぐ。A fan cools the case.").lang == "mixed"
    for bad in (None, 3, b"bytes", ["a list"]):
        with pytest.raises(TypeError, match="the scorer reads text"):
            SCORER.score(bad)


def test_deterministic_and_explained():
    text = PAIRS[0]["better"]
    a, b = SCORER.score(text), PatentQualityScorer(reference=ReferenceCorpus(REFERENCE.texts)).score(text)
    assert a == b
    assert "3 distinct ideas" in a.reasons["fluency"] and "spring" in a.reasons["elaboration"]


def test_reference_corpus_round_trip_and_bad_rows(tmp_path):
    path = REFERENCE.save(tmp_path / "ref.jsonl")
    again = ReferenceCorpus.load(path)
    assert again.texts == REFERENCE.texts and again.df == REFERENCE.df
    txt = tmp_path / "ref.txt"
    txt.write_text("brick doorstop\n\nbrick pigment\n", encoding="utf-8")
    assert len(ReferenceCorpus.load(txt)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad\.jsonl:2: field 'text'"):
        ReferenceCorpus.load(bad)
    with pytest.raises(FileNotFoundError, match="no such reference corpus"):
        ReferenceCorpus.load(tmp_path / "missing.jsonl")


def test_scorer_config_is_checked():
    with pytest.raises(ValueError, match="unknown dimension"): ScorerConfig(weights={"novelty": 1.0})
    with pytest.raises(ValueError, match="positive sum"): ScorerConfig(weights={"fluency": 0.0})
    with pytest.raises(ValueError, match="common_df"): ScorerConfig(common_df=0)
    assert select_top([0.3, 0.9, 0.1], top_fraction=0.5) == [True, True, False]  # ceil(0.5 × 3) = 2 kept
    assert select_top([0.3, 0.9, 0.1], threshold=0.35, top_fraction=0.5) == [False, True, False]


def test_aut_validation_meets_the_bar():
    if not AUT.is_file():
        if os.environ.get("CI"): pytest.fail(f"{AUT} is missing: the shared data must sit beside the repository under CI")
        pytest.skip("needs ../shared/data")
    report = validate_aut(load_aut(AUT), n_boot=200)
    rho, lo, hi = report["overall"]["originality (pool)"]
    assert report["n"] == 3030 and report["prompts"] == 21
    assert rho >= 0.36 and lo <= rho <= hi and report["overall"]["total"][0] >= 0.37
    assert rho > report["overall"]["length (baseline)"][0] > report["overall"]["semdis_mean (baseline)"][0]
    assert rho > report["overall"]["originality (idf)"][0] and rho > report["overall"]["originality (centroid)"][0]


ADVERSARIAL = [json.loads(l) for l in (ROOT / "tests" / "data" / "scorer_adversarial.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
DEFENDED = ("noun-padding", "cue-stuffing", "list-stuffing", "vague-shell", "fullwidth-mixed-script", "honest-longer-better")  # what lexical rules can see


def _adversarial_accuracy(margin: float = 0.02) -> dict:
    "Pairs ranked right with `margin`, by half (the card's rule on the id) and by attack, as bench/scorer_adversarial.py counts them."
    import hashlib
    right: dict = {}
    for r in ADVERSARIAL:
        b, w = (SCORER.score(r[k], prompt=r["prompt"]).total for k in ("better", "worse"))
        half = "dev" if int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % 2 == 0 else "heldout"
        for key in (half, r["attack"]): right.setdefault(key, []).append(b - w >= margin)
    return {k: sum(v) / len(v) for k, v in right.items()}


def test_the_adversarial_set_holds_what_the_hardening_reached():
    acc = _adversarial_accuracy()
    assert all(acc[a] == 1.0 for a in DEFENDED), {a: acc[a] for a in DEFENDED}
    assert acc["unit-filler"] >= 0.8 and acc["dev"] >= 0.8 and acc["heldout"] >= 0.75, acc


@pytest.mark.xfail(strict=True, reason="issue 35's bar (95% of each half): synonym repeats, off-topic answers and long bland answers need meaning, not words")
def test_the_adversarial_set_meets_the_bar():
    acc = _adversarial_accuracy()
    assert acc["dev"] >= 0.95 and acc["heldout"] >= 0.95, acc


def test_a_prompt_bounds_fluency_and_a_second_language_is_not_counted():
    three = "1. A hook on the handle holds a bag.\n2. A lamp on the bar lights the floor.\n3. A brake locks the wheels on a slope."
    more = three + "\n4. A cup holder on the frame.\n5. A mirror on the basket.\n6. A bell on the grip."
    asked = "List 3 improvements to a shopping trolley."
    assert SCORER.score(more).fluency > SCORER.score(three).fluency
    assert SCORER.score(more, prompt=asked).fluency == SCORER.score(three, prompt=asked).fluency
    echoed = SCORER.score(three + "\n4. 持ち手のフックにかばんを掛ける。\n5. バーのランプで床を照らす。")
    assert echoed.fluency == SCORER.score(three).fluency and "2 in a second language not counted" in echoed.reasons["fluency"]


def test_aut_loader_names_bad_rows(tmp_path):
    p = tmp_path / "aut.jsonl"
    p.write_text('{"prompt": "brick", "response": "doorstop", "originality_human": 1.5}\n{"prompt": "brick", "response": "x"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"aut\.jsonl:2: field 'originality_human'"):
        load_aut(p)


def _seed_pairs(run_dir: Path, rows: list[dict]):
    import pyarrow as pa, pyarrow.parquet as pq
    out = stage_dir(run_dir, "01")
    out.mkdir(parents=True)
    base = {"instruction": "Propose ideas.", "subdomain": "", "lehnert_category": "", "source_id": "s", "lang": "en", "dc_format": "",
            "answer": "", "rationale": "", "answer_first": ""}
    dummy = {"id": "", "task": "creativity", "category": "", "response": ""}
    table = pa.Table.from_pylist([{**base, **r} for r in rows] or [{**base, **dummy}]).slice(0, len(rows))  # typed even with 0 rows
    pq.write_table(table, out / "seed_pairs.parquet")


def test_stage_filters_and_records(tmp_path):
    rows = [{"id": f"c{i}", "task": "creativity", "category": "divergent", "response": p[k]} for i, (p, k) in
            enumerate((p, k) for p in PAIRS[:8] for k in ("better", "worse"))]
    rows.append({"id": "q0", "task": "qa", "category": "", "lehnert_category": "Causal antecedent", "response": "Because the pump failed."})
    _seed_pairs(tmp_path, rows)
    stats = score_pairs(RunConfig(model="micro:llama", score_top_fraction=0.5, score_threshold=0.0), tmp_path, log=lambda *a: None)
    import pyarrow.parquet as pq
    out = stage_dir(tmp_path, "04")
    scored = pq.read_table(out / "scored_pairs.parquet").to_pylist()
    train = pq.read_table(out / "train_dc.parquet").to_pylist()
    assert stats["pairs_in"] == 17 and stats["scored"] == 16 and stats["kept"] == 8 and stats["passed_through"] == 1
    assert [r["id"] for r in train] == [r["id"] for r in scored if r["selected"]] and "q0" in {r["id"] for r in train}
    assert min(r["score_total"] for r in train if r["task"] == "creativity") >= max(r["score_total"] for r in scored if not r["selected"])
    better = {r["id"] for r in scored if int(r["id"][1:]) % 2 == 0}
    assert len(better & {r["id"] for r in train}) >= 7, "the better half of each pair is what survives"
    assert (out / "score_distributions.png").read_bytes()[:4] == b"\x89PNG"
    assert len(ReferenceCorpus.load(out / "reference_corpus.jsonl")) == 16
    assert json.loads((out / "scorer_config.json").read_text())["input"] == "01_synthesis/seed_pairs.parquet"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_stage_scores_the_answers_to_one_prompt_together_against_a_file_reference(tmp_path):
    "With a reference corpus from a file, stage 04 scores the answers to one prompt against each other too (`score_batch`)."
    ref = tmp_path / "reference.jsonl"
    ReferenceCorpus([p["better"] for p in PAIRS[8:]]).save(ref)
    twice = PAIRS[0]["better"]
    rows = [{"id": "a", "task": "creativity", "category": "divergent", "response": twice, "instruction": "Improve the box."},
            {"id": "b", "task": "creativity", "category": "divergent", "response": twice, "instruction": "Improve the box."},
            {"id": "c", "task": "creativity", "category": "divergent", "response": twice, "instruction": "Improve the crate."}]
    _seed_pairs(tmp_path, rows)
    score_pairs(RunConfig(model="micro:llama", score_reference=str(ref), score_top_fraction=1.0, score_threshold=0.0), tmp_path, log=lambda *a: None)
    import pyarrow.parquet as pq
    scored = {r["id"]: r for r in pq.read_table(stage_dir(tmp_path, "04") / "scored_pairs.parquet").to_pylist()}
    assert scored["a"]["score_originality"] == scored["b"]["score_originality"] < scored["c"]["score_originality"], scored
    why = {k: json.loads(r["score_reasons"])["originality"] for k, r in scored.items()}
    assert "and the 1 other answer to this prompt" in why["a"] and "other answer" not in why["c"], why


def test_stage_ranks_by_the_rater_or_the_combination_and_records_it(tmp_path):
    "score_rank_by='rater': the micro model rates every creativity pair (cached: a re-run rates nothing), its ratings rank them above the threshold, and the files say so."
    rows = [{"id": f"c{i}", "task": "creativity", "category": "divergent", "response": p[k], "lang": ("en", "ja")[i % 2]} for i, (p, k) in
            enumerate((p, k) for p in PAIRS[:6] for k in ("better", "worse"))]
    rows.append({"id": "q0", "task": "qa", "category": "", "lehnert_category": "Causal antecedent", "response": "Because the pump failed."})
    _seed_pairs(tmp_path, rows)
    cfg = RunConfig(model="micro:llama", device="cpu", score_rank_by="rater", score_top_fraction=0.5, score_threshold=0.2, rater_batch_size=4)
    logs = []
    stats = score_pairs(cfg, tmp_path, log=logs.append)
    import pyarrow.parquet as pq
    out = stage_dir(tmp_path, "04")
    scored = pq.read_table(out / "scored_pairs.parquet").to_pylist()
    creative = [r for r in scored if r["task"] == "creativity"]
    assert all(r["rater_source"] == "probabilities" and 1 <= r["rater"] <= 5 and r["rater_mass"] > 0 for r in creative)
    assert scored[-1]["rater"] is None and scored[-1]["rank_value"] is None and scored[-1]["selected"]  # QA: not rated, not ranked, passes through
    by_rating = sorted(creative, key=lambda r: r["rater"])
    assert [r["rank_value"] for r in by_rating] == sorted(r["rank_value"] for r in creative)  # the rater's order alone
    assert [r["selected"] for r in creative] == select_top([r["score_total"] for r in creative], 0.2, 0.5, [r["rank_value"] for r in creative])
    config = json.loads((out / "scorer_config.json").read_text())
    assert config["rank_by"] == "rater" and config["rater"] == "local micro:llama" and config["rater_weight"] == 0.5
    assert stats["rank_by"] == "rater" and stats["rated"]["n"] == 12 and stats["rated"]["failed"] == 0
    assert stats["rated"]["prompt_versions"] == ["jcq-ja-1", "ocsai-en-1"] and len(stats["rated"]["rho_with_heuristic"]) == 3
    assert any("rated 12 creativity pairs with local micro:llama" in l for l in logs)
    combined = score_pairs(RunConfig(**{**cfg.to_dict(), "score_rank_by": "combined", "score_rater_weight": 0.0}), tmp_path, log=logs.append)
    assert any("12 answers reused from rater.jsonl, 0 generated" in l for l in logs[-3:]), logs[-3:]  # the ratings came from the stage's cache
    again = pq.read_table(out / "scored_pairs.parquet").to_pylist()
    assert [r["rater"] for r in again] == [r["rater"] for r in scored]
    heuristic_only = [r["selected"] for r in again if r["task"] == "creativity"]
    assert heuristic_only == select_top([r["score_total"] for r in creative], 0.2, 0.5)  # weight 0: the heuristic's choice
    assert combined["rated"]["n"] == 12


def test_stage_with_no_pairs_and_missing_input(tmp_path):
    _seed_pairs(tmp_path / "empty", [])
    stats = score_pairs(RunConfig(model="micro:llama"), tmp_path / "empty", log=lambda *a: None)
    assert stats["pairs_in"] == stats["train_dc"] == 0 and stats["mean_total_kept"] is None
    assert (stage_dir(tmp_path / "empty", "04") / "train_dc.parquet").is_file()
    with pytest.raises(FileNotFoundError, match="no pairs to score"):
        score_pairs(RunConfig(model="micro:llama"), tmp_path / "none", log=lambda *a: None)


def test_run_category_pools_and_qa_ranked_apart(tmp_path):
    rows = [{"id": f"c{i}", "task": "creativity", "category": ("divergent", "reasoning")[i % 2], "response": p[k]} for i, (p, k) in
            enumerate((p, k) for p in PAIRS[:6] for k in ("better", "worse"))]
    rows += [{"id": f"q{i}", "task": "qa", "category": "", "lehnert_category": "Causal antecedent", "response": r} for i, r in
             enumerate(["Because the pump failed when the valve stuck.", "It broke.", "The seal wore out after 3 years at 80 °C.", "Yes."])]
    _seed_pairs(tmp_path, rows)
    cfg = RunConfig(model="micro:llama", score_reference="run-category", score_filter_qa=True, score_top_fraction=0.5, score_threshold=0.0)
    stats = score_pairs(cfg, tmp_path, log=lambda *a: None)
    import pyarrow.parquet as pq
    out = stage_dir(tmp_path, "04")
    scored = pq.read_table(out / "scored_pairs.parquet").to_pylist()
    qa = [r for r in scored if r["task"] == "qa"]
    assert all("no reference texts" not in json.loads(r["score_reasons"])["originality"] for r in scored)
    assert sum(r["selected"] for r in qa) == 2 and sum(r["selected"] for r in scored if r["task"] == "creativity") == 6
    assert {p.name for p in out.glob("reference_corpus*.jsonl")} == {"reference_corpus.jsonl", "reference_corpus_divergent.jsonl",
                                                                    "reference_corpus_reasoning.jsonl"}
    assert stats["passed_through"] == 0


def test_self_exclusion_by_row_id():
    ref = ReferenceCorpus(["a hinge closes the lid", "a hinge closes the lid", "cork liner keeps food cool"], ids=["a", "b", "c"])
    s = PatentQualityScorer(ScorerConfig(common_df=1.0), ref)
    assert s.score("a hinge closes the lid", ref_id="a").originality == 0.5  # its twin 'b' is another answer
    assert s.score("a hinge closes the lid", ref_id="zzz").originality == pytest.approx(1 / 3)  # not in the corpus: both copies count
