#!/bin/bash
# The whole pipeline on TSUBAME 4.0 (Altair Grid Engine). node_f = one full node (4 x H100);
# for a single H100 use node_q=1 (or gpu_1=1). Submit from the repository root:
#   qsub -g YOUR_GROUP -v BASE_MODEL=/gs/fs/YOUR_GROUP/models/base,CONDA_SH=$HOME/miniconda3/etc/profile.d/conda.sh jobs/tsubame_pipeline.sh
#$ -cwd
#$ -N creativity-llm
#$ -l node_f=1
#$ -l h_rt=24:00:00
#$ -j y
#$ -o logs/
source "${CREATIVITY_LLM_REPO:-$PWD}/jobs/env.sh"
: "${BASE_MODEL:?set BASE_MODEL with qsub -v BASE_MODEL=...}"
# shellcheck disable=SC2086
run creativity-llm run --preset "${PRESET:-h100}" --run-dir "${RUN_DIR:-runs/h100-tsubame}" --stages "${STAGES:-all}" \
    -p model="$BASE_MODEL" ${RUN_ARGS:-}
