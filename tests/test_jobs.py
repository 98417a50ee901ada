"""The job scripts (issue 23): shellcheck-clean, so that a typo fails here and not after a day in a cluster queue."""
import glob, subprocess, sys
from pathlib import Path

from conftest import ROOT


def test_job_scripts_pass_shellcheck():
    scripts = sorted(glob.glob(str(ROOT / "jobs" / "*.sh")) + glob.glob(str(ROOT / "jobs" / "*.sbatch")))
    assert len(scripts) >= 8
    r = subprocess.run([str(Path(sys.executable).parent / "shellcheck"), "--external-sources", *scripts], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _dry(script: str, **env) -> str:
    import os
    r = subprocess.run(["bash", str(ROOT / "jobs" / script)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "DRY_RUN": "1", "BASE_MODEL": "/models/base", "RUN_DIR": "runs/h100", **env})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_array_tasks_dry_run_for_a_60_expert_bank():
    "Tasks 0, 1 and the last of a 60-expert array train experts 0, 1 and 59; SLURM's srun is given the CPUs explicitly."
    slurm = [_dry("slurm_array.sbatch", SLURM_ARRAY_TASK_ID=str(t), SLURM_SUBMIT_DIR=str(ROOT), SLURM_CPUS_PER_TASK="8") for t in (0, 1, 59)]
    tsubame = [_dry("tsubame_array.sh", SGE_TASK_ID=str(t)) for t in (1, 2, 60)]  # Grid Engine counts from 1
    for k, (s, t) in zip((0, 1, 59), zip(slurm, tsubame)):
        assert s == f"srun --cpus-per-task=8 creativity-llm experts --run-dir runs/h100 --preset h100 --expert {k} -p model=/models/base"
        assert t == f"creativity-llm experts --run-dir runs/h100 --preset h100 --expert {k} -p model=/models/base"
