# shellcheck shell=bash
# Sourced by the vLLM job scripts (after env.sh): start vLLM's OpenAI-compatible server on this node and wait until it answers.
# Settings (export before sbatch/qsub):
#   VLLM_MODEL          the model to serve: the base (ROLE=engine) or the teacher (ROLE=teacher); a local HF directory
#   VLLM_ROLE           'engine' (the base, LoRA adapters loaded by name at run time) or 'teacher' (a plain model)   [engine]
#   VLLM_SERVED_NAME    the name requests use: engine_model / teacher_model in the run                               [the path]
#   VLLM_PORT           [8000]     VLLM_TP tensor-parallel size [1]     VLLM_DP data-parallel size [1]
#   VLLM_GPUS           CUDA_VISIBLE_DEVICES of the server (TP x DP GPUs) [all]
#   VLLM_MAX_NUM_SEQS   sequences batched at once [128]; keep engine_concurrency / teacher_concurrency at twice this
#   VLLM_MAX_MODEL_LEN  [4096]     VLLM_DTYPE [bfloat16]
#   VLLM_MAX_LORA_RANK  at least the adapters' rank (lora_r, 8 by default; 16 leaves room)                            [16]
#   VLLM_MAX_LORAS      adapters in one batch on the GPU: a stage sends one adapter at a time, 8 leaves room            [8]
#   VLLM_MAX_CPU_LORAS  adapters kept in CPU memory: the whole 60-expert bank, and the tuned adapters                    [72]
#   VLLM_CHAT_TEMPLATE  a Jinja file; by default the model's own, else the template creativity_llm gives a base model
#   VLLM_EXTRA          more `vllm serve` arguments
VLLM_PORT="${VLLM_PORT:-8000}"

vllm_chat_template() {
    # creativity_llm renders prompts with the tokenizer's chat template, or gives a base model without one its family's
    # (Gemma's or ChatML): vLLM must use the same, or the engine's answers are to other prompts than the in-process path's.
    python - "$1" <<'PY'
import json, sys
from pathlib import Path
from creativity_llm.models import CHATML_TEMPLATE, GEMMA_TEMPLATE
root = Path(sys.argv[1])
tc = json.loads((root / "tokenizer_config.json").read_text()) if (root / "tokenizer_config.json").is_file() else {}
if tc.get("chat_template") or (root / "chat_template.jinja").is_file(): sys.exit(0)  # its own: vLLM reads it
model_type = json.loads((root / "config.json").read_text()).get("model_type", "")
out = Path.cwd() / "logs" / f"chat_template.{root.name}.jinja"
out.parent.mkdir(exist_ok=True)
out.write_text(GEMMA_TEMPLATE if model_type.startswith("gemma") else CHATML_TEMPLATE)
print(out)
PY
}

start_vllm() {
    : "${VLLM_MODEL:?set VLLM_MODEL to the model directory to serve}"
    local role="${VLLM_ROLE:-engine}" template="${VLLM_CHAT_TEMPLATE:-}" args=()
    if [ -n "${DRY_RUN:-}" ]; then  # say what would be served, start nothing
        VLLM_PID="" VLLM_URL="http://$(hostname):$VLLM_PORT/v1"
        echo "vllm serve $VLLM_MODEL ($role) on GPUs ${VLLM_GPUS:-${CUDA_VISIBLE_DEVICES:-all}}, TP ${VLLM_TP:-1}, DP ${VLLM_DP:-1}, at $VLLM_URL"
        return 0
    fi
    command -v vllm >/dev/null || { echo "vllm is not on PATH: pip install vllm in the job's environment"; exit 1; }
    [ -n "$template" ] || template="$(vllm_chat_template "$VLLM_MODEL")"
    [ -z "$template" ] || args+=(--chat-template "$template")
    if [ "$role" = engine ]; then
        # adapters arrive at run time (stage 02 trains the experts, stage 05 the tuned adapters): the pipeline loads each one
        # through /v1/load_lora_adapter under a name that carries its content hash
        export VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
        args+=(--enable-lora --max-lora-rank "${VLLM_MAX_LORA_RANK:-16}" --max-loras "${VLLM_MAX_LORAS:-8}" --max-cpu-loras "${VLLM_MAX_CPU_LORAS:-72}")
    fi
    # shellcheck disable=SC2086
    CUDA_VISIBLE_DEVICES="${VLLM_GPUS:-${CUDA_VISIBLE_DEVICES:-}}" vllm serve "$VLLM_MODEL" --host 0.0.0.0 --port "$VLLM_PORT" \
        --served-model-name "${VLLM_SERVED_NAME:-$VLLM_MODEL}" --tensor-parallel-size "${VLLM_TP:-1}" --data-parallel-size "${VLLM_DP:-1}" \
        --dtype "${VLLM_DTYPE:-bfloat16}" --max-model-len "${VLLM_MAX_MODEL_LEN:-4096}" --max-num-seqs "${VLLM_MAX_NUM_SEQS:-128}" \
        --generation-config vllm ${args[@]+"${args[@]}"} ${VLLM_EXTRA:-} > "logs/vllm-${role}-$(hostname).log" 2>&1 &
    VLLM_PID=$!
    trap 'kill "$VLLM_PID" 2>/dev/null || true' EXIT
    VLLM_URL="http://$(hostname):$VLLM_PORT/v1"
    local waited=0
    until curl -sf "http://127.0.0.1:$VLLM_PORT/v1/models" >/dev/null; do  # loading a 14B model takes minutes
        kill -0 "$VLLM_PID" 2>/dev/null || { echo "vllm exited while starting: see logs/vllm-${role}-$(hostname).log"; exit 1; }
        sleep 10; waited=$((waited + 10))
        [ "$waited" -lt "${VLLM_START_TIMEOUT:-1800}" ] || { echo "vllm did not answer within ${VLLM_START_TIMEOUT:-1800} s"; exit 1; }
    done
    echo "vllm ($role) serving ${VLLM_SERVED_NAME:-$VLLM_MODEL} at $VLLM_URL after ${waited} s"
}
