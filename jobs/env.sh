# shellcheck shell=bash
# Sourced by every job script: activate the environment, stay offline, pick caches and the repository.
# Settings (export before qsub/sbatch, or edit here):
#   CREATIVITY_LLM_REPO  the repository checkout (default: the folder above jobs/)
#   CONDA_SH             path to conda.sh, to activate CONDA_ENV (default env name: creativity-llm)
#   VENV                 or a virtualenv to activate instead of conda
#   CREATIVITY_LLM_CACHE converted-model cache (default ~/.cache/creativity_llm; put it on shared storage)
#   DRY_RUN=1            print the command a job would run, and run nothing (no environment needed)
set -euo pipefail
# run CMD...: the job's command, or under DRY_RUN=1 its words printed, quoted as a shell would need them
run() { if [ -n "${DRY_RUN:-}" ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi; }
REPO="${CREATIVITY_LLM_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
if [ -n "${DRY_RUN:-}" ]; then return 0; fi
if [ -n "${CONDA_SH:-}" ]; then
    set +u  # conda's activation scripts read unset variables: under set -u they would end the job
    # shellcheck disable=SC1090
    source "$CONDA_SH"
    conda activate "${CONDA_ENV:-creativity-llm}"
    set -u
elif [ -n "${VENV:-}" ]; then
    set +u
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    set -u
fi
# GPU nodes usually have no internet: make any accidental hub access fail fast instead of hanging.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export CREATIVITY_LLM_CACHE="${CREATIVITY_LLM_CACHE:-$HOME/.cache/creativity_llm}"
export TOKENIZERS_PARALLELISM=false
cd "$REPO"
command -v creativity-llm >/dev/null || { echo "creativity-llm is not on PATH: activate the environment (CONDA_SH or VENV)"; exit 1; }
echo "host $(hostname), repo $REPO, $(python -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.device_count(), "GPU(s)")')"
