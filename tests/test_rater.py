"""The LLM creativity rater: malformed endpoint payloads never crash it, the micro model rates AUT rows end to end (cached, resumable),
and the endpoint path reads `top_logprobs` from a server."""
import json, math, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT
from creativity_llm.generate import AnswerCache, TransformersGenerator
from creativity_llm.models import micro_model
from creativity_llm.rater import (RATER_PROMPTS, EndpointRater, LocalRater, Rating, best_weight, rate_rows, rating_from_response,
                                  validate_rater)
from creativity_llm.scorer import load_aut

EN = RATER_PROMPTS["en"]
AUT = ROOT.parent / "shared" / "data" / "creativity_aut" / "aut_human_originality_gt_main2.jsonl"


def _entry(token, logprob, raw=None):
    e = {"token": token, "logprob": logprob}
    if raw is not None: e["bytes"] = raw
    return e


def _chat(top=None, content="4", chosen=None):
    pos = {"token": content, "logprob": -0.1} if chosen is None else chosen
    if top is not None: pos["top_logprobs"] = top
    return {"choices": [{"message": {"role": "assistant", "content": content}, "logprobs": {"content": [pos]}}]}


# the cases the issue names, each with what the rater must make of it
NAMED = [
    (_chat([_entry(" 4", -0.1), _entry(" 3", -2.5)]), "probabilities"),                         # leading-space tokens
    (_chat([_entry("4", float("-inf")), _entry("3", float("nan")), _entry("x", -0.1)], content="3"), "text"),  # -inf / NaN: no mass left
    (_chat([_entry("4", -0.5, [52]), _entry("?", -1.0, [0xef, 0xbc, 0x95])]), "probabilities"),  # bytes fields (０x ５ full-width)
    (_chat([_entry("1", -0.2), _entry("10", -3.0)], content="1"), "probabilities"),             # a rating split over two tokens: its first
    ({"choices": [{"message": {"content": "4"}, "logprobs": {"content": [{"token": "4", "logprob": -0.1}]}}]}, "probabilities"),  # no top_logprobs
    ({"choices": [{"message": {"content": ""}, "logprobs": None}]}, "failed"),                   # empty content, no probabilities
    ({"choices": [{"message": {"content": "Score: 5 out of 5"}}]}, "text"),                      # no logprobs at all
    ({"choices": []}, "failed"), ({}, "failed"), (None, "failed"), ("4", "failed"), ([], "failed"),
]


@pytest.mark.parametrize("payload,source", NAMED)
def test_named_malformed_payloads(payload, source):
    r = rating_from_response(payload, EN)
    assert r.source == source, (payload, r)
    assert (r.rating is None) == (source == "failed") and (r.rating is None or 1 <= r.rating <= 5)
    assert r.prompt_version == EN.version and (source != "failed" or r.problem)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=6), st.lists(st.integers(-5, 300), max_size=4))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(
    ["choices", "message", "content", "logprobs", "top_logprobs", "token", "logprob", "bytes", "text", "x"]), inner, max_size=5)), max_leaves=25)
entry = st.fixed_dictionaries({}, optional={"token": st.one_of(st.sampled_from(["1", "2", " 3", "Ġ4", "▁5", "５", "", "4 ", "x"]), st.text(max_size=3), st.none()),
                                            "logprob": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.text(max_size=2), st.none()),
                                            "bytes": st.one_of(st.lists(st.integers(-1, 300), max_size=4), st.text(max_size=2), st.none())})
shaped = st.builds(lambda top, content, drop: _chat(None if drop else top, content), st.lists(entry, max_size=6),
                   st.one_of(st.text(max_size=8), st.sampled_from(["4", "３", "Score: 2", "", " 5."])), st.booleans())

COUNTS: dict = {}


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_any, shaped))
def test_hundreds_of_malformed_payloads_never_crash_and_are_counted(payload):
    r = rating_from_response(payload, EN)
    COUNTS[r.source] = COUNTS.get(r.source, 0) + 1
    assert r.source in ("probabilities", "text", "failed")
    assert (r.rating is None) == (r.source == "failed") and (r.rating is None or 1.0 <= r.rating <= 5.0)
    assert math.isfinite(r.mass) and 0.0 <= r.mass <= 1.0 + 1e-9
    assert sum(COUNTS.values()) <= 400


