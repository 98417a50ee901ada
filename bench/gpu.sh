#!/usr/bin/env bash
# One GPU measurement session (issue 25), each step under its own time limit; a step that fails or times out does not stop the
# others. Every step writes <out>/<step>.log (and a JSON of its figures); the last one writes <out>/RESULTS.md from them.
#
#   bash bench/gpu.sh [--out DIR] [--wheels DIR] [--only STEP,STEP] [--cpu-tiny] [--results]
#
#   --out DIR      output folder (default bench/gpu_out; emptied first unless --only is given)
#   --wheels DIR   install these wheels first (jobs/gpu_wheels.sh builds them) into /tmp/site, ahead of the node's own packages
#   --only LIST    run only these steps (the report is always written): versions, models, peak, train_attention,
#                  train_all-linear, gpu_tests, smoke, decode
#   --cpu-tiny     the same steps at tiny sizes on the CPU: checks the script end to end; its figures say nothing of a GPU
#   --results      also copy RESULTS.md to bench/RESULTS.md (a GPU run whose figures are to be committed)
#
# Steps, in order: versions; models (random Llama-3.1-8B and Llama-3.2-1B folders with a tokenizer, kept in
# bench/cache/gpu_models); peak (bf16 matmul 8192^3, copy bandwidth); train_attention and train_all-linear (stage 05's run_lora
# on the random 8B: torchrun, the h100 preset's DeepSpeed ZeRO-2 config, checkpointing, bf16, 1024-token synthetic pairs, 3
# warm-up + 10 timed steps, then for attention-only 2 steps under torch.profiler); gpu_tests (pytest -m gpu); smoke
# (creativity-llm run --preset smoke -p device=cuda, all stages); decode (generate on the random 1B at batch 1, 16, 64).
# Limits (seconds) can be changed with LIMIT_<step> in the environment;
# their sum (590 s on a GPU) is kept under the device machine's 10 minutes per command.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

out=bench/gpu_out; wheels=""; only=""; tiny=""; results=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift ;;
        --wheels) wheels=$2; shift ;;
        --only) only=$2; shift ;;
        --cpu-tiny) tiny=--cpu-tiny ;;
        --results) results=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "gpu.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done

python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if [ -n "$wheels" ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
[ -n "$only" ] || rm -rf "$out"
mkdir -p "$out"
bench=(bench/gpu_bench.py --out "$out" ${tiny:+"$tiny"})

if [ -n "$tiny" ]; then
    seq=256 batch=2 warmup=1 steps=2 batches=1,4,8 prompt=32 new=16 device=cpu suffix=-tiny smoke_limit=400
else
    seq=1024 batch=0 warmup=3 steps=10 batches=1,16,64 prompt=128 new=64 device=cuda suffix="" smoke_limit=150
fi
models=bench/cache/gpu_models

step() {  # step NAME LIMIT COMMAND...: run it under its limit, log it, record (name, exit code, seconds, log) in steps.tsv
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then return 0; fi
    local var="LIMIT_${name//-/_}"
    limit=${!var:-$limit}
    echo "== $name (limit ${limit} s)"
    timeout -k 10 "$limit" "$@" > "$out/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" "$name.log" >> "$out/steps.tsv"
    echo "   exit $rc after $((SECONDS - t0)) s"
    tail -n 3 "$out/$name.log" | cut -c1-200
}

gpu_tests=$(grep -l "mark.gpu" tests/test_*.py | tr '\n' ' ')  # only the files with GPU tests: the others need the dev packages
step versions 20 "$python" "${bench[@]}" versions
step models 30 "$python" "${bench[@]}" models --models "$models"
step peak 40 "$python" "${bench[@]}" peak
for mode in attention all-linear; do
    profile=0; [ "$mode" = attention ] && profile=2  # two more steps under torch.profiler: where the time goes
    step "train_$mode" 130 "$python" "${bench[@]}" train --model "random:$models/train$suffix" --mode "$mode" --seq "$seq" \
        --batch-size "$batch" --warmup "$warmup" --steps "$steps" --profile "$profile"
done
# shellcheck disable=SC2086  # one word per test file
step gpu_tests 40 "$python" -m pytest $gpu_tests -m gpu -q -p no:cacheprovider
step smoke "$smoke_limit" "$python" -c "import sys; from creativity_llm.pipeline import main; sys.exit(main(sys.argv[1:]))" \
    run --preset smoke -p "device=$device" --run-dir "$out/smoke_run"
step decode 50 "$python" "${bench[@]}" decode --model "random:$models/decode$suffix" --batches "$batches" --prompt "$prompt" --new "$new"
"$python" "${bench[@]}" report --command "bash bench/gpu.sh${tiny:+ $tiny}${wheels:+ --wheels $wheels}" > "$out/report.log" 2>&1 || tail -n 20 "$out/report.log"
echo "== $out/RESULTS.md"
cat "$out/RESULTS.md" 2>/dev/null
if [ -n "$results" ] && [ -f "$out/RESULTS.md" ]; then cp "$out/RESULTS.md" bench/RESULTS.md; fi
