"""Model loading: Hugging Face directories, the embedded GGUF (converted once, cached), the micro model."""
import json, time

import pytest
import torch

from creativity_llm import models
from creativity_llm.models import ModelSpecError, converted_gguf_dir, describe_model, load_model, micro_model, resolve_model


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
    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", lambda *a, **k: tok)
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: m)
    def killed(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(type(tok), "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        converted_gguf_dir(fake, cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.gpu
def test_micro_model_on_cuda_is_bf16():
    m, tok = load_model("micro:llama", device="cuda")
    assert m.dtype == torch.bfloat16 and m.device.type == "cuda"
