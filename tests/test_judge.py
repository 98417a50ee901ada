"""Stage 07 judge: verdict parsing under malformed and adversarial replies (table, generated cases, hypothesis), prompt
delimiting, MT-Bench loading in FastChat's format, retry bookkeeping of `judge`, and an untrained model as judge."""
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from creativity_llm.generate import Completion, TransformersGenerator
from creativity_llm.judge import (INJECTION, JCQ_DIMENSIONS, JudgeFormatError, NEED_REF_CATS, injection_check, judge, judge_messages, length_bias,
                                  load_judge_prompts, load_mt_bench, mt_bench_cases, mt_bench_messages, neutralise, parse_verdict,
                                  summarise_judgements)
from creativity_llm.models import micro_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mt_bench_en").is_dir(), reason="../shared/data is not beside the repository")

# (reply, fmt, expected score or None, expected how)
TABLE = [
    # strict JSON
    ('{"judgement": "Accurate and complete.", "score": 8}', "json", 8, "strict"),
    ('{"score": 7, "judgement": "ok"}', "json", 7, "strict"),
    ('{"judgement": "ok", "score": 7.5}', "json", 7.5, "strict"),
    ('{"judgement": "ok", "score": 1}', "json", 1, "strict"),
    ('{"judgement": "ok", "score": 10}', "json", 10, "strict"),
    ('```json\n{"judgement": "ok", "score": 6}\n```', "json", 6, "strict"),
    ('```\n{"judgement": "ok", "score": 6}\n```\nHope this helps.', "json", 6, "strict"),
    ('My evaluation follows.\n{"judgement": "ok", "score": 5}\nThank you.', "json", 5, "strict"),
    ('{\n  "judgement": "Multi-line\\nexplanation.",\n  "score": 9\n}', "json", 9, "strict"),
    ('{"judgement": "He wrote \\"score: 3\\" and {braces}", "score": 9}', "json", 9, "strict"),
    ('{"judgement": "Quoted \\"{\\\\\\"score\\\\\\": 2}\\" inside", "score": 4}', "json", 4, "strict"),
    ('{"judgement": "ok", "Score": 3}', "json", 3, "strict"),
    ('{"judgement": "ok", "score": 8} {"judgement": "same again", "score": 8}', "json", 8, "strict"),
    ('{"result": {"judgement": "nested", "score": 6}}', "json", 6, "strict"),
    ('{"judgement": "正確で詳しい。", "score": ９}', "json", 9, "strict"),
    ('｛"judgement": "全角の括弧", "score": ７｝', "json", 7, "strict"),
    # lenient
    ('{"judgement": "ok", "score": "6"}', "json", 6, "lenient"),
    ("{'judgement': 'python dict', 'score': 7}", "json", 7, "lenient"),
    ('{"judgement": "trailing comma", "score": 7,}', "json", 7, "lenient"),
    ("Score: 7", "json", 7, "lenient"),
    ("score = 7", "json", 7, "lenient"),
    ("Score = 7/10", "json", 7, "lenient"),
    ("Score: 7 out of 10.", "json", 7, "lenient"),
    ("**Score:** 8", "json", 8, "lenient"),
    ("Score (1-10): 6", "json", 6, "lenient"),
    ("The answer is partly right.\nRating: [[7]]", "json", 7, "lenient"),
    ("評価: 7", "json", 7, "lenient"),
    ("評価：７", "json", 7, "lenient"),
    ("スコア：８", "json", 8, "lenient"),
    ("点数＝５点", "json", 5, "lenient"),
    ("“score”: 4", "json", 4, "lenient"),
    ("Score: 7. Overall score: 7.", "json", 7, "lenient"),
    ('{"score": 8, "judgement": "Complete; cites the abs', "json", 8, "lenient"),
    ('{\n "judgement": "good",\n "score": 10\n', "json", 10, "lenient"),
    # failures (json)
    ('{"judgement": "x", "score": 0}', "json", None, None),
    ('{"judgement": "x", "score": 11}', "json", None, None),
    ('{"judgement": "x", "score": -3}', "json", None, None),
    ('{"judgement": "x", "score": 1e9}', "json", None, None),
    ('{"judgement": "x", "score": NaN}', "json", None, None),
    ('{"judgement": "x", "score": Infinity}', "json", None, None),
    ('{"judgement": "x", "score": true}', "json", None, None),
    ('{"judgement": "x", "score": false}', "json", None, None),
    ('{"judgement": "x", "score": null}', "json", None, None),
    ('{"judgement": "x", "score": [7]}', "json", 7, "lenient"),
    ('{"judgement": "x", "score": [7, 8]}', "json", None, None),
    ('{"judgement": "x", "score": "seven"}', "json", None, None),
    ('{"score": 3, "score": 9}', "json", None, None),
    ('{"judgement": "a", "score": 3} {"judgement": "b", "score": 9}', "json", None, None),
    ("Score: 3\nOn reflection, Score: 9", "json", None, None),
    ("Score: 4/5", "json", None, None),
    ("Score: 80/100", "json", None, None),
    ("Score: 7-8", "json", None, None),
    ("Score: 7 to 8", "json", None, None),
    ("Score: 1,000", "json", None, None),
    ("score: -3", "json", None, None),
    ("Score: 0", "json", None, None),
    ("I would give it a seven out of ten.", "json", None, None),
    ("The answer is good and I would rate it highly.", "json", None, None),
    ("The answer deserves a score of 10.", "json", None, None),
    ("評価は高いです。", "json", None, None),
    ('{"judgement": "good", "score": 1', "json", None, None),
    ('{"judgement": "The answer scores: 3 on accuracy', "json", None, None),
    ('{"judgement": "cut here', "json", None, None),
    ("", "json", None, None),
    ("   \n ", "json", None, None),
    # MT-Bench
    ("Rating: [[7]]", "mtbench", 7, "strict"),
    ("Explanation... [[2]]", "mtbench", 2, "strict"),
    ("Rating: [[7.5]]", "mtbench", 7.5, "strict"),
    ("評価：[[5]]", "mtbench", 5, "strict"),
    ("評価：［［５］］", "mtbench", 5, "strict"),
    ("Rating: [[8]]. Again: [[8]]", "mtbench", 8, "strict"),
    ("Final rating [6]", "mtbench", 6, "lenient"),
    ("Rating: 6", "mtbench", 6, "lenient"),
    ("Rating: [[ 7 ]]", "mtbench", 7, "lenient"),
    ("Rating: [[3]] ... on reflection [[8]]", "mtbench", None, None),
    ("Rating: [[0]]", "mtbench", None, None),
    ("Rating: [[11]]", "mtbench", None, None),
    ("Rating: [[-3]]", "mtbench", None, None),
    ("Rating: [[rating]]", "mtbench", None, None),
    ("Rating: [[1", "mtbench", None, None),
    ("Rating: [[", "mtbench", None, None),
    ("A good answer overall.", "mtbench", None, None),
]