def test_micro_model_rates_aut_rows_end_to_end_and_resumes(tmp_path):
    if not AUT.is_file():
        if os.environ.get("CI"): pytest.fail(f"{AUT} is missing: the shared data must sit beside the repository under CI")
        pytest.skip("needs ../shared/data")
    rows = load_aut(AUT)[:36]
    model, tok = micro_model(seed=0)
    cache = AnswerCache(tmp_path / "ratings.jsonl")
    first = rate_rows(LocalRater(model, tok, batch_size=8, cache=cache, identity="micro:0"), rows[:20])
    cache.close()
    assert all(r.source == "probabilities" and 1 <= r.rating <= 5 for r in first)
    cache = AnswerCache(tmp_path / "ratings.jsonl")  # a run killed after 20 rows: the next rates only the other 16
    rater = LocalRater(model, tok, batch_size=8, cache=cache, identity="micro:0")
    calls = []
    forward = rater._forward
    rater._forward = lambda texts, ids: calls.append(len(texts)) or forward(texts, ids)
    every = rate_rows(rater, rows)
    assert sum(calls) == 16 and [r.rating for r in every[:20]] == [r.rating for r in first]
    heuristic = [len(r["response"]) for r in rows]
    report = validate_rater(every, heuristic, [r["originality_human"] for r in rows], best_weight(every, heuristic, [r["originality_human"] for r in rows]), n_boot=50)
    assert report["n"] == 36 and report["failed"] == 0 and -1 <= report["rater"][0] <= 1 and 0 < report["mean_mass"] <= 1


class _Stub:
    "A chat endpoint on 127.0.0.1 that answers each request with the next payload of `replies` (vLLM's shape by default)."
    def __init__(self, replies):
        self.replies, self.requests = list(replies), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a): pass

            def do_POST(self):
                stub.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = stub.replies.pop(0) if stub.replies else b"{}"
                body = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body)))
                self.end_headers(); self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self): self.httpd.shutdown(); self.httpd.server_close()


def test_endpoint_path_reads_top_logprobs_and_counts_what_it_cannot_read(tmp_path):
    replies = [_chat([_entry("4", math.log(0.5)), _entry("2", math.log(0.5))]),   # probabilities
               {"choices": [{"message": {"content": "3"}}]},                      # a server without logprobs: the text
               b"not json", b"not json"]                                           # unreadable twice: a failed rating, not a crash
    stub = _Stub(replies)
    try:
        rater = EndpointRater(stub.url, "m", cache=AnswerCache(tmp_path / "r.jsonl"), concurrency=1, max_retries=1, backoff_s=0.0)
        got = rater([("brick", "doorstop"), ("brick", "pigment"), ("brick", "bookend")], EN)
    finally:
        stub.close()
    assert [(g.rating, g.source) for g in got] == [(3.0, "probabilities"), (3.0, "text"), (None, "failed")]
    req = stub.requests[0]
    assert req["logprobs"] is True and req["top_logprobs"] == 20 and req["max_tokens"] == 1 and req["temperature"] == 0.0
    assert req["messages"][1]["content"].endswith("AUT Prompt:brick\nResponse:doorstop\nScore:")
    assert "malformed response" in got[2].problem


def _digit_model(items):
    "A micro Llama whose next token after each rating prompt is almost surely a rating digit, with random odds between the digits."
    import torch
    model, tok = micro_model(seed=0, tie_word_embeddings=False)
    gen = TransformersGenerator(model, tok, progress=False)
    with torch.no_grad():
        enc = tok([gen.render(EN.messages(t, a)) for t, a in items], return_tensors="pt", padding=True, add_special_tokens=False)
        last = enc["attention_mask"].sum(1) - 1
        h = model.model(**enc).last_hidden_state[torch.arange(len(items)), last].mean(0)
        head = model.lm_head.weight
        head.zero_()
        gen_ = torch.Generator().manual_seed(1)
        for t in (tok.encode(r, add_special_tokens=False)[0] for r in EN.ratings):
            head[t] = h / h.norm() ** 2 * (4 + torch.rand(1, generator=gen_).item())  # logit 4-5 for each digit, 0 for every other token
    return model, tok


