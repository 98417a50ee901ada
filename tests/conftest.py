import json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "creativity-llm")


if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on the machine's cores: one thread each (and in every process they start), not two that fight
    os.environ.setdefault("OMP_NUM_THREADS", "1"); os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords: item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    "Figures the tests measured (`record_property`), printed before the summary line: speed is read, never asserted (bench/ checks goals)."
    figures = [f"{k} {v}" for reps in terminalreporter.stats.values() for r in reps for k, v in getattr(r, "user_properties", ()) if k.startswith("figure:")]
    if figures: terminalreporter.write_line("measured: " + "; ".join(sorted(set(f.removeprefix("figure:") for f in figures))))


@pytest.fixture(autouse=True, scope="session")
def _hash_cache(tmp_path_factory):
    "Digests remembered by the tests' processes go to a folder of the session, not the user's cache."
    os.environ.setdefault("CREATIVITY_LLM_HASH_CACHE", str(tmp_path_factory.mktemp("file_hashes")))


def _shared_tmp(tmp_path_factory) -> Path:
    "The session's temporary folder, which pytest-xdist's workers share (each has a base folder of its own inside it)."
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _smoke(folder: Path):
    """The smoke run in `folder`, made by the first process to ask for it (under a file lock; the others wait and read its result).
    The runner logs each file it hashes, in a cache of the run's own, beside it."""
    import fcntl, time
    run_dir, done = folder / "smoke", folder / "result.json"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            t0 = time.perf_counter()
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("CREATIVITY_LLM_HASH_CACHE", str(folder / "cache")); mp.setenv("CREATIVITY_LLM_HASH_LOG", str(folder / "reads.log"))
                mp.setenv("CREATIVITY_LLM_RACY_WINDOW_NS", "0")  # a file written just before the runner hashes it is remembered all the same: no timing in the test
                r = cli("run", "--preset", "smoke", "--run-dir", run_dir, warnings=True)  # as a user runs it: what the terminal shows is tested
            done.write_text(json.dumps({"returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr, "wall": time.perf_counter() - t0}))
    res = json.loads(done.read_text())
    r = subprocess.CompletedProcess(["creativity-llm", "run", "--preset", "smoke"], res["returncode"], res["stdout"], res["stderr"])
    assert r.returncode == 0, r.stdout + r.stderr
    return run_dir, r, res["wall"]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One smoke run (seed 0) per worker, shared by every test of that worker that needs a finished pipeline: (run_dir, the command's
    result, wall seconds). A test that changes a run works on a copy (`copy_run`)."""
    return _smoke(_shared_tmp(tmp_path_factory) / f"smoke-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")


@pytest.fixture
def second_smoke_run(smoke_run, tmp_path_factory):
    "Another smoke run of the same command in another folder and process: another worker's (waiting for it), else one made now."
    shared, mine = _shared_tmp(tmp_path_factory), smoke_run[0].parent
    others = sorted(p for p in shared.glob("smoke-*") if p != mine and p.is_dir())
    return _smoke(others[0] if others else shared / "smoke-second")


def copy_run(smoke_run, dest: Path) -> Path:
    "A copy of the shared smoke run at `dest`, to change without touching the others' run."
    import shutil
    shutil.copytree(smoke_run[0], dest, ignore=shutil.ignore_patterns(".run.lock", ".manifest.lock"))
    return dest


def cli(*args, cwd=None, timeout=300, warnings: bool = False, **kw) -> subprocess.CompletedProcess:
    "Run the `creativity-llm` command and capture its output (Python's warnings off unless `warnings`)."
    env = {**os.environ} if warnings else {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([CLI, *map(str, args)], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def write_toy_notebook(path: Path, body: str):
    "A stage notebook with a parameters cell (`run_dir`, `seed`) and one code cell."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("run_dir = 'x'\nseed = 0", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, path)
