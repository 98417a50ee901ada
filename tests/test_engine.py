"""Generation on an engine: `creativity-llm serve` speaks vLLM's protocol (adapters by name, loaded at start or at run time, concurrent
requests batched), and a stage sent there (`engine_url`) writes what the in-process peft path writes."""
import json, re, shutil, subprocess, threading
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace

import httpx
import pytest

from conftest import CLI
from creativity_llm.core import dir_files_sha256, stage_dir, write_jsonl
from creativity_llm.generate import served_adapter_name
from creativity_llm.models import micro_model, save_adapter
from creativity_llm.pipeline import RunConfig
from creativity_llm.qubo import generate_team_pairs
from creativity_llm.sources import load_samples
from creativity_llm.synthesis import DOCUMENTS, EVAL_HELDOUT, SEED_PAIRS

EXPERTS = [("divergent", "energy"), ("reasoning", "computing"), ("perspective", "consumer_products"), ("constraint", "medical_devices")]


def start_serve(*args) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([CLI, "serve", "--model", "micro:llama", "--port", "0", "--device", "cpu", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        line = proc.stdout.readline()
        assert line, f"serve exited ({proc.poll()})"
        if m := re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line): return proc, m.group(1)


@pytest.fixture(scope="module")
def team_run(tmp_path_factory):
    "A run directory with stage 01's documents and four random LoRA experts of the micro model in stage 02: what team generation reads."
    import pyarrow as pa, pyarrow.parquet as pq
    from peft import LoraConfig, get_peft_model
    run = tmp_path_factory.mktemp("team") / "run"
    s01, s02 = stage_dir(run, "01"), stage_dir(run, "02")
    write_jsonl(s01 / DOCUMENTS, [asdict(d) for d in load_samples("inventions_en")])
    pq.write_table(pa.Table.from_pylist([{"id": "seed/0", "source_id": "none", "category": "divergent", "response": "a seed answer"}]), s01 / SEED_PAIRS)
    pq.write_table(pa.Table.from_pylist([{"id": "held/0", "source_id": "none", "input": "a held-out abstract", "response": "a held-out answer"}]), s01 / EVAL_HELDOUT)
    team = []
    for k, (cat, sub) in enumerate(EXPERTS):
        import torch
        torch.manual_seed(k)  # four different random adapters: their answers differ from the base's and from each other's
        lora = get_peft_model(micro_model()[0], LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        save_adapter(lora, s02 / "adapters" / f"{cat}.{sub}")
        team.append({"id": f"{cat}.{sub}", "category": cat, "subdomain": sub, "adapter": f"adapters/{cat}.{sub}"})
    return run, team


def _cfg(**kw):
    return RunConfig(model="micro:llama", device="cpu", temperature=0.0, gen_batch_size=1, team_docs_per_expert=2, synth_max_new_tokens=10,
                     synth_max_retries=0, **kw)


def test_team_generation_on_the_engine_equals_in_process(team_run, tmp_path):
    "Greedy, one request per batch on both sides: the same answers through `serve` (3 experts given with --lora, 1 loaded at run time)."
    run, team = team_run
    local = generate_team_pairs(_cfg(), run, team, log=lambda *a: None)
    shutil.rmtree(stage_dir(run, "03"))
    s02 = stage_dir(run, "02")
    served = {e["id"]: served_adapter_name(e["id"], s02 / e["adapter"]) for e in team}
    proc, url = start_serve("--max-batch", 1, "--max-new-tokens", 64, *[f"--lora={served[e['id']]}={s02 / e['adapter']}" for e in team[:3]])
    try:
        remote = generate_team_pairs(_cfg(engine_url=url, engine_model="micro:llama", engine_concurrency=4), run, team, log=lambda *a: None)
        models = [m["id"] for m in httpx.get(url + "/models").json()["data"]]
    finally:
        proc.terminate(); proc.wait(timeout=30)
    assert models == ["micro:llama", *served.values()], "the fourth expert was loaded at run time under its content-hashed name"
    answers = lambda res: sorted((r["key"], r["last_answer"]) for r in res["rejected"])  # the random model's lists do not parse: compare raw answers
    assert answers(remote) == answers(local) and len(answers(local)) == 2 * len(team)
    assert remote["records"] == local["records"] and remote["per_expert"] == local["per_expert"]
    assert len({a for _, a in answers(local)}) > 1, "the adapters change the answers: a wrong adapter would show"


def test_serve_batches_concurrent_requests():
    "Eight requests at once: the server answers some of them in one batch (it says how many in X-Batch-Size); each answer is its own."
    proc, url = start_serve("--batch-window-ms", 500, "--max-new-tokens", 4)
    try:
        ask = lambda i: httpx.post(url + "/chat/completions", timeout=120,
                                   json={"messages": [{"role": "user", "content": f"prompt {i}"}], "max_tokens": 4, "seed": i})
        with ThreadPoolExecutor(8) as pool: replies = list(pool.map(ask, range(8)))
        alone = ask(3)
    finally:
        proc.terminate(); proc.wait(timeout=30)
    assert all(r.status_code == 200 for r in replies)
    assert max(int(r.headers["X-Batch-Size"]) for r in replies) > 1
    assert alone.headers["X-Batch-Size"] == "1"
    assert alone.json()["choices"][0]["message"]["content"] == replies[3].json()["choices"][0]["message"]["content"], "a seeded request draws the same tokens alone"


def test_stage_through_batch_files_equals_online(tmp_path):
    "Stage 01 with batch_dir: each round's requests written, answered by `serve --batch` (as vllm run-batch), read back; the outputs equal the online run's."
    env_args = ["--preset", "smoke", "--stages", "00-01", "-p", "teacher_model=micro:llama", "-p", "synth_qa_per_doc=0"]  # two rounds: lists, their retries
    proc, url = start_serve("--max-new-tokens", 64)
    try:
        online = subprocess.run([CLI, "run", "--run-dir", tmp_path / "online", *env_args, "-p", f"teacher_url={url}"], capture_output=True, text=True, timeout=300)
    finally:
        proc.terminate(); proc.wait(timeout=30)
    assert online.returncode == 0, online.stdout[-2000:] + online.stderr[-2000:]

    batch_dir, rounds = tmp_path / "batches", 0
    cmd = [CLI, "run", "--run-dir", tmp_path / "batch", *env_args, "-p", "teacher_url=http://127.0.0.1:9/v1", "-p", f"batch_dir={batch_dir}"]
    while (r := subprocess.run(cmd, capture_output=True, text=True, timeout=300)).returncode == 3:  # waiting: answer the new file, run again
        assert "is waiting" in r.stderr and "requests in" in r.stderr
        todo = [p for p in batch_dir.glob("*.requests.jsonl") if not p.with_name(p.name.replace(".requests.", ".results.")).exists()]
        assert len(todo) == 1, todo
        out = todo[0].with_name(todo[0].name.replace(".requests.", ".results."))
        s = subprocess.run([CLI, "serve", "--model", "micro:llama", "--device", "cpu", "--max-new-tokens", "64", "--batch", todo[0], out],
                           capture_output=True, text=True, timeout=300)
        assert s.returncode == 0 and "(0 errors)" in s.stdout, s.stdout + s.stderr
        rounds += 1
        assert rounds < 10
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert rounds >= 2, "the retries came as a second file"
    m = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert [h["action"] for h in m["stages"]["01"]["history"]].count("waiting") == rounds
    a, b = (dir_files_sha256(tmp_path / run / "01_synthesis") for run in ("online", "batch"))
    assert a.keys() == b.keys() and {k for k in a if a[k] != b[k]} <= {"cards/seed_pairs.md", "cards/eval_heldout.md"}
    for card in ("seed_pairs.md", "eval_heldout.md"):  # the cards name the teacher's URL and the configuration's hash, which differ
        lines = [(x, y) for x, y in zip(*((tmp_path / run / "01_synthesis" / "cards" / card).read_text().splitlines() for run in ("online", "batch"))) if x != y]
        assert all("teacher" in x or "configuration hash" in x for x, _ in lines), lines

    first = sorted(batch_dir.glob("*.results.jsonl"))[0]  # a half-written results file is refused with its line
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    from creativity_llm.generate import read_batch_results
    with pytest.raises(ValueError, match=r"results\.jsonl:\d+: "):
        read_batch_results(first, first.with_name(first.name.replace(".results.", ".requests.")))


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "shared/data/mt_bench_en").is_dir(), reason="../shared/data is not beside the repository")
def test_mt_bench_second_turn_on_the_engine():
    "MT-Bench through `serve`: turn 2 is asked after the model's own first answer, and the judge reads the whole conversation."
    from creativity_llm.evaluation import mt_bench_eval
    from creativity_llm.models import ModelSet
    proc, url = start_serve("--max-batch", 1, "--max-new-tokens", 8)
    try:
        seen = []
        def judge(prompts, return_exceptions=False, **kw): seen.extend(prompts); return ["Rating: [[5]]"] * len(prompts)
        cfg = replace(_cfg(engine_url=url, eval_max_new_tokens=8, judge_prefill=""), temperature=1.0, top_p=1.0)  # sampled: answers of random bytes, not greedy newlines
        rows = mt_bench_eval(ModelSet(*micro_model(), {}), ["base"], cfg, judge, "en", 2)
        assert [(r["turn"], r["score"]) for r in rows] == [(1, 5.0)] * 2 + [(2, 5.0)] * 2
        first = {r["prompt_id"]: r for r in rows if r["turn"] == 1}
        for i, r in enumerate(r for r in rows if r["turn"] == 2):
            assert r["answer_1"] == first[r["prompt_id"]]["answer"] and r["question_1"] == first[r["prompt_id"]]["question"]
            conversation = [{"role": "user", "content": r["question_1"]}, {"role": "assistant", "content": r["answer_1"]}, {"role": "user", "content": r["question"]}]
            direct = httpx.post(f"{url}/chat/completions", json={"model": "micro:llama", "messages": conversation, "max_tokens": 8, "temperature": 1.0, "top_p": 1.0,
                                                                  "seed": cfg.seed + i}, timeout=60)  # the generator's seed for the i-th prompt of its call
            assert r["answer"] == direct.json()["choices"][0]["message"]["content"]  # the engine's reply to the conversation with the first answer in it
            assert r["answer_1"].strip() and r["answer"] != r["answer_1"]
            judged = next(p[-1]["content"] for p in seen if f"### User:\n{r['question_1']}" in p[-1]["content"])
            assert f"### Assistant A:\n{r['answer_1']}\n\n### User:\n{r['question']}\n\n### Assistant A:\n{r['answer']}" in judged
    finally:
        proc.terminate(); proc.wait()
