"""Imports point down: every module of the package sits in a layer, and imports only modules of lower layers, never another module's
private names. The map is written here, once (notebooks are never renumbered, so their numbers cannot say it); index.ipynb explains it."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT
from creativity_llm.core import STAGES

PKG = ROOT / "creativity_llm"
LIBRARY = {
    "core": 0,                      # configuration base, registry, atomic writes, hashes, manifest
    "taxonomy": 1, "models": 1,     # the categories; loading models, adapters on one base
    "sources": 2, "generate": 2,    # source documents; chat generation (local, HTTP); generate is also stage 00's module
    "scorer": 3, "training": 3, "multiple_choice": 3, "serve": 3,  # shared machinery of several stages; the local server
    "trainer": 4,                   # the Trainer run of one adapter (torch at its top: the stages import it where they train)
    "judge": 4,                     # LLM-as-a-judge (generation + multiple-choice statistics)
    "rater": 5,                     # the LLM creativity rater: rating-token probabilities (generation backends + the judge's parser)
}
# the stages' modules, from 10 in the registry's order: a stage inserted as 05a sits between 05 and 06 with no edit here
STAGE_MODULES = [m for m in dict.fromkeys(s.module.removeprefix("creativity_llm.") for s in STAGES if s.module.startswith("creativity_llm.")) if m not in LIBRARY]
LAYERS = {**LIBRARY, **{m: 10 + i for i, m in enumerate(STAGE_MODULES)}}
LAYERS |= {"plan": max(LAYERS.values()) + 1,  # the preflight: what the stages would do and need, from their own functions, before any runs
           "pipeline": max(LAYERS.values()) + 2}  # the runner and the command: composes every stage


def test_stage_layers_follow_the_registry():
    "Each stage's module sits above every earlier stage's, in registry order; the preflight and the runner above them all."
    order = [s.module.removeprefix("creativity_llm.") for s in STAGES if s.module.removeprefix("creativity_llm.") in STAGE_MODULES]
    assert order == STAGE_MODULES and [LAYERS[m] for m in order] == list(range(10, 10 + len(order)))
    assert LAYERS["plan"] > max(LAYERS[m] for m in order) and LAYERS["pipeline"] > LAYERS["plan"]


def _type_checking_only(node) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _walk(tree):
    "ast.walk, leaving out `if TYPE_CHECKING:` blocks: imports for annotations only never run."
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [c for c in ast.iter_child_nodes(node) if not _type_checking_only(c)]


def package_imports(path: Path):
    "(line, imported module, names) for every import of a package module in `path`, at any depth (function-local ones too)."
    for node in _walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: target = mod.split(".")[0] or None
            elif node.level == 0 and mod.startswith("creativity_llm"): target = mod.split(".")[1] if "." in mod else None
            else: continue
            names = [a.name for a in node.names]
            if target is None: yield from ((node.lineno, n, []) for n in names)  # `from creativity_llm import x` / `from . import x`
            else: yield node.lineno, target, names
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("creativity_llm."): yield node.lineno, a.name.split(".")[1], []


def layer_violations(pkg: Path = PKG, layers: dict = LAYERS) -> list[str]:
    "Every import of a module of the same or a higher layer, or of another module's private name; every module missing from the map."
    found = []
    for f in sorted(pkg.glob("*.py")):
        if f.name.startswith("_"): continue
        me = f.stem
        if me not in layers: found.append(f"{f.name}: not in the layer map"); continue
        for line, target, names in package_imports(f):
            if target not in layers: found.append(f"{f.name}:{line}: imports {target}, which is not in the layer map"); continue
            if layers[target] >= layers[me]: found.append(f"{f.name}:{line}: {me} (layer {layers[me]}) imports {target} (layer {layers[target]})")
            found += [f"{f.name}:{line}: imports {target}'s private name {n}" for n in names if n.startswith("_")]
    return found


def test_imports_point_down():
    assert layer_violations() == []


def test_the_check_catches_a_backward_import(tmp_path):
    "A stage importing a later stage, a private name, a function-local import and an unmapped module: each is named."
    (tmp_path / "core.py").write_text("")
    (tmp_path / "lora.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING: from .pipeline import RunConfig\nfrom .core import _checked\n")
    (tmp_path / "experts.py").write_text("import json\nfrom .core import stage_dir\n\ndef f():\n    from creativity_llm.lora import train\n")
    (tmp_path / "extra.py").write_text("")
    found = layer_violations(tmp_path, {"core": 0, "experts": 11, "lora": 14})
    assert found == ["experts.py:5: experts (layer 11) imports lora (layer 14)", "extra.py: not in the layer map",
                     "lora.py:3: imports core's private name _checked"]


def test_function_local_package_imports_say_why():
    "A package import inside a function is allowed only with a reason on its line (start-up time, an optional dependency)."
    bare = []
    for f in sorted(PKG.glob("*.py")):
        if f.name.startswith("_"): continue
        lines = f.read_text().splitlines()
        for node in _walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node.col_offset > 0:
                mod = getattr(node, "module", None) or ""
                ours = (isinstance(node, ast.ImportFrom) and (node.level == 1 or mod.startswith("creativity_llm"))) or \
                       (isinstance(node, ast.Import) and any(a.name.startswith("creativity_llm") for a in node.names))
                if ours and "#" not in lines[node.lineno - 1]: bare.append(f"{f.name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert bare == []
