#!/bin/bash
# Stage 02's experts as an array job on TSUBAME 4.0: task ids 1..60 train experts 0..59 (SGE_TASK_ID is 1-based).
#   qsub -g YOUR_GROUP -t 1-60 -tc 8 -v BASE_MODEL=...,RUN_DIR=runs/h100,CONDA_SH=... jobs/tsubame_array.sh
# Run stages 00-01 before and the whole pipeline after (stage 02 then only assembles the bank); see jobs/README.md.
#$ -cwd
#$ -N creativity-llm-experts
#$ -l node_q=1
#$ -l h_rt=08:00:00
#$ -j y
#$ -o logs/
source "${CREATIVITY_LLM_REPO:-$PWD}/jobs/env.sh"
: "${BASE_MODEL:?set BASE_MODEL}" "${RUN_DIR:?set RUN_DIR to the run directory stages 00-01 wrote}"
# shellcheck disable=SC2086
run creativity-llm experts --run-dir "$RUN_DIR" --preset "${PRESET:-h100}" --expert "$((SGE_TASK_ID - 1))" \
    -p model="$BASE_MODEL" ${RUN_ARGS:-}
