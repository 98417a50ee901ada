"""Generating stages resume after a kill (the answer cache), and the Japanese synthesis path end to end, against a Japanese teacher on
127.0.0.1 that speaks the OpenAI protocol and answers with replies written for these tests."""
import hashlib, json, os, random, re, signal, subprocess, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import CLI, ROOT
from creativity_llm.core import dir_files_sha256, stage_dir
from creativity_llm.generate import AnswerCache
from creativity_llm.pipeline import RunConfig
from creativity_llm.sources import load_sources
from creativity_llm.synthesis import synthesize

NLP_JOURNAL = ROOT.parent / "shared" / "data" / "ja_academic_abstracts" / "nlp_journal_abstracts_vol16plus_ccby.jsonl"
JA_SOURCES = f"samples:inventions,nlp_journal:{NLP_JOURNAL}"  # Japanese inventions from the samples, abstracts from the journal

VERBS = ("組み合わせる", "薄型化する", "センサーで監視する", "樹脂に置き換える", "モジュール化する", "IoTでつなぐ", "再利用する", "自動化する")
GOALS = ("設置時間を半分にする", "コストを約3割下げる", "高齢者でも片手で扱えるようにする", "災害時の電源なしでも使えるようにする",
         "メンテナンス周期を２倍に延ばす", "海外の規格（UL）にも適合させる", "部品点数を減らす", "騒音を10dB下げる")
CATEGORY_REPLIES = ("Quantification", "Instrumental", "Causal consequent", "Goal Orientation", "Verification", "手段（Instrumental）")


def _fragments(text: str) -> list[str]:
    "Pieces of a Japanese text between punctuation, long enough to carry its content."
    parts = [p.strip(" 「」『』") for p in re.split(r"[、。，．,.\n()（）【】:：]", text)]
    return [p[:18] for p in parts if 4 <= len(p)] or [text[:12] or "本発明"]


def japanese_reply(messages: list[dict], seed: int) -> tuple[str, str]:
    "(continuation, finish_reason) for one request: a function of the request alone, as a seeded server's answer is."
    rng = random.Random(hashlib.sha256(json.dumps([messages, seed], ensure_ascii=False).encode()).digest())
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
    if "paper clip" in user or "ペーパークリップ" in user: return "書類をまとめるほか、スマートフォンのSIMトレイを開けるのにも使えます。", "stop"
    if rng.random() < 0.12:  # the teacher forgets the language: the check rejects it, a retry with a new seed asks again
        return " Here are some ideas: use a lighter frame, and add a sensor to the base.", "stop"
    frags = _fragments(user)
    pick = lambda: rng.choice(frags)
    if prefill == "1.":
        ideas = [f"{pick()}を{rng.choice(VERBS)}ことで、{rng.choice(GOALS)}" for _ in range(5)]
        style = rng.choice(["fullwidth", "circled", "bullets", "plain"])
        if style == "fullwidth": text = f" {ideas[0]}\n" + "\n".join(f"{'２３４５'[k]}．{x}" for k, x in enumerate(ideas[1:]))
        elif style == "circled": text = "\n" + "\n".join(f"{'①②③④⑤'[k]} {x}" for k, x in enumerate(ideas))
        elif style == "bullets": text = " 次のアイデアが考えられます。\n" + "\n".join(f"・{x}" for x in ideas[1:])
        else: text = f" {ideas[0]}。\n" + "\n".join(f"{k + 2}. {x}。" for k, x in enumerate(ideas[1:]))
        if rng.random() < 0.15: return text[: int(len(text) * 0.7)], "length"  # cut at max_tokens mid-item
        return text, "stop"
    if prefill == "選択:":
        n, m = rng.sample(range(1, 4), 2)
        return f" アイデア{n}の「{pick()}」を選び、アイデア{m}と組み合わせる。{pick()}の課題が同時に解決できる。製造工程も大きく変わらない。", "stop"
    if prefill == "カテゴリ:":
        f1, f2 = pick(), pick()
        text = f" {rng.choice(CATEGORY_REPLIES)}\n質問: {f1}について、どのような結果が得られましたか？\n回答: {f2}ことが示された。"
        if rng.random() < 0.1: return text[: text.index("回答")], "length"
        return text, "stop"
    return f"{pick()}について説明します。", "stop"


