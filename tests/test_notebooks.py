"""Rules every notebook follows (see CONVENTIONS): parameters cells agree with the tiny preset, headers, clean outputs."""
import ast, itertools
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from conftest import ROOT
from creativity_llm.core import STAGES
from creativity_llm.pipeline import RunConfig, parameter_line, parameters_cell_problems, resolve_config

STAGE_NBS = [ROOT / "nbs" / f"{s.slug}.ipynb" for s in STAGES if (ROOT / "nbs" / f"{s.slug}.ipynb").exists()]
ALL_NBS = sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb_path", STAGE_NBS, ids=lambda p: p.stem)
def test_stage_parameters_match_tiny_preset(nb_path):
    params = pm.inspect_notebook(str(nb_path))
    assert "run_dir" in params, "every stage takes run_dir"
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = [l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert len(params) == len(lines), f"{nb_path.name}: papermill reads {len(params)} of {len(lines)} parameters (an '=' in a comment breaks its parser)"
    tiny = resolve_config("tiny").to_dict()
    for name, p in params.items():
        if name == "run_dir": continue
        assert name in tiny, f"{nb_path.name}: parameter '{name}' is not a RunConfig field"
        assert ast.literal_eval(p["default"]) == tiny[name], f"{nb_path.name}: '{name}' default differs from the tiny preset"
        assert p["help"], f"{nb_path.name}: '{name}' has no comment"


@pytest.mark.parametrize("nb_path", ALL_NBS, ids=lambda p: p.stem)
def test_notebook_header_and_clean(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert nb.cells[1].source.startswith("#| default_exp ")
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks cleaned"
    assert nb_path.stat().st_size < 500_000
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) <= 1


@pytest.mark.parametrize("nb_path", STAGE_NBS, ids=lambda p: p.stem)
def test_parameters_cell_is_rendered_from_the_owning_fields(nb_path):
    "Each default and comment of a parameters cell is the owning field's: one source of defaults and help texts."
    assert parameters_cell_problems(nb_path) == []


def test_parameters_check_catches_a_drifted_line(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join(['run_dir: str = "x"  # anything', parameter_line("seed"), "lora_r: int = 16  # LoRA rank",
                                                     parameter_line("top_p").replace("nucleus", "the nucleus"), "lora_rank: int = 8  # typo"]),
                                          metadata={"tags": ["parameters"]})]
    nbformat.write(nb, tmp_path / "t.ipynb")
    problems = parameters_cell_problems(tmp_path / "t.ipynb")
    assert len(problems) == 3 and "lora_r: int = 16" in problems[0] and "the nucleus" in problems[1] and "'lora_rank' is no key of the configuration" in problems[2]


def test_parameters_check_compares_the_set_of_names(tmp_path):
    "A stage notebook's parameters cell lists exactly the keys its stage declares: a missing one and a foreign one are both named."
    from creativity_llm.core import STAGE_BY_ID
    from creativity_llm.pipeline import parameters_cell
    lines = parameters_cell(STAGE_BY_ID["04"]).splitlines()
    cell = "\n".join([l for l in lines if not l.startswith("score_filter_qa")] + [parameter_line("lora_r")])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell, metadata={"tags": ["parameters"]})]
    nbformat.write(nb, tmp_path / "04_scoring.ipynb")
    assert parameters_cell_problems(tmp_path / "04_scoring.ipynb") == [
        "04_scoring.ipynb: 'lora_r' is no key stage 04_scoring declares",
        "04_scoring.ipynb: the parameters cell lacks 'score_filter_qa', which stage 04_scoring declares"]


def test_presets_are_valid():
    for name in ("smoke", "tiny", "tiny-ja", "h100"):
        assert resolve_config(name).preset == name
    assert resolve_config("tiny") == RunConfig()


def test_tiny_preset_lists_every_key():
    "configs/tiny.yaml is the one file where a user reads the whole configuration: a new knob adds a line there too."
    import yaml
    listed = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    assert set(listed) == set(RunConfig.field_names()) - {"preset", "run_id"}  # the preset's name is the file's; run_id defaults to it


def test_deepspeed_config_is_zero2_bf16():
    import json
    ds = json.loads((ROOT / "configs" / "deepspeed_zero2_bf16.json").read_text())
    assert ds["zero_optimization"]["stage"] == 2 and "bf16" in ds


def _module_level_names(tree: ast.Module):
    "Names a cell binds in the notebook's namespace: assignments, loop and `with` targets, imports, defs; not those inside functions or comprehensions."
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): yield child.name, child.lineno
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for a in child.names: yield (a.asname or a.name).split(".")[0], child.lineno
            elif isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)): yield child.id, child.lineno
            if not isinstance(child, scopes): yield from walk(child)
    yield from walk(tree)


def _cell_tree(source: str) -> ast.Module:
    return ast.parse("\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in source.splitlines()))


def parameter_reassignments(nb_path) -> list[str]:
    "Every executed cell after the parameters cell that binds a configuration field's name (or `cfg`) at module level."
    nb = nbformat.read(nb_path, as_version=4)
    guarded = set(RunConfig.field_names()) | {"run_dir"}
    found, config_cells = [], 0
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or "parameters" in c.metadata.get("tags", []): continue
        for name, line in _module_level_names(_cell_tree(c.source)):
            if name == "cfg" and "stage_config(" in c.source and "globals())" in c.source and config_cells == 0: config_cells = 1; continue
            if name in guarded or name == "cfg": found.append(f"{nb_path.name} cell {i} line {line}: assigns '{name}'")
    return found


def test_parameter_check_catches_a_lesson_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("seed: int = 0", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('cfg = stage_config("00", globals())'),
                nbformat.v4.new_code_cell("x = [seed for seed in range(3)]\ndef f(seed): return seed"),  # local scopes: fine
                nbformat.v4.new_code_cell("for mode, seed in ((1, 2),): pass\nimport os as model\nwith open('x') as device: pass"),
                nbformat.v4.new_code_cell("cfg = None")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    assert [f.split(": ")[1] for f in parameter_reassignments(tmp_path / "t.ipynb")] == [
        "assigns 'seed'", "assigns 'model'", "assigns 'device'", "assigns 'cfg'"]


@pytest.mark.parametrize("nb_path", STAGE_NBS, ids=lambda p: p.stem)
def test_config_built_after_parameters_and_never_reassigned(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    want = f'cfg = stage_config("{nb_path.stem.split("_")[0]}", globals())'
    assert want in nb.cells[i + 1].source, "the cell after the parameters builds cfg, the stage's declared view"
    assert parameter_reassignments(nb_path) == []


def test_a_notebook_is_a_stage_if_and_only_if_it_is_registered():
    "A notebook with a parameters cell is a registered stage's; lettered library notebooks (00a_models, …) have none."
    with_params = {p.stem for p in ALL_NBS if any("parameters" in c.metadata.get("tags", []) for c in nbformat.read(p, as_version=4).cells)}
    assert with_params == {s.slug for s in STAGES}


def test_the_index_stage_table_counts_the_registry():
    "README's stage table (from nbs/index.ipynb) has one row per registered stage, in registry order."
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| stage | notebook | reads | writes |") + 2
    rows = list(itertools.takewhile(lambda l: l.startswith("| "), lines[start:]))
    assert [(r.split("|")[1].strip(), r.split("`")[1]) for r in rows] == [(s.id, s.slug) for s in STAGES]