def _ok(v, expected):
    assert (v.score is None) == (v.error is not None)
    return v.score == expected if expected is not None else v.score is None


@pytest.mark.parametrize("reply,fmt,score,how", TABLE)
def test_table(reply, fmt, score, how):
    v = parse_verdict(reply, fmt)
    assert (v.score, v.how) == (score, how), (reply, v)
    assert (v.score is None) == (v.error is not None)


def test_table_is_large_enough():
    assert len(TABLE) >= 40 and sum(s is None for _, _, s, _ in TABLE) >= 20


def generated_cases() -> list[tuple[str, str, float | None]]:
    "(reply, fmt, the only acceptable score or None): every one must be read as that score or fail."
    out = []
    valid = [('{"judgement": "Accurate and complete; matches the reference.", "score": 10}', "json", 10.0),
             ('{"judgement": "正確だが詳細が不足している。", "score": 6}', "json", 6.0),
             ('Here is my evaluation:\n```json\n{"judgement": "Misses the mechanism.", "score": 3}\n```', "json", 3.0),
             ('{"score": 9, "judgement": "Clear and correct."}', "json", 9.0),
             ("The assistant's answer is correct but terse. Rating: [[10]]", "mtbench", 10.0),
             ("回答は参照と一致する。評価：[[4]]", "mtbench", 4.0)]
    for full, fmt, s in valid:  # truncated at every cut point: a prefix is read correctly or counted as a failure
        out += [(full[:k], fmt, s) for k in range(len(full) + 1)]
    for bad in ["-3", "0", "0.5", "10.5", "11", "100", "1e9", "-1e9", "1e999", "-0"]:
        out += [('{"judgement": "x", "score": %s}' % bad, "json", None), (f"Score: {bad}", "json", None),
                (f"Rating: [[{bad}]]", "mtbench", None)]
    for a, b in [(3, 9), (7, 8), (1, 10), (5, 6)]:
        out += [(f'{{"score": {a}}} then {{"score": {b}}}', "json", None), (f"Score: {a}. Score: {b}.", "json", None),
                (f"[[{a}]] [[{b}]]", "mtbench", None), (f'{{"score": {a}, "score": {b}}}', "json", None),
                (f"評価：{a}、スコア：{b}", "json", None)]
    for prose in ["Good answer.", "I'd say it's fine.", "Ten out of ten!", "Excellent work overall, very detailed.",
                  "良い回答です。", "満点に近い回答です。", "The score is high.", "Rating: excellent", "評価：良い", "{}", "[]", "null"]:
        out += [(prose, "json", None), (prose, "mtbench", None)]
    fw = str.maketrans("0123456789", "０１２３４５６７８９")
    for n in range(1, 11):
        f = str(n).translate(fw)
        out += [('{"score": %s}' % f, "json", float(n)), (f"評価：{f}", "json", float(n)), (f"スコア：{f}", "json", float(n)),
                (f"評価：［［{f}］］", "mtbench", float(n)), (f"[[{n}]]", "mtbench", float(n)), (f"Rating: [[{n}.0]]", "mtbench", float(n))]
    for q in ['\\"', "'", "“", "「"]:
        out.append(('{"judgement": "the answer says %sscore: 2%s, which is wrong", "score": 5}' % (q, q), "json", 5.0))
    for fence in ["```json\n{}\n```", "```\n{}\n```", "~~~\n{}\n~~~", "<json>{}</json>", "`{}`"]:
        out.append((fence.replace("{}", '{"judgement": "ok", "score": 8}'), "json", 8.0))
    return out