class JapaneseTeacher:
    "An OpenAI-compatible chat endpoint on 127.0.0.1; `hold_after` n requests, later ones wait until `release` is set (a run to kill)."
    def __init__(self):
        self.requests, self.hold_after, self.release, self.lock = 0, None, threading.Event(), threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with teacher.lock:
                    teacher.requests += 1
                    held = teacher.hold_after is not None and teacher.requests > teacher.hold_after
                if held: teacher.release.wait(120)
                text, finish = japanese_reply(body["messages"], body.get("seed", 0))
                out = json.dumps({"id": "x", "object": "chat.completion", "model": body.get("model"),
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]},
                                 ensure_ascii=False).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError: pass  # the client was killed while we waited

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self): self.release.set(); self.httpd.shutdown(); self.httpd.server_close()


@pytest.fixture(scope="module")
def teacher():
    t = JapaneseTeacher()
    yield t
    t.close()


needs_nlp_journal = pytest.mark.skipif(not NLP_JOURNAL.is_file(), reason=f"{NLP_JOURNAL} not found (the shared data)")


@needs_nlp_journal
def test_japanese_synthesis_through_an_endpoint(teacher, tmp_path):
    "Stage 01 on Japanese inventions and NLP-journal abstracts: the client, parser, language check, retries, split and cards, in Japanese."
    cfg = RunConfig(model="micro:llama", teacher_url=teacher.url, teacher_model="ja-teacher", synth_langs="ja", synth_sources=JA_SOURCES,
                    synth_max_docs=8, synth_max_new_tokens=256, heldout_per_category=1,
                    synth_skip_bad_rows=True)  # the journal has a row whose abstract is LaTeX, not Japanese: skipped and listed
    stats = synthesize(cfg, tmp_path, log=lambda *a: None)
    out = stage_dir(tmp_path, "01")
    import pyarrow.parquet as pq
    rows = pq.read_table(out / "seed_pairs.parquet").to_pylist() + pq.read_table(out / "eval_heldout.parquet").to_pylist()
    sources = {r["source_id"] for r in rows}
    assert any(s.startswith("inv-ja-") for s in sources) and any(s.startswith("V") for s in sources), sources  # samples and the journal
    assert {r["lang"] for r in rows} == {"ja"} and stats["heldout"] > 0 and stats["train"] > 0 and stats["rows_skipped"] >= 1
    creative = [r for r in rows if r["task"] == "creativity"]
    assert creative and all(r["dc_format"].startswith("## 発散: アイデア\n1. ") and "\n\n## 収束: 選択と根拠\n" in r["dc_format"] for r in creative)
    assert all(r["answer_first"].startswith("回答: ") and "\n根拠: " in r["answer_first"] for r in rows)
    assert not any(re.match(r"^[①-⑤・]|^[２-５]．", idea) for r in creative for idea in r["ideas"]), "list markers are stripped"
    qa = [r for r in rows if r["task"] == "qa"]
    assert qa and all(r["question"].endswith("？") for r in qa) and {r["category_source"] for r in qa} <= {"teacher", "inferred"}
    assert not re.search(r"。 (?!/)", "".join(r["answer_first"] + r["dc_format"] for r in rows)), "Japanese sentences are joined without a space"
    fails = {k: stats["creativity"]["failed_attempts"][k] + stats["qa"]["failed_attempts"][k] for k in ("wrong_language", "truncated")}
    assert fails["wrong_language"] > 0 and stats["creativity"]["generated"] > stats["prompts"]["creativity"], "English replies are retried"
    assert any(r["attempts"] > 1 for r in rows)
    card = (out / "cards" / "seed_pairs.md").read_text()
    assert "- ja: " in card and "ja-teacher@" in card and "| 自然言語処理 (Journal of Natural Language Processing), vol. 16+ | CC BY 4.0 |" in card
    assert len(AnswerCache(out / ".cache" / "teacher.jsonl")) == stats["creativity"]["generated"] + stats["convergent"]["generated"] + stats["qa"]["generated"]


