"""The `creativity-llm` command end to end: the smoke preset, bad configurations, kill -9 and resume."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from conftest import CLI, ROOT, cli, copy_run, write_toy_notebook
from creativity_llm.core import STAGE_BY_ID, STAGES, dir_files_sha256
from creativity_llm.pipeline import RunConfig


def test_stages_lists_what_exists():
    r = cli("stages")
    assert r.returncode == 0, r.stderr
    lines = dict(l.split(None, 1) for l in r.stdout.splitlines())
    assert lines["00_core"].split()[0] == "exists" and "run prepare_models, config PrepareConfig, writes model.json" in lines["00_core"]
    assert "reads 00,01 " in lines["02_experts"] and "run build_experts, config ExpertsConfig" in lines["02_experts"]
    assert set(lines) == {s.slug for s in STAGES}


def test_keys_explains_a_key_and_a_stage():
    r = cli("keys", "lora_r")
    assert r.returncode == 0, r.stderr
    rows = dict(l.split(None, 1) for l in r.stdout.splitlines()[1:])
    assert rows["owner"].startswith("05_lora") and rows["type"] == "int" and rows["default"].startswith("8 ")
    assert rows["help"] == RunConfig.help()["lora_r"] and rows["readers"] == "02_experts, 05_lora"
    r = cli("keys", "05")
    assert r.returncode == 0 and r.stdout.startswith("stage 05_lora:"), r.stderr
    listed = [l.split()[0] for l in r.stdout.splitlines()[1:]]
    assert sorted(listed) == sorted(STAGE_BY_ID["05"].keys)
    r = cli("keys", "lora_rr")
    assert r.returncode == 2 and "did you mean 'lora_r'" in r.stderr and not r.stdout


LIGHT_COMMANDS = [["--help"], ["stages"], ["keys"], ["keys", "lora_r"], ["keys", "05"], ["config", "--preset", "tiny"], ["config", "--preset", "smoke"],
                  ["run", "--help"], ["plan", "--help"], ["serve", "--help"], ["experts", "--help"]]


def test_light_commands_import_no_torch():
    "The command's light paths import no heavy library (structural: `sys.modules` after each, in a fresh process; the wall times are in the note)."
    code = ("import contextlib, io, json, sys\nfrom creativity_llm.pipeline import main\nout = []\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: code = main(argv)\n"
            "        except SystemExit as e: code = e.code\n"
            "    out.append([argv, code, [m for m in ('torch', 'transformers', 'peft', 'pandas', 'deepspeed', 'papermill') if m in sys.modules]])\n"
            "print(json.dumps(out))")
    r = subprocess.run([sys.executable, "-c", code, json.dumps(LIGHT_COMMANDS)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for argv, code, heavy in json.loads(r.stdout):
        assert code == 0 and heavy == [], f"creativity-llm {' '.join(argv)}: exit {code}, imported {heavy}"


# what a fresh `make run` printed before the stage logs (issue 34): each is fixed where the project caused it, or kept in a log
NOISE = ["Kernel is running over TCP", "IProgress not found", "`gradient_checkpointing` is deprecated", "`gradient_checkpointing_kwargs` is deprecated",
         "is_gradient_checkpointing", "past_key_values", "was active which is now deleted", "Setting accelerator to CPU"]


def test_the_terminal_shows_the_stages_and_the_logs_keep_the_rest(smoke_run):
    run_dir, r, _ = smoke_run
    terminal = r.stdout + r.stderr
    assert [n for n in NOISE if n in terminal] == []
    assert "\r" not in terminal, "a progress bar's refreshes reach a non-interactive terminal as its last state, one line"
    logs = {p.name: p.read_text() for p in (run_dir / "logs").glob("*.log")}
    assert set(logs) == {f"{s.slug}.log" for s in STAGES} | {"plan.log"}
    warned = [l for text in logs.values() for l in text.splitlines() if "Warning:" in l]  # which library warns is the library's business
    assert not any(l.strip() in terminal for l in warned), "third-party warnings: in the logs, not on the terminal"
    assert all(l.startswith("== ") for l in logs.values()), "each log starts with its run's header"
    assert "[05] " in terminal and "[05] " in logs["05_lora.log"], "what a stage prints: on the terminal and in its log"


def stage07_item_ids(run_dir) -> list[str]:
    import pyarrow.parquet as pq
    rows = pq.read_table(run_dir / "07_eval" / "retention.parquet").to_pylist()
    return [r["id"] for r in rows if r["model"] == "base" and r["lang"] == "en"]


def test_smoke_run_end_to_end(smoke_run, record_property):
    run_dir, r, wall = smoke_run
    assert r.returncode == 0, r.stdout + r.stderr
    record_property("figure:smoke run (s)", round(wall))  # printed at the end of the test run: a figure, not a goal
    assert "stages: 00_core" in r.stdout and "06_graft" in r.stdout
    m = json.loads((run_dir / "manifest.json").read_text())
    rec = m["stages"]["00"]
    assert rec["status"] == "done" and rec["params"]["model"] == "micro:llama"
    assert rec["outputs"] == dir_files_sha256(run_dir / "00_core")
    assert set(rec["outputs"]) == {"model.json", "generation_check.jsonl"}
    assert {"python", "torch", "transformers", "peft", "creativity_llm"} <= set(rec["versions"])
    assert rec["seed"] == 0 and rec["wall_s"] > 0
    assert (run_dir / "notebooks" / "00_core.ipynb").is_file()
    checks = [json.loads(l) for l in (run_dir / "00_core" / "generation_check.jsonl").read_text().splitlines()]
    assert len(checks) == 2 and all(isinstance(c["answer"], str) for c in checks)
    assert not [p for p in run_dir.rglob(".*tmp*")], "no temporary file survives a finished run"
    rec2, rec3 = m["stages"]["02"], m["stages"]["03"]  # no seed pairs, so no cell has enough for an expert: an empty bank, no team
    assert rec2["status"] == "done" and rec2["metrics"]["cells"] == 0 and "experts.parquet" in rec2["outputs"]
    assert rec3["status"] == "done" and json.loads((run_dir / "03_qubo" / "team.json").read_text())["team"] == []
    rec4 = m["stages"]["04"]  # the random model writes no usable pair: scoring still runs, on nothing
    assert rec4["status"] == "done" and rec4["metrics"]["pairs_in"] == rec4["metrics"]["train_dc"] == 0
    assert {"train_dc.parquet", "scored_pairs.parquet", "score_distributions.png"} <= set(rec4["outputs"])
    rec5 = m["stages"]["05"]  # no pair to train on: the stage says so and trains nothing
    assert rec5["status"] == "done" and rec5["metrics"]["trained"] == []
    rec6 = m["stages"]["06"]  # nothing was tuned: nothing to graft, said so
    assert rec6["status"] == "done" and set(rec6["outputs"]) == {"stats.json"} and rec6["metrics"]["retained_gain"] is None
    rec7 = m["stages"]["07"]  # only the base to evaluate; the random judge's verdicts are all counted failures, never scores
    assert rec7["status"] == "done" and rec7["metrics"]["models"] == ["base"]
    assert {"report.md", "summary.json", "retention.parquet", "judgements.parquet", "retention.png"} <= set(rec7["outputs"])
    summary = json.loads((run_dir / "07_eval" / "summary.json").read_text())
    assert summary["retention"][0]["n"] == 12 and summary["judge_failures"] <= summary["judged"]
    assert "## Knowledge retention" in (run_dir / "07_eval" / "report.md").read_text()


def test_run_hashes_each_file_once(smoke_run):
    "The runner hashes every stage's inputs before it and its outputs after it, yet reads each file once (issue 22: a 14B merged model)."
    run_dir, r, _ = smoke_run
    assert r.returncode == 0, r.stdout + r.stderr
    reads = (run_dir.parent / "reads.log").read_text().splitlines()
    in_run = [line.split("\t")[0] for line in reads if line.startswith(str(run_dir.resolve()) + os.sep)]
    model_json = str((run_dir / "00_core" / "model.json").resolve())
    assert model_json in in_run  # hashed as 00's output and as an input of every stage reading 00: read once all the same
    twice = {p: in_run.count(p) for p in set(in_run) if in_run.count(p) > 1}
    assert not twice, twice
    outputs = {str((run_dir / s.slug / f).resolve()) for s in STAGES for f in json.loads((run_dir / "manifest.json").read_text())["stages"][s.id]["outputs"]}
    assert outputs <= set(in_run), outputs - set(in_run)


def test_run_seed_reaches_stage_07(smoke_run):
    "Stage 07 samples its retention items with its own config's seed: they are the run seed's sample (a lesson cell once set seed=2)."
    from creativity_llm.multiple_choice import retention_items
    run_dir, r, _ = smoke_run
    assert r.returncode == 0, r.stdout + r.stderr
    want = lambda seed: [i.id for i in retention_items("samples", "en", 12, seed)]
    assert want(0) != want(2)
    assert stage07_item_ids(run_dir) == want(0)


def _compare_runs():
    import importlib.util
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "bench" / "compare_runs.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_compare_runs_names_what_differs(tmp_path):
    cr = _compare_runs()
    for d, text in (("a", "1"), ("b", "2")):
        (tmp_path / d / "01_synthesis").mkdir(parents=True)
        (tmp_path / d / "01_synthesis" / "stats.json").write_text("{}")
        (tmp_path / d / "01_synthesis" / "pairs.jsonl").write_text(text)
        (tmp_path / d / "manifest.json").write_text(text)
    (tmp_path / "b" / "extra.txt").write_text("x")
    res = cr.compare(tmp_path / "a", tmp_path / "b")
    assert res["same"] == ["01_synthesis/stats.json"] and res["differ"] == ["01_synthesis/pairs.jsonl"] and res["only_b"] == ["extra.txt"]
    assert set(res["skipped"]) == {"manifest.json"}
    assert cr.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1 and cr.main([str(tmp_path / "a"), str(tmp_path / "a")]) == 0


def test_compare_runs_ignores_a_named_field_only(tmp_path):
    "Between two commits the training fingerprints differ by design; --ignore-field fingerprint forgives exactly that field."
    import pyarrow as pa, pyarrow.parquet as pq
    cr = _compare_runs()
    for d, fp, loss in (("a", "f1", 1.0), ("b", "f2", 1.0), ("c", "f2", 2.0)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "card.json").write_text(json.dumps({"id": "x", "fingerprint": fp, "nested": [{"fingerprint": fp}]}))
        pq.write_table(pa.Table.from_pylist([{"id": "x", "fingerprint": fp, "loss": loss}]), tmp_path / d / "experts.parquet")
    a, b, c = (str(tmp_path / d) for d in "abc")
    assert cr.main([a, b]) == 1 and cr.main([a, b, "--ignore-field", "fingerprint"]) == 0
    assert cr.main([a, c, "--ignore-field", "fingerprint"]) == 1  # the loss differs too: never hidden
    assert cr.equal_apart_from(tmp_path / "a" / "card.json", tmp_path / "b" / "card.json", {"fingerprint"})


def test_two_runs_are_byte_identical(smoke_run, second_smoke_run):
    "A second smoke run in another directory (and process) writes the same bytes, outside bench/compare_runs.py's skip list."
    run_a, run_b = smoke_run[0], second_smoke_run[0]
    assert run_a != run_b
    res = _compare_runs().compare(run_a, run_b)
    assert not (res["differ"] or res["only_a"] or res["only_b"]), res
    assert len(res["same"]) > 20


def test_rerun_skipped_then_seed_change_reruns(smoke_run, tmp_path):
    from creativity_llm.multiple_choice import retention_items
    run_dir = copy_run(smoke_run, tmp_path / "run")
    r2 = cli("run", "--preset", "smoke", "--run-dir", run_dir)
    assert r2.returncode == 0 and "[00_core] skipped: up to date" in r2.stdout
    # the first stage and the last (what a seed change reaches is the same rule for every stage: its parameters' hash)
    r3 = cli("run", "--preset", "smoke", "--run-dir", run_dir, "-p", "seed=1", "--stages", "00,07")
    assert r3.returncode == 0, r3.stdout + r3.stderr
    assert "[00_core] running (parameters changed)" in r3.stdout and "[07_eval] running (parameters changed)" in r3.stdout
    actions = [h["action"] for h in json.loads((run_dir / "manifest.json").read_text())["stages"]["00"]["history"]]
    assert actions == ["started", "ran", "skipped", "started", "ran"]
    assert stage07_item_ids(run_dir) == [i.id for i in retention_items("samples", "en", 12, 1)]


@pytest.mark.parametrize("args, message", [
    (["-p", "sede=1"], "unknown config key 'sede'"),
    (["-p", "seed=one"], "config key 'seed' must be int"),
    (["-p", "trust_remote_code=maybe"], "config key 'trust_remote_code' must be bool"),
    (["-p", "model=/no/such/model"], "config key 'model': model '/no/such/model': no such file or directory"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--stages", "42"], "unknown stage '42'"),
])
def test_bad_config_is_one_line_and_touches_nothing(tmp_path, args, message):
    run_dir = tmp_path / "run"
    fresh = cli("run", "--preset", "smoke", "--run-dir", run_dir, *args)
    assert fresh.returncode == 2
    assert fresh.stderr.strip().count("\n") == 0 and message in fresh.stderr, fresh.stderr
    assert not run_dir.exists()


def test_bad_config_leaves_existing_run_untouched(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text('{"run": {}, "meta": {}, "stages": {}}\n')
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    (tmp_path / "bad.yaml").write_text("temprature: 0.5\n")
    r = cli("run", "--preset", "smoke", "--run-dir", run_dir, "--config", tmp_path / "bad.yaml")
    assert r.returncode == 2 and "did you mean 'temperature'" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_kill9_mid_stage_then_resume(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_toy_notebook(nbs / "00_core.ipynb", (
        "from pathlib import Path\nfrom creativity_llm.core import write_json\n"
        "write_json(Path(run_dir) / '00_core' / 'a.json', {'seed': seed})"))
    # stage 01 opens its output under a temporary name, then blocks until killed
    write_toy_notebook(nbs / "01_synthesis.ipynb", (
        "import time\nfrom pathlib import Path\nfrom creativity_llm.core import atomic_path, stage_dir\n"
        "with atomic_path(stage_dir(run_dir, '01') / 'b.txt') as tmp:\n"
        "    tmp.write_text('half written')\n"
        "    if not (Path(run_dir) / 'resume-ok').exists(): time.sleep(600)\n"
        "    tmp.write_text('complete')"))
    run_dir = tmp_path / "run"
    args = [CLI, "run", "--preset", "smoke", "--run-dir", str(run_dir), "--nbs", str(nbs)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while not list((run_dir / "01_synthesis").glob(".b.txt.*")):
        assert time.time() < deadline and proc.poll() is None, "stage 01 never started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, as a scheduler would
    proc.wait()

    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["stages"]["00"]["status"] == "done" and m["stages"]["01"]["status"] == "running"
    assert not (run_dir / "01_synthesis" / "b.txt").exists(), "a half-written file never has its final name"

    (run_dir / "resume-ok").touch()
    r = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[00_core] skipped: up to date" in r.stdout
    assert "[01_synthesis] running (last run running)" in r.stdout
    m = json.loads((run_dir / "manifest.json").read_text())
    assert [h["action"] for h in m["stages"]["00"]["history"]] == ["started", "ran", "skipped"]
    assert m["stages"]["01"]["status"] == "done" and (run_dir / "01_synthesis" / "b.txt").read_text() == "complete"
    assert set(m["stages"]["01"]["outputs"]) == {"b.txt"}, "the killed run's temporary file is not an output"
    assert not list((run_dir / "01_synthesis").glob(".b.txt.*")), "and it was cleaned up when the stage re-ran"


def test_failing_stage_names_cell_and_error(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_toy_notebook(nbs / "00_core.ipynb", "raise ValueError('data.jsonl line 3, field text: empty')")
    r = cli("run", "--preset", "smoke", "--run-dir", tmp_path / "run", "--nbs", nbs)
    assert r.returncode == 1
    assert "stage 00_core failed in cell 3 (`raise ValueError('data.jsonl line 3, field text: empty')`): ValueError: data.jsonl line 3, field text: empty" in r.stderr, r.stderr
    assert (tmp_path / "run" / "notebooks" / "00_core.ipynb").is_file()


def test_second_runner_on_same_dir_is_refused(tmp_path):
    from creativity_llm.core import run_lock
    with run_lock(tmp_path / "run"):
        r = cli("run", "--preset", "smoke", "--run-dir", tmp_path / "run")
    assert r.returncode == 2 and "another process is running stages" in r.stderr


def test_single_stage_with_plain_papermill(tmp_path):
    out = tmp_path / "out.ipynb"
    r = subprocess.run([str(Path(sys.executable).parent / "papermill"), str(ROOT / "nbs" / "00_core.ipynb"), str(out),
                        "-k", "python3", "--cwd", str(ROOT / "nbs"), "-p", "run_dir", str(tmp_path / "run"),
                        "-p", "model", "micro:llama", "-p", "max_new_tokens", "8"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((tmp_path / "run" / "00_core" / "model.json").read_text())
    assert info["spec"] == "micro:llama" and info["parameters"] > 0


def _bad_row_file(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "title": "t", "text": "x", "lang": "en", "domain": "d", "source": "s", "license": "l"}\n{"id": "b", "title": "t"}\n')
    return path


@pytest.mark.parametrize("override, message", [
    ("synth_sources=/missing.jsonl", "config key 'synth_sources': /missing.jsonl: no such file"),
    ("synth_sources=BADROWS", "config key 'synth_sources': BADROWS:2: field"),
    ("eval_mc_en=/missing.jsonl", "config key 'eval_mc_en': eval_mc_en='/missing.jsonl': no such file"),
    ("eval_mc_ja=arc-easy", "config key 'eval_mc_ja': eval_mc_ja='arc-easy' is a en set"),
    ("score_reference=/missing.jsonl", "config key 'score_reference': /missing.jsonl: no such reference corpus"),
    ("graft_bands=3:rest", "config key 'graft_bands': bands '3:rest': 3 bits"),
    ("lora_deepspeed=/missing.json", "config key 'lora_deepspeed': /missing.json: not found"),
    ("lora_report_to=tensorboard,wandbb", "config key 'lora_report_to'"),
    ("lora_report_to=wandb", "loggers that are installed (pip install wandb)"),
    ("teacher_url=localhost:8000", "config key 'teacher_url' must be an http:// or https:// base URL"),
    ("judge_url=http://", "config key 'judge_url' must be an http:// or https:// base URL"),
    ("teacher_model=/no/such/teacher", "config key 'teacher_model': model '/no/such/teacher': no such file"),
    ("judge_model=/no/such/judge", "config key 'judge_model': model '/no/such/judge': no such file"),
])
def test_bad_value_stops_before_stage_00(tmp_path, capsys, monkeypatch, override, message):
    "Each value that names something outside the configuration is checked at once: exit 2, one line, no run directory, no model loaded."
    from creativity_llm import models, pipeline
    bad = str(_bad_row_file(tmp_path))
    override, message = override.replace("BADROWS", bad), message.replace("BADROWS", bad)
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded before the configuration was checked"))
    run_dir = tmp_path / "run"
    assert pipeline.main(["run", "--preset", "smoke", "--run-dir", str(run_dir), "-p", override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not run_dir.exists()
