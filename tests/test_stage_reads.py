"""A stage reads only what it declares (issue 33): configuration keys (its class's fields and its contract's `uses`) and the folders of the
stages it `reads`. Checked three ways: statically over each stage module's source, at run time by the declared view (through the runner
and through plain papermill), and by the runner's input hashes (a stage re-runs when what it reads changes)."""
import ast, json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

from conftest import CLI, ROOT, cli
from creativity_llm.core import ENGINE_KEYS, STAGE_BY_ID, STAGES, UndeclaredRead, reading_as

PKG = ROOT / "creativity_llm"
# reads in a stage's module on code paths that stage never runs, each with its reason (reviewed: keep it short)
ALLOWED = {"00": {k: "generate.engine_generator serves stages 02, 03 and 07, which declare the engine keys" for k in ENGINE_KEYS}}


def config_reads(source: str) -> dict[str, int]:
    "Each `cfg.<key>` read (first line) in the functions whose `cfg` is a run configuration: a parameter `cfg`, unannotated or a `RunConfig`."
    found = {}
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)): continue
        a = fn.args
        param = next((p for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg == "cfg"), None)
        if param is None or (param.annotation is not None and ast.unparse(param.annotation).strip("'\"") != "RunConfig"): continue
        for n in ast.walk(fn):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "cfg" and n.attr not in ("to_dict", "field_names"):
                found[n.attr] = min(found.get(n.attr, n.lineno), n.lineno)
    return found


def undeclared_reads(stage, source: str) -> list[str]:
    declared, allowed = set(stage.keys), ALLOWED.get(stage.id, {})
    return [f"{stage.module}:{line}: cfg.{k}" for k, line in sorted(config_reads(source).items(), key=lambda kv: kv[1]) if k not in declared and k not in allowed]


def _source(stage) -> str:
    return (PKG / f"{stage.module.split('.')[-1]}.py").read_text()


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.slug)
def test_stage_modules_read_only_declared_keys(stage):
    assert undeclared_reads(stage, _source(stage)) == []


def test_the_static_check_catches_a_planted_read():
    "A function of stage 05's module reading stage 07's `eval_dtype` (a key 05 does not declare) is named with its line."
    planted = _source(STAGE_BY_ID["05"]) + "\n\ndef peek(cfg: RunConfig):\n    return cfg.eval_dtype, cfg.lora_r\n"
    line = planted.count("\n")  # the last line
    assert undeclared_reads(STAGE_BY_ID["05"], planted) == [f"creativity_llm.lora:{line}: cfg.eval_dtype"]


def test_the_allow_list_is_for_keys_stages_do_declare():
    "Each allowed read is a key some other stage declares: the list excuses a shared library's path, never a key nobody owns."
    for sid, keys in ALLOWED.items():
        assert all(any(k in s.keys for s in STAGES if s.id != sid) for k in keys)


def test_folders_read_are_declared(tmp_path):
    "While a stage runs, the folder of a stage it does not read is refused; 07 reads 03 (its reference pool takes 03's team pairs)."
    from creativity_llm.scoring import pairs_to_score
    (tmp_path / "01_synthesis").mkdir(); (tmp_path / "01_synthesis" / "seed_pairs.parquet").touch()
    assert "03" in STAGE_BY_ID["07"].reads
    with reading_as(STAGE_BY_ID["07"]): pairs_to_score(tmp_path)
    with reading_as(STAGE_BY_ID["02"]), pytest.raises(UndeclaredRead, match="stage 02_experts reads the folder of stage 03_qubo"): pairs_to_score(tmp_path)


# ---- a stage of another package: registered by an entry point, declared in one place, evaluated by stage 07