def kill_tree(pid: int):
    "SIGKILL a process and every descendant (papermill's kernel runs in a session of its own), as a scheduler kills a job."
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try: fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError: continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo: tree.append(p := todo.pop()); todo += children.get(p, [])
    for sig in (signal.SIGSTOP, signal.SIGKILL):  # freeze all first: none writes another line while the others die
        for p in tree:
            try: os.kill(p, sig)
            except ProcessLookupError: pass
    return tree


def _runner(run_dir, url, *extra) -> list[str]:
    return [CLI, "run", "--preset", "smoke", "--run-dir", str(run_dir), "--stages", "00-01", "-p", f"teacher_url={url}", "-p", "teacher_model=ja-teacher",
            "-p", "synth_langs=ja", "-p", f"synth_sources={JA_SOURCES}", "-p", "synth_max_docs=6", "-p", "synth_max_new_tokens=256", "-p", "synth_skip_bad_rows=true", *extra]


@needs_nlp_journal
def test_stage_killed_mid_generation_resumes_byte_identical(teacher, tmp_path):
    "kill -9 of the runner and its kernel while stage 01 waits on the teacher, its last cache line torn; the re-run reuses the rest and writes the same bytes."
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    teacher.requests = 0
    whole = subprocess.run(_runner(tmp_path / "whole", teacher.url), capture_output=True, text=True, timeout=300, env=env)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    total = teacher.requests

    teacher.requests, teacher.hold_after = 0, 2 + total // 3  # stage 00's two checks, then a third of stage 01's answers
    teacher.release.clear()
    proc = subprocess.Popen(_runner(tmp_path / "killed", teacher.url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    cache_file = tmp_path / "killed" / "01_synthesis" / ".cache" / "teacher.jsonl"
    deadline = time.time() + 180
    while teacher.requests <= teacher.hold_after:
        assert time.time() < deadline and proc.poll() is None, "stage 01 never reached the teacher"
        time.sleep(0.1)
    time.sleep(0.5)  # the answers that came back are written as they arrive
    assert len(kill_tree(proc.pid)) >= 2, "the runner and its kernel"
    proc.wait()
    teacher.hold_after = None
    teacher.release.set()

    m = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert m["stages"]["01"]["status"] == "running"
    cached = len(AnswerCache(cache_file))
    assert 0 < cached < total - 2, (cached, total)
    data = cache_file.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    cache_file.write_bytes(data[:last + (len(data) - last) // 2])  # the last answer's line cut in the middle, as by a kill during the write
    cached -= 1

    before = teacher.requests
    resumed = subprocess.run(_runner(tmp_path / "killed", teacher.url), capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert "[01_synthesis] running (last run running)" in log
    assert "dropped 1 unreadable line" in log
    reused = int(re.findall(r"answer cache: (\d+) answers reused", log)[-1])
    assert reused == cached, (reused, cached)
    assert teacher.requests - before == total - 2 - cached, "only what the cache lacks is asked for (stage 00 is skipped: up to date)"
    for stage in ("00_core", "01_synthesis"):
        a, b = dir_files_sha256(tmp_path / "whole" / stage), dir_files_sha256(tmp_path / "killed" / stage)
        assert a == b and a, f"{stage} differs after the resume: {sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))}"
    stats = json.loads((tmp_path / "killed" / "01_synthesis" / "stats.json").read_text())
    assert stats["pairs"] > 0 and stats["creativity"]["failed_attempts"]["wrong_language"] + stats["qa"]["failed_attempts"]["wrong_language"] > 0