def test_serve_returns_logprobs_the_endpoint_rater_reads_as_the_local_one_does():
    "The same model rated in process and through `creativity-llm serve`'s top_logprobs gives the same ratings."
    from creativity_llm.serve import BatchingEngine, make_server
    items = [("brick", "doorstop"), ("paperclip", "a tiny lock pick"), ("bottle", "a rain gauge")]
    model, tok = _digit_model(items)
    local = LocalRater(model, tok, batch_size=1)(items, EN)
    srv = make_server(BatchingEngine(TransformersGenerator(model, tok, max_new_tokens=4, progress=False)), "micro:llama", port=0, max_tokens_cap=4)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        remote = EndpointRater(f"http://127.0.0.1:{srv.server_address[1]}", "micro:llama", concurrency=2)(items, EN)
    finally:
        srv.shutdown(); srv.server_close()
    assert [r.source for r in remote] == ["probabilities"] * 3 and min(r.mass for r in local) > 0.5, (local, remote)
    assert all(abs(a.rating - b.rating) < 1e-4 and abs(a.mass - b.mass) < 1e-4 for a, b in zip(local, remote)), (local, remote)


def test_stage_07_rates_the_held_out_answers_beside_the_heuristic(tmp_path):
    "eval_rater: stage 07 rates each held-out creativity answer (each language with its prompt), and its report and summary show the rater beside the heuristic."
    import pyarrow as pa, pyarrow.parquet as pq
    from creativity_llm.core import stage_dir
    from creativity_llm.evaluation import run_eval
    from creativity_llm.pipeline import RunConfig
    s01 = stage_dir(tmp_path, "01"); s01.mkdir(parents=True)
    base = {"subdomain": "", "lehnert_category": "", "source_id": "s", "dc_format": "", "answer": "", "rationale": "", "answer_first": ""}
    seed = [{**base, "id": f"s{i}", "task": "creativity", "category": "divergent", "lang": lang, "instruction": "Improve the kettle.", "response": r}
            for i, (lang, r) in enumerate([("en", "1. A solar kettle that stores heat in salt."), ("ja", "1. 塩に熱を蓄える太陽熱ケトル。")])]
    pq.write_table(pa.Table.from_pylist(seed), s01 / "seed_pairs.parquet")
    held = [{**base, "id": f"h{i}", "task": "creativity", "category": c, "lang": lang, "instruction": q, "response": "1. A lid that folds into a cup."}
            for i, (c, lang, q) in enumerate([("divergent", "en", "Propose uses for a kettle."), ("reasoning", "ja", "やかんの新しい使い方を提案してください。"),
                                              ("divergent", "en", "Improve a bicycle brake.")])]
    held.append({**base, "id": "q0", "task": "qa", "category": "", "lang": "en", "instruction": "Why did the pump fail?", "response": "The seal wore out."})
    pq.write_table(pa.Table.from_pylist(held), s01 / "eval_heldout.parquet")
    from creativity_llm.multiple_choice import mc_path
    try: jmmlu = bool(mc_path("jmmlu", "ja"))  # the same run shows a Japanese set in a published format, per subject, where the shared data are
    except FileNotFoundError: jmmlu = False
    cfg = RunConfig(model="micro:llama", device="cpu", eval_rater=True, eval_mc_items=4, eval_kl_passages=0, eval_max_new_tokens=8,
                    judge_max_new_tokens=4, judge_injection_cases=0, gen_batch_size=4, eval_mc_ja="jmmlu-global-mmlu" if jmmlu else "")
    res = run_eval(cfg, tmp_path, log=lambda *a: None)
    assert res["rater"] == "the base model micro:llama (adapters off)" and "rater" in res["times"]
    s = res["rater_summary"]
    assert (s["n"], s["failed"], s["prompt_versions"]) == (3, 0, ["jcq-ja-1", "ocsai-en-1"])
    assert {r["category"] for r in res["rater_by_category"]} == {"divergent", "reasoning", "all"}
    out = stage_dir(tmp_path, "07")
    answers = pq.read_table(out / "answers.parquet").to_pylist()
    assert all(1 <= a["rater"] <= 5 and a["rater_source"] == "probabilities" for a in answers if a["task"] == "creativity")
    assert [a["rater"] for a in answers if a["task"] == "qa"] == [None]  # a QA answer is not rated for originality
    report = (out / "report.md").read_text()
    assert "LLM rater: originality 1–5" in report and "Spearman ρ between the rater and the PatentQualityScorer total" in report
    assert report.index("## Creativity per category") < report.index("LLM rater:") < report.index("## LLM-as-a-Judge")
    assert "Sets: en: the project's shipped sample" in report and "Accuracy (acc) per subject, en" in report
    if jmmlu: assert "ja: JMMLU, the 53 CC BY-SA subjects of its 56" in report and "global_mmlu_full_ja" in report and "per subject, ja" in report
