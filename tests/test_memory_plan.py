"""Memory plans (issue 22) for four 14B-class bases from their configurations alone, on the meta device: parameter counts equal
the published ones, trainable counts equal peft's, ZeRO-2 model states equal DeepSpeed's estimator on the trainable part, and the
activation formula equals what autograd keeps, counted with saved-tensor hooks on small models of each family."""
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from creativity_llm.training import _layer_shape, activation_elements, format_memory_plan, is_ffn_module, lora_targets, memory_plan

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "model_configs"
PUBLISHED = {"phi-4": 14_659_507_200, "qwen2.5-14b": 14_770_033_664, "gemma-3-12b-text": 11_766_034_176, "llm-jp-3-13b": 13_707_924_480}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_plan_of_a_14b_class_base(name):
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    plans = {mode: memory_plan(CONFIGS / f"{name}.json", mode, r=16, batch_size=8, seq_len=1024, gpus=8) for mode in ("attention", "all-linear")}
    for mode, plan in plans.items():
        assert plan["parameters"] == PUBLISHED[name]
        assert plan["trainable_parameters"] == plan["trainable_parameters_peft"] > 0
        assert plan["bytes"]["trainable_states"] == estimate_zero2_model_states_mem_needs(plan["trainable_parameters"], 8, 1, cpu_offload=False)[1]
        assert plan["activations_with_checkpointing"] < plan["activations_without_checkpointing"] / 4
        print(format_memory_plan(plan))
    att, full = plans["attention"], plans["all-linear"]
    assert att["trainable_parameters"] < full["trainable_parameters"] and att["bytes"]["total"] < full["bytes"]["total"]
    assert not any(is_ffn_module(t) for t in att["targets_per_layer"])
    assert att["bytes"]["total"] < 80 * 2**30, "attention-only LoRA at 8 x 1,024 tokens with checkpointing fits an 80 GB H100"


def _saved_per_token_layer(config: dict, mode: str, r: int = 8, b: int = 2, s: int = 32) -> float:
    from peft import LoraConfig, get_peft_model
    counts = []
    for layers in (2, 3):
        d = dict(config, num_hidden_layers=layers)
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(AutoConfig.for_model(d.pop("model_type"), **d))
        pm = get_peft_model(m, LoraConfig(r=r, lora_alpha=16, lora_dropout=0.0, target_modules=lora_targets(m, mode)))
        pm.train()
        params = {q.untyped_storage().data_ptr() for q in pm.parameters()}
        kept = {}
        def pack(t):
            st = t.untyped_storage()
            if st.data_ptr() not in params: kept[st.data_ptr()] = st.nbytes() / t.element_size()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            pm.base_model.model.model(input_ids=torch.randint(0, d["vocab_size"], (b, s)), use_cache=False)  # as in training
        counts.append(sum(kept.values()))
    return (counts[1] - counts[0]) / (b * s)


SMALL = {  # each family at small, unequal widths (query width != hidden, grouped key/values)
    "llama": dict(model_type="llama", hidden_size=192, intermediate_size=640, num_attention_heads=8, num_key_value_heads=2, head_dim=32, vocab_size=300),
    "qwen2": dict(model_type="qwen2", hidden_size=192, intermediate_size=640, num_attention_heads=8, num_key_value_heads=2, head_dim=32, vocab_size=300),
    "phi3": dict(model_type="phi3", hidden_size=256, intermediate_size=640, num_attention_heads=8, num_key_value_heads=2, vocab_size=300, pad_token_id=0,
                 eos_token_id=1, bos_token_id=1),
    "gemma3_text": dict(model_type="gemma3_text", hidden_size=192, intermediate_size=640, num_attention_heads=8, num_key_value_heads=2, head_dim=32,
                        vocab_size=300, sliding_window=4096, query_pre_attn_scalar=32),
}


@pytest.mark.parametrize("family", sorted(SMALL))
@pytest.mark.parametrize("mode", ["attention", "all-linear"])
def test_activation_formula_counts_what_autograd_keeps(family, mode):
    config = SMALL[family]
    d = dict(config); shape = _layer_shape(AutoConfig.for_model(d.pop("model_type"), **d))
    with torch.device("meta"):
        d = dict(config); m = AutoModelForCausalLM.from_config(AutoConfig.for_model(d.pop("model_type"), **d))
    layer0 = [t for t in lora_targets(m, mode) if ".layers.0." in t]
    n_ffn = sum(is_ffn_module(t) for t in layer0)
    predicted = activation_elements(shape, 8, len(layer0) - n_ffn, n_ffn)
    measured = _saved_per_token_layer(config, mode)
    assert abs(measured - predicted) <= 0.01 * predicted, (family, mode, measured, predicted)
