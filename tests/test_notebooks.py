"""Rules every notebook follows (see CONVENTIONS): parameters cells agree with the tiny preset, headers, clean outputs."""
import ast
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from conftest import ROOT
from creativity_llm.core import STAGES, RunConfig, resolve_config

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


def test_presets_are_valid():
    for name in ("smoke", "tiny", "tiny-ja", "h100"):
        assert resolve_config(name).preset == name
    assert resolve_config("tiny") == RunConfig()


def test_deepspeed_config_is_zero2_bf16():
    import json
    ds = json.loads((ROOT / "configs" / "deepspeed_zero2_bf16.json").read_text())
    assert ds["zero_optimization"]["stage"] == 2 and "bf16" in ds
