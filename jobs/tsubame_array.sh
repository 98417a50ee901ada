#!/bin/bash
# A fanning-out stage as an array job on TSUBAME 4.0: task ids 1..60 map to shard 0..59 (SGE_TASK_ID is 1-based).
#   qsub -g YOUR_GROUP -t 1-60 -tc 8 -v BASE_MODEL=...,RUN_DIR=runs/h100,CONDA_SH=... jobs/tsubame_array.sh
#$ -cwd
#$ -N creativity-llm-array
#$ -l node_q=1
#$ -l h_rt=08:00:00
#$ -j y
#$ -o logs/
source "${CREATIVITY_LLM_REPO:-$PWD}/jobs/env.sh"
: "${BASE_MODEL:?set BASE_MODEL}" "${RUN_DIR:?set RUN_DIR to the run directory the upstream stages wrote}"
# shellcheck disable=SC2086
creativity-llm run --preset "${PRESET:-h100}" --run-dir "$RUN_DIR" --stages "${STAGE:-02}" \
    -p model="$BASE_MODEL" -p "${SHARD_PARAM:-expert_index}=$((SGE_TASK_ID - 1))" ${RUN_ARGS:-}