TOY_MODULE = '''
from dataclasses import dataclass
from creativity_llm.core import LOCAL_MODEL_KEYS, OfferedModel, StageConfig, StageContract, knob, stage_dir, write_json

@dataclass
class ToyConfig(StageConfig):
    toy_scale: float = knob("scale of the toy adapter's weights", 0.5)
    toy_peek: str = knob("a configuration key the toy stage reads without declaring it (empty: none)", "")

def run_toy(cfg, run_dir, log=print):
    import torch
    from peft import LoraConfig, get_peft_model
    from creativity_llm.models import load_model
    if cfg.toy_peek: getattr(cfg, cfg.toy_peek)
    model, _ = load_model(cfg.model, device="cpu", seed=cfg.seed)
    adapter = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.no_grad():
        for n, p in adapter.named_parameters():
            if "lora_" in n: p.copy_(torch.randn(p.shape, generator=g) * cfg.toy_scale)
    adapter.save_pretrained(stage_dir(run_dir, "05a") / "adapter")
    write_json(stage_dir(run_dir, "05a") / "stats.json", {"scale": cfg.toy_scale})
    return {"scale": cfg.toy_scale}

def toy_models(run_dir):
    return {"toy": OfferedModel(stage_dir(run_dir, "05a") / "adapter", "tuned")}

CONTRACT = StageContract(config=ToyConfig, outputs=("adapter", "stats.json"), run=run_toy, metrics=lambda r: r, uses=LOCAL_MODEL_KEYS,
                         models=toy_models, planned_models=lambda cfg: {"tuned": 1},
                         plan=lambda cfg, counts: {"prompts": 0, "prompt_tokens": 0, "generated_tokens": 0, "trained_tokens": 4321})
'''


@pytest.fixture(scope="module")
def toy_stage(tmp_path_factory):
    "A stage 05a from a package of its own: a module, a notebook and an entry point; the environment that installs it (PYTHONPATH)."
    import nbformat
    site = tmp_path_factory.mktemp("toy_site")
    (site / "toy_stage.py").write_text(TOY_MODULE)
    nb_path = site / "05a_toy.ipynb"
    (site / "toy_stage_registry.py").write_text(f"STAGE = dict(id='05a', name='toy', reads=['00', '04'], module='toy_stage', offers_models=True, notebook={str(nb_path)!r})\n")
    dist = site / "toy_stage-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-stage\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[creativity_llm.stages]\ntoy = toy_stage_registry:STAGE\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep), "PYTHONWARNINGS": "ignore"}
    render = "from creativity_llm.core import STAGE_BY_ID; from creativity_llm.pipeline import parameters_cell; print(parameters_cell(STAGE_BY_ID['05a']))"
    cell = subprocess.run([sys.executable, "-c", render], env=env, capture_output=True, text=True, check=True).stdout.strip()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# toy\n\n> A stage of another package."),
                nbformat.v4.new_code_cell(cell, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('from creativity_llm.pipeline import stage_config\ncfg = stage_config("05a", globals())'),
                nbformat.v4.new_code_cell('from creativity_llm.core import STAGE_BY_ID\nSTAGE_BY_ID["05a"].run_and_record(cfg, run_dir)')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, nb_path)
    return env, nb_path