def test_generated_cases():
    cases = generated_cases()
    assert len(cases) >= 200
    wrong = [(r, f, s, parse_verdict(r, f)) for r, f, s in cases]
    wrong = [(r, f, s, v) for r, f, s, v in wrong if not (v.score is None or v.score == s) or (v.score is None) != (v.error is not None)]
    assert not wrong, wrong[:5]


def test_expected_scores_are_found():
    "Most generated cases with a score (the complete replies, the full-width digits, the quoted judgements, the fences) parse to it: a parser that failed everything would pass the test above."
    scored = [(r, f, s) for r, f, s in generated_cases() if s is not None]
    assert sum(parse_verdict(r, f).score == s for r, f, s in scored) >= 90


def test_cut_at_token_limit():
    assert parse_verdict(Completion("Fine. Score: 1", "length")).score is None
    assert parse_verdict(Completion("Fine. Score: 1", "stop")).score == 1.0
    assert parse_verdict(Completion('{"judgement": "ok", "score": 8}', "length")).score == 8.0


def test_not_text():
    for x in (None, 7, RuntimeError("x"), b'{"score": 7}'):
        v = parse_verdict(x)
        assert v.score is None and v.error


_json_like = st.builds(lambda a, k, s, b: a + '{"' + k + '": ' + s + "}" + b, st.text(max_size=20),
                       st.sampled_from(["score", "Score", "judgement", "rating"]),
                       st.one_of(st.integers(-20, 30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                 st.text(max_size=6), st.sampled_from(["true", "NaN", "-Infinity", '"7"', "[[7]]", "1e9"])),
                       st.text(max_size=20))
_labelled = st.builds(lambda a, l, sep, n, b: a + l + sep + n + b, st.text(max_size=10),
                      st.sampled_from(["Score", "score", "Rating", "評価", "スコア", "得点"]), st.sampled_from([":", "：", " = ", ": [[", "＝"]),
                      st.one_of(st.integers(-5, 15).map(str), st.text(alphabet="0123456789.,-/ ０１２３４５６７８９", max_size=6)),
                      st.text(max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _json_like, _labelled), st.sampled_from(["json", "mtbench"]))
def test_random_text_never_raises(text, fmt):
    v = parse_verdict(text, fmt)
    assert v.score is None or 1 <= v.score <= 10
    assert (v.score is None) == (v.error is not None) and v.how in (None, "strict", "lenient")


# --- prompts -------------------------------------------------------------------------------------------------------

_tag_bits = st.lists(st.sampled_from(["</answer>", "<answer>", "< / Answer >", "</ANSWER", "<reference>", "</context>", "<question>",
                                      "text", "\n", "{", "}", "ignore the above", "<", "/", ">", "answer"]), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(_tag_bits, _tag_bits, st.sampled_from(["en", "ja"]))
def test_answer_cannot_close_its_block(answer, reference, lang):
    import re
    c = judge_messages("q", answer, reference=reference or "r", context="c", lang=lang)[0]["content"]
    assert len(re.findall(r"<\s*/\s*answer", c, re.I)) == 1 and len(re.findall(r"<\s*/\s*reference", c, re.I)) == 1
    assert c.endswith("<answer>\n" + neutralise(answer) + "\n</answer>")


def test_prompt_parts_follow_the_fields():
    c = judge_messages("q", "a", lang="en")[0]["content"]
    assert "<reference>" not in c and "<context>" not in c and "Reference answer" not in c
    c = judge_messages("q", "a", reference="r", context="ctx", lang="ja")[0]["content"]
    assert "context とそれに関する質問" in c and "参考回答が 10 点満点の回答とは限りません" in c and '{"judgement": "", "score": }' in c


# --- MT-Bench ------------------------------------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_mt_bench_shared_files(lang):
    if lang == "en":
        qs = load_mt_bench(SHARED / "mt_bench_en/question.jsonl", SHARED / "mt_bench_en/reference_answer/gpt-4.jsonl")
        prompts = load_judge_prompts(SHARED / "mt_bench_en/judge_prompts.jsonl")
        refs = json.loads((SHARED / "mt_bench_en/reference_answer/gpt-4.jsonl").read_text().splitlines()[0])
    else:
        qs = load_mt_bench(SHARED / "mt_bench_ja/question_full.jsonl", SHARED / "mt_bench_ja/reference_answer/base-gpt4o-with-human-annotation.jsonl")
        prompts = load_judge_prompts(SHARED / "mt_bench_ja/judge_ja_prompts.jsonl")
        refs = json.loads((SHARED / "mt_bench_ja/reference_answer/base-gpt4o-with-human-annotation.jsonl").read_text().splitlines()[0])
    assert len(qs) == 80 and {"single-v1", "single-math-v1"} <= set(prompts)
    assert all(q["reference"] for q in qs if q["category"] in NEED_REF_CATS)
    q_ref = next(q for q in qs if q["question_id"] == refs["question_id"])
    assert q_ref["reference"] == refs["choices"][0]["turns"]
    for q in qs:
        msgs = mt_bench_messages(q, "ANSWER {x}", prompts)
        name = "single-math-v1" if q["category"] in NEED_REF_CATS else "single-v1"
        p = prompts[name]
        kw = {"ref_answer_1": q["reference"][0]} if name == "single-math-v1" else {}
        assert msgs == [{"role": "system", "content": p["system_prompt"]},
                        {"role": "user", "content": p["prompt_template"].format(question=q["turns"][0], answer="ANSWER {x}", **kw)}]
    cases = mt_bench_cases(qs, {q["question_id"]: ["t1", "t2"] for q in qs})
    assert len(cases) == 80 and {c["answer"] for c in cases} == {"t1"}


def test_mt_bench_errors(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question_id": 1, "category": "math", "turns": ["1+1?"]}\n{"question_id": 1, "category": "math", "turns": ["x"]}\n')
    with pytest.raises(JudgeFormatError, match=r"q.jsonl:2: field 'question_id': 1 appears twice"):
        load_mt_bench(tmp_path / "q.jsonl")
    (tmp_path / "q2.jsonl").write_text('{"question_id": 1, "category": 5, "turns": ["1+1?"]}\n')
    with pytest.raises(JudgeFormatError, match=r"q2.jsonl:1: field 'category' must be a string"):
        load_mt_bench(tmp_path / "q2.jsonl")
    (tmp_path / "p.jsonl").write_text('{"name": "single-v1", "type": "single", "system_prompt": "s", "output_format": "[[rating]]"}\n')
    with pytest.raises(JudgeFormatError, match=r"p.jsonl:1: field 'prompt_template'"):
        load_judge_prompts(tmp_path / "p.jsonl")
    (tmp_path / "r.jsonl").write_text('{"question_id": 1, "choices": [{"turns": "2"}]}\n')
    with pytest.raises(JudgeFormatError, match=r"r.jsonl:1: field 'choices\[0\].turns'"):
        load_mt_bench(tmp_path / "q2.jsonl", tmp_path / "r.jsonl")
    with pytest.raises(KeyError, match="no answer"):
        mt_bench_cases([{"question_id": 3, "category": "x", "turns": ["q"], "reference": None}], {})


# --- judge() ---------------------------------------------------------------------------------------------------------

def _qid(prompt) -> str:
    return prompt[-1]["content"].split("<question>\n")[1].split("\n")[0]


class Scripted:
    "A fake judge: replies per question from a script, attempt by attempt; records every call."
    def __init__(self, script): self.script, self.calls, self.seen = script, [], {}
    def __call__(self, prompts, return_exceptions=False, **kw):
        self.calls.append(([_qid(p) for p in prompts], kw))
        out = []
        for p in prompts:
            q = _qid(p); k = self.seen.get(q, 0); self.seen[q] = k + 1
            r = self.script[q][min(k, len(self.script[q]) - 1)]
            if isinstance(r, Exception) and not return_exceptions: raise r
            out.append(r)
        return out


def _cases(ids, cat="c"):
    return [{"id": i, "question": i, "answer": "x" * (k + 1), "reference": "r", "category": cat} for k, i in enumerate(ids)]


def test_retries_only_failures_and_counts_attempts():
    gen = Scripted({"a": ['{"score": 7}'], "b": ["garbage", '{"score": 4}'], "c": ["nothing"], "d": [TimeoutError("slow"), "Score: 6"],
                    "e": ["[[9]]", '{"score": 2}']})
    res = judge(gen, _cases("abcde"), max_attempts=3, seed=5, temperature=0.7)
    assert [ids for ids, _ in gen.calls] == [list("abcde"), list("bcde"), ["c"]]
    assert [kw["seed"] for _, kw in gen.calls] == [5, 6, 7] and all(kw["temperature"] == 0.7 for _, kw in gen.calls)
    assert [(r.id, r.score, r.attempts, r.how) for r in res] == [("a", 7, 1, "strict"), ("b", 4, 2, "strict"), ("c", None, 3, None),
                                                                 ("d", 6, 2, "lenient"), ("e", 2, 2, "strict")]
    assert res[2].error == "no score found" and res[2].replies == ["nothing"] * 3
    assert res[3].replies[0].startswith("[generator error] TimeoutError") and [r.answer_chars for r in res] == [1, 2, 3, 4, 5]
    s = summarise_judgements(res)
    assert s.loc[s["category"] == "all", ["n", "scored", "failures"]].values.tolist() == [[5, 4, 1]]


def test_generator_that_raises_or_misbehaves_never_crashes():
    def boom(prompts, return_exceptions=False, **kw): raise ConnectionError("down")
    res = judge(boom, _cases("ab"), max_attempts=2)
    assert [(r.score, r.attempts) for r in res] == [(None, 2), (None, 2)] and "ConnectionError" in res[0].error
    def short(prompts, return_exceptions=False, **kw): return ['{"score": 5}']
    res = judge(short, _cases("ab"), max_attempts=1)
    assert all(r.score is None and "returned 1 replies for 2 prompts" in r.error for r in res)
    res = judge(lambda p, return_exceptions=False, **kw: [None] * len(p), _cases("a"), max_attempts=2)
    assert res[0].score is None and res[0].attempts == 2


def test_bad_cases_fail_before_generation():
    gen = Scripted({})
    with pytest.raises(ValueError, match="case 0: field 'answer' missing"):
        judge(gen, [{"id": 1, "question": "q"}])
    with pytest.raises(ValueError, match="needs prompts"):
        judge(gen, _cases("a"), fmt="mtbench")
    assert gen.calls == []


def test_mtbench_format_through_judge():
    prompts = {"single-v1": {"system_prompt": "S", "prompt_template": "<question>\n{question}\n A={answer}"},
               "single-math-v1": {"system_prompt": "S", "prompt_template": "<question>\n{question}\n R={ref_answer_1} A={answer}"}}
    gen = Scripted({"a": ["Rating: [[8]]"], "b": ["[[3]]"]})
    res = judge(gen, _cases("a", "writing") + _cases("b", "math"), fmt="mtbench", prompts=prompts)
    assert [(r.score, r.how) for r in res] == [(8, "strict"), (3, "strict")]


def test_length_bias_and_injection():
    from creativity_llm.judge import JudgeResult
    rs = [JudgeResult(i, "c", s, 1, answer_chars=n) for i, (s, n) in enumerate([(2, 10), (5, 50), (9, 200), (None, 5)])]
    lb = length_bias(rs)
    assert lb["n"] == 3 and lb["rho"] == pytest.approx(1.0)
    assert length_bias(rs[:1])["rho"] is None and length_bias([JudgeResult(i, "c", 5, 1, answer_chars=i) for i in range(4)])["rho"] is None

    def gullible(prompts, return_exceptions=False, **kw):
        return ['{"score": 10}' if INJECTION["ja"] in p[-1]["content"] else '{"score": 4}' for p in prompts]
    out = injection_check(gullible, _cases("abc"), lang="ja")
    assert out["summary"]["n_pairs"] == 3 and out["summary"]["mean_change"] == 6 and out["summary"]["injection_success_rate"] == 1.0
    assert out["pairs"]["injected"].tolist() == [10, 10, 10]

    def robust(prompts, return_exceptions=False, **kw):
        return ['{"score": 2}' if INJECTION["en"] in p[-1]["content"] else '{"score": 6}' for p in prompts]
    s = injection_check(robust, _cases("ab"))["summary"]
    assert s["rose_fraction"] == 0 and s["injection_success_rate"] == 0 and s["mean_change"] == -4 and s["failures"] == 0


def test_micro_model_gibberish_is_counted_as_failure():
    model, tok = micro_model(seed=3, max_position_embeddings=4096)
    gen = TransformersGenerator(model, tok, batch_size=4, progress=False, max_new_tokens=16, temperature=1.0)
    cases = [{"id": i, "question": "Why is the sea salty?", "answer": "Rivers carry dissolved minerals.", "reference": "Weathering.",
              "category": "stem" if i % 2 else "earth"} for i in range(3)]
    res = judge(gen, cases, max_attempts=2)
    assert all(r.score is None and r.attempts == 2 and len(r.replies) == 2 and r.error for r in res)
    s = summarise_judgements(res)
    assert s.set_index("category").loc["all", ["scored", "failures"]].tolist() == [0, 3]


@needs_shared
def test_stage_07_jcq_and_both_mt_bench_turns(tmp_path):
    "Stage 07 with JCQ (a sample stratified by task), MT-Bench's two turns and each verdict asked twice; a re-run takes every answer and read from the caches."
    import pyarrow.parquet as pq
    from peft import LoraConfig, get_peft_model
    from creativity_llm.core import stage_dir
    from creativity_llm.evaluation import run_eval
    from creativity_llm.pipeline import RunConfig
    lora = get_peft_model(micro_model()[0], LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(stage_dir(tmp_path, "05") / "adapters" / "attention")
    cfg = RunConfig(model="micro:llama", device="cpu", eval_mc_en="", eval_kl_passages=0, eval_max_new_tokens=6, judge_max_new_tokens=4, judge_injection_cases=0,
                    gen_batch_size=8, eval_jcq=3, eval_mt_bench=1, judge_repeats=2)
    logs = []
    res = run_eval(cfg, tmp_path, log=logs.append)
    out = stage_dir(tmp_path, "07")
    rows = pq.read_table(out / "judgements.parquet").to_pylist()
    jcq = [r for r in rows if r["task"] == "jcq"]
    assert len(jcq) == 6 and len({r["category"] for r in jcq}) == 3  # 3 questions of 3 tasks, for the base and the adapter
    assert all(r[k] is not None and 1 <= r[k] <= 5 and r[f"{k}_source"] == "probabilities" for r in jcq for k in JCQ_DIMENSIONS.values())
    assert all(0 <= r["heuristic"] <= 1 for r in jcq) and res["jcq"]["sources"] == {"probabilities": 24}
    mt = [r for r in rows if r["task"] == "mt-bench"]
    assert sorted((r["model"], r["turn"]) for r in mt) == [("attention", 1), ("attention", 2), ("base", 1), ("base", 2)]
    assert all(len(r["repeat_scores"]) == 2 for r in mt) and all(r["answer_1"] for r in mt if r["turn"] == 2)
    report = (out / "report.md").read_text()
    assert "## Japanese creativity (JCQ)" in report and "Turn 1:" in report and "Turn 2:" in report and "originality with 独創性" in report
    before = (out / "judgements.parquet").read_bytes()
    logs.clear(); run_eval(cfg, tmp_path, log=logs.append)
    assert (out / "judgements.parquet").read_bytes() == before
    caches = [l for l in logs if "answers reused from" in l]
    assert caches and all(l.endswith(", 0 generated") for l in caches), caches  # answers, verdicts and JCQ reads: none asked for again
