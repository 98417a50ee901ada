#!/bin/bash
# The pipeline with its generation on vLLM on TSUBAME 4.0 (Altair Grid Engine), one full node (node_f: 4 x H100): vLLM serves the
# base on GPUs 0,1 (data-parallel 2; the experts and tuned adapters loaded by name as they appear), the pipeline uses GPUs 2,3.
# The base is also the teacher unless TEACHER_URL and TEACHER_MODEL name another server (jobs/tsubame_teacher.sh).
#   qsub -g YOUR_GROUP -v BASE_MODEL=/gs/fs/YOUR_GROUP/models/base,CONDA_SH=$HOME/miniconda3/etc/profile.d/conda.sh jobs/tsubame_engine.sh
#$ -cwd
#$ -N creativity-llm-engine
#$ -l node_f=1
#$ -l h_rt=24:00:00
#$ -j y
#$ -o logs/
source "${CREATIVITY_LLM_REPO:-$PWD}/jobs/env.sh"
source "$REPO/jobs/vllm.sh"
: "${BASE_MODEL:?set BASE_MODEL with qsub -v BASE_MODEL=...}"
export VLLM_MODEL="$BASE_MODEL" VLLM_ROLE=engine VLLM_GPUS="${VLLM_GPUS:-0,1}" VLLM_DP="${VLLM_DP:-2}" VLLM_TP="${VLLM_TP:-1}"
export VLLM_SERVED_NAME="${VLLM_SERVED_NAME:-base}"
start_vllm
# shellcheck disable=SC2086
run env CUDA_VISIBLE_DEVICES="${TRAIN_GPUS:-2,3}" creativity-llm run --preset "${PRESET:-h100}" --run-dir "${RUN_DIR:-runs/h100-tsubame-engine}" \
    --stages "${STAGES:-all}" -p model="$BASE_MODEL" -p engine_url="$VLLM_URL" -p engine_model="$VLLM_SERVED_NAME" \
    -p teacher_url="${TEACHER_URL:-$VLLM_URL}" -p teacher_model="${TEACHER_MODEL:-$VLLM_SERVED_NAME}" ${RUN_ARGS:-}