def _toy_cli(env, *args):
    return subprocess.run([CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_a_registered_stage_is_planned_run_and_evaluated(smoke_run, toy_stage, tmp_path):
    env, _ = toy_stage
    from conftest import copy_run
    run_dir = copy_run(smoke_run, tmp_path / "run")
    r = _toy_cli(env, "stages")
    assert r.returncode == 0 and "05a_toy" in r.stdout and "reads 00,04 " in r.stdout, r.stdout + r.stderr
    r = _toy_cli(env, "plan", "--preset", "smoke")
    assert r.returncode == 0, r.stderr
    assert any(l.split()[:2] == ["05a", "0"] and "4,321" in l for l in r.stdout.splitlines()), r.stdout  # its row of the stage table
    r = _toy_cli(env, "run", "--preset", "smoke", "--run-dir", run_dir)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[05a_toy] running (never ran)" in r.stdout and "[06_graft] skipped: up to date" in r.stdout
    assert "[07_eval] running (inputs changed)" in r.stdout  # 07 reads every stage that offers it models
    summary = json.loads((run_dir / "07_eval" / "summary.json").read_text())
    assert summary["models"] == ["base", "toy"] and {r["model"] for r in summary["retention"]} == {"base", "toy"}
    r = _toy_cli(env, "run", "--preset", "smoke", "--run-dir", run_dir, "-p", "toy_scale=0.25", "--stages", "05-07")  # 05a is in 05-07
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[05a_toy] running (parameters changed)" in r.stdout and "[07_eval] running (inputs changed)" in r.stdout
    assert "[05_lora] skipped: up to date" in r.stdout


def test_an_undeclared_read_fails_through_the_runner_and_plain_papermill(smoke_run, toy_stage, tmp_path):
    env, nb_path = toy_stage
    from conftest import copy_run
    run_dir = copy_run(smoke_run, tmp_path / "run")
    r = _toy_cli(env, "run", "--preset", "smoke", "--run-dir", run_dir, "--stages", "05a", "-p", "toy_peek=lora_r")
    assert r.returncode == 1
    assert "stage 05a_toy failed in cell" in r.stderr and "UndeclaredRead: stage 05a_toy reads config key 'lora_r', which it does not declare" in r.stderr, r.stderr
    r = subprocess.run([str(Path(sys.executable).parent / "papermill"), str(nb_path), str(tmp_path / "out.ipynb"), "-k", "python3",
                        "-p", "run_dir", str(run_dir), "-p", "model", "micro:llama", "-p", "toy_peek", "lora_r"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0 and "stage 05a_toy reads config key 'lora_r', which it does not declare" in r.stderr, r.stderr[-3000:]


def test_stage_00_declares_the_teacher_dtype(smoke_run, tmp_path):
    "Stage 00 loads a local teacher at `teacher_dtype`: a change of it re-runs the stage, and model.json says what was loaded."
    from conftest import copy_run
    run_dir = copy_run(smoke_run, tmp_path / "run")
    r = cli("run", "--preset", "smoke", "--run-dir", run_dir, "--stages", "00", "-p", "teacher_model=micro:llama", "-p", "teacher_dtype=bfloat16")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[00_core] running (parameters changed)" in r.stdout
    assert json.loads((run_dir / "00_core" / "model.json").read_text())["teacher"] == {"spec": "micro:llama", "url": "", "dtype": "bfloat16"}
    m = json.loads((run_dir / "manifest.json").read_text())["stages"]["00"]
    assert m["params"]["teacher_dtype"] == "bfloat16" and "lora_r" not in m["params"]  # the declared keys, hashed


def test_stage_07_reruns_when_stage_03s_team_pairs_change(smoke_run, tmp_path):
    "07's reference pool takes 03's team pairs: new team pairs (as if 03 had re-run and written them) re-run 07."
    from conftest import copy_run
    from creativity_llm.core import Manifest, dir_files_sha256
    run_dir = copy_run(smoke_run, tmp_path / "run")
    shutil.copy(run_dir / "01_synthesis" / "seed_pairs.parquet", run_dir / "03_qubo" / "team_pairs.parquet")
    with Manifest(run_dir).edit() as m: m["stages"]["03"]["outputs"] = dir_files_sha256(run_dir / "03_qubo")
    r = cli("run", "--preset", "smoke", "--run-dir", run_dir, "--stages", "07")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[07_eval] running (inputs changed)" in r.stdout


# ---- engine settings derived from the stage classes that own the knobs

@pytest.mark.parametrize("module, first_field, settings, name", [
    ("training", "    lora_modes: str = knob(", "LoraSettings", "lora_probe_knob"),
    ("graft", "    graft_source: str = knob(", "SkillPackConfig", "graft_probe_knob"),
    ("scorer", "    score_w_fluency: float = knob(", "ScorerConfig", "score_probe_knob"),
])
def test_a_knob_added_to_a_stage_class_reaches_its_engine_settings(module, first_field, settings, name):
    "The module's source with one field added to the stage class, and nothing else: the engine's settings class has it, default, help and check."
    import types
    from dataclasses import fields
    src = (PKG / f"{module}.py").read_text()
    assert src.count(first_field) == 1
    src = src.replace(first_field, f"    {name}: int = knob('a knob added by a test', 7)\n{first_field}")
    mod = types.ModuleType(f"creativity_llm._probe_{module}")
    mod.__package__, mod.__file__ = "creativity_llm", str(PKG / f"{module}.py")
    sys.modules[mod.__name__] = mod  # dataclasses resolve string annotations through the module
    try:
        exec(compile(src, mod.__file__, "exec"), mod.__dict__)
        cls, short = getattr(mod, settings), name.split("_", 1)[1]
        f = {f.name: f for f in fields(cls)}[short]
        assert f.default == 7 and f.metadata["help"] == "a knob added by a test"
        assert getattr(cls(), short) == 7 and cls.settings_keys[short] == name
        with pytest.raises(Exception, match=f"config key '{name}' must be int"): cls(**{short: "seven"})
    finally:
        del sys.modules[mod.__name__]
