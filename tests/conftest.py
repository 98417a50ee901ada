import os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "creativity-llm")


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords: item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _hash_cache(tmp_path_factory):
    "Digests remembered by the tests' processes go to a folder of the session, not the user's cache."
    os.environ.setdefault("CREATIVITY_LLM_HASH_CACHE", str(tmp_path_factory.mktemp("file_hashes")))


def cli(*args, cwd=None, timeout=300, **kw) -> subprocess.CompletedProcess:
    "Run the `creativity-llm` command and capture its output."
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([CLI, *map(str, args)], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def write_toy_notebook(path: Path, body: str):
    "A stage notebook with a parameters cell (`run_dir`, `seed`) and one code cell."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("run_dir = 'x'\nseed = 0", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, path)
