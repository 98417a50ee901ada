#!/bin/bash
# A teacher on its own TSUBAME 4.0 node (node_f: 4 x H100, tensor-parallel 4) until h_rt; its URL goes to URL_FILE:
#   qsub -g YOUR_GROUP -v TEACHER_PATH=/gs/fs/YOUR_GROUP/models/teacher,VLLM_SERVED_NAME=teacher,CONDA_SH=... jobs/tsubame_teacher.sh
#   qsub -g YOUR_GROUP -v BASE_MODEL=...,TEACHER_URL=$(cat logs/teacher_url),TEACHER_MODEL=teacher,CONDA_SH=... jobs/tsubame_engine.sh
#$ -cwd
#$ -N creativity-llm-teacher
#$ -l node_f=1
#$ -l h_rt=24:00:00
#$ -j y
#$ -o logs/
source "${CREATIVITY_LLM_REPO:-$PWD}/jobs/env.sh"
source "$REPO/jobs/vllm.sh"
: "${TEACHER_PATH:?set TEACHER_PATH with qsub -v TEACHER_PATH=...}"
export VLLM_MODEL="$TEACHER_PATH" VLLM_ROLE=teacher VLLM_TP="${VLLM_TP:-4}" VLLM_SERVED_NAME="${VLLM_SERVED_NAME:-teacher}"
start_vllm
if [ -n "${DRY_RUN:-}" ]; then exit 0; fi
echo "$VLLM_URL" > "${URL_FILE:-logs/teacher_url}"
wait "$VLLM_PID"
