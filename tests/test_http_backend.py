"""The OpenAI-compatible client against `creativity-llm serve` on 127.0.0.1, with a fault-injecting proxy in front."""
import os, re, subprocess, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import CLI
from creativity_llm.generate import GenerationError, OpenAIGenerator


@pytest.fixture(scope="module")
def server():
    "`creativity-llm serve` over the micro model on a free port of 127.0.0.1."
    proc = subprocess.Popen([CLI, "serve", "--model", "micro:llama", "--port", "0", "--max-new-tokens", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, url = time.time() + 120, None
    while url is None:
        line = proc.stdout.readline()
        assert line and time.time() < deadline, f"serve did not start (exit {proc.poll()})"
        if m := re.search(r"serving .* on (http://127\.0\.0\.1:\d+)/v1", line): url = m.group(1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


class FaultProxy:
    "Forwards to the server, or misbehaves first according to `plan` (a list of faults consumed one per request)."
    def __init__(self, upstream: str):
        self.upstream, self.plan, self.seen = upstream, [], []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def _reply(self, status, body: bytes, headers=()):
                self.send_response(status)
                for k, v in headers: self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.seen.append(dict(self.headers))
                fault = proxy.plan.pop(0) if proxy.plan else "forward"
                if fault == "503": return self._reply(503, b'{"error": "overloaded"}')
                if fault == "429": return self._reply(429, b'{"error": "slow down"}', [("Retry-After", "0.2")])
                if fault == "429bad": return self._reply(429, b'{"error": "slow down"}', [("Retry-After", "-1")])
                if fault == "400": return self._reply(400, b'{"error": "bad request"}')
                if fault == "garbage": return self._reply(200, b"<html>this is not a completion</html>")
                if fault == "no_choices": return self._reply(200, b'{"id": "x", "choices": []}')
                if fault == "hang": time.sleep(3)
                r = httpx.post(proxy.upstream + self.path, content=body, headers={"Content-Type": "application/json"}, timeout=60)
                self._reply(r.status_code, r.content, [("Content-Type", "application/json")])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self): self.httpd.shutdown(); self.httpd.server_close()


@pytest.fixture
def proxy(server):
    p = FaultProxy(server)
    yield p
    p.close()


def client(url, **kw):
    return OpenAIGenerator(url, model="micro:llama", progress=False, backoff_s=0.05, **{"max_retries": 2, "timeout_s": 20, "max_new_tokens": 8, **kw})  # the server generates at most 8


def test_success_direct_and_batched(server):
    g = client(server, concurrency=3)
    assert isinstance(g.chat("hello"), str)
    answers = g(["one", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "two"}], "三"])
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)


def test_same_seed_same_answer(server):
    g = client(server)
    assert g.chat("repeat", seed=3, temperature=1.0) == g.chat("repeat", seed=3, temperature=1.0)


def test_5xx_then_success(proxy):
    proxy.plan = ["503", "503"]
    assert isinstance(client(proxy.url).chat("hi"), str)
    assert len(proxy.seen) == 3


def test_429_honours_retry_after(proxy):
    proxy.plan = ["429"]
    t0 = time.perf_counter()
    assert isinstance(client(proxy.url).chat("hi"), str)
    assert time.perf_counter() - t0 >= 0.2 and len(proxy.seen) == 2


def test_bad_retry_after_falls_back_to_backoff(proxy):
    proxy.plan = ["429bad"]
    assert isinstance(client(proxy.url).chat("hi"), str)


def test_equal_prompts_in_a_batch_are_sampled_apart(server):
    answers = client(server)(["hello"] * 3, temperature=1.0)
    assert len(set(answers)) > 1
    assert answers == client(server)(["hello"] * 3, temperature=1.0), "and the batch is reproducible"


def test_finish_reason_travels(server):
    assert client(server).chat("hi", max_new_tokens=2).finish_reason == "length"


def test_timeout_is_bounded(proxy):
    proxy.plan = ["hang", "hang"]
    t0 = time.perf_counter()
    with pytest.raises(GenerationError, match=r"timed out after 0.5 s \(2 attempts\)"):
        client(proxy.url, timeout_s=0.5, max_retries=1).chat("hi")
    assert time.perf_counter() - t0 < 2.5


def test_malformed_body_retried_then_reported(proxy):
    proxy.plan = ["garbage"] * 3
    with pytest.raises(GenerationError, match="malformed response: body is not JSON"):
        client(proxy.url).chat("hi")
    assert len(proxy.seen) == 3
    proxy.plan = ["no_choices"]
    assert isinstance(client(proxy.url).chat("hi"), str), "a malformed body followed by a good one succeeds"


def test_client_error_is_not_retried(proxy):
    proxy.plan = ["400"]
    with pytest.raises(GenerationError, match="HTTP 400"):
        client(proxy.url).chat("hi")
    assert len(proxy.seen) == 1


def test_failures_in_a_batch_do_not_sink_it(proxy):
    proxy.plan = ["400"]
    out = client(proxy.url, concurrency=1)(["a", "b"], return_exceptions=True)
    assert isinstance(out[0], GenerationError) and isinstance(out[1], str)


def test_api_key_from_environment(proxy, monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "s3cret")
    client(proxy.url, api_key_env="MY_TEACHER_KEY").chat("hi")
    assert proxy.seen[-1]["Authorization"] == "Bearer s3cret"


def test_server_rejects_bad_requests(server):
    r = httpx.post(f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"})
    assert r.status_code == 400 and "'max_tokens'" in r.json()["error"]["message"]
    r = httpx.post(f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9})
    assert r.status_code == 400 and "more than this server generates (8)" in r.json()["error"]["message"]  # refused, never silently capped
    r = httpx.post(f"{server}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "model": "an-adapter"})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"]
    assert httpx.get(f"{server}/v1/models").json()["data"][0]["id"] == "micro:llama"


def test_judge_over_an_endpoint_counts_failures_and_survives_faults(server):
    "Stage 07's judge through the OpenAI-compatible client: a faulty endpoint and gibberish verdicts are counted, never scored."
    from creativity_llm.pipeline import RunConfig
    from creativity_llm.evaluation import judge_generator, judge_answers
    proxy = FaultProxy(server)
    try:
        cfg = RunConfig(model="micro:llama", judge_url=proxy.url + "/v1", judge_model="micro", teacher_max_retries=0, teacher_timeout_s=20.0,
                        judge_max_new_tokens=8)
        gen, what = judge_generator(cfg, models=None)
        assert what == f"micro at {proxy.url}/v1"
        proxy.plan = ["503", "garbage"]
        cases = [{"id": f"m|{i}", "model": "m", "prompt_id": str(i), "category": "qa", "lang": "en", "question": "Why?", "answer": "Because.",
                  "reference": "Because."} for i in range(3)]
        judged = judge_answers(gen, cases, max_attempts=2, prefill="")
        assert [j["id"] for j in judged] == [c["id"] for c in cases]
        assert all(j["score"] is None and j["attempts"] == 2 for j in judged)  # the micro model cannot write a verdict
        assert all(j["error"] for j in judged)  # each failure says why
    finally:
        proxy.close()
