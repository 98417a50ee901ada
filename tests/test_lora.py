"""Stage 05 on the micro Llama: explicit targets, frozen FFN, trainable counts, loss, kill and resume, merge, DeepSpeed config."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from creativity_llm.core import stage_dir, write_json
from creativity_llm.pipeline import RunConfig
from creativity_llm.lora import lora_metrics, merge_adapter, run_lora, train_mode, write_train_dc
from creativity_llm.training import check_deepspeed_config, expected_lora_parameters, is_ffn_module, lora_targets
from creativity_llm.models import load_model

THINGS = "doorstop pigment planter bookend anvil whetstone paperweight heatsink".split()


def rows(n: int = 40) -> list[dict]:
    out = []
    for i in range(n):
        thing = THINGS[i % len(THINGS)]
        answer, rationale = f"Use brick {i} as a {thing}.", f"A {thing} needs weight and a flat face, which a brick has."
        out.append({"id": f"s{i // 2}/p{i}", "source_id": f"s{i // 2}", "task": "creativity", "instruction": f"Propose a use for brick {i}.",
                    "response": answer, "answer": answer, "rationale": rationale, "dc_format": "",
                    "answer_first": f"Answer: {answer}\nRationale: {rationale}"})
    return out


def cfg(**kw) -> RunConfig:
    base = dict(model="micro:llama", device="cpu", lora_max_len=160, lora_batch_size=4, lora_epochs=2, lora_lr=0.01, lora_save_steps=3,
                lora_eval_fraction=0.2)
    return RunConfig(**{**base, **kw})


def test_attention_only_leaves_every_ffn_weight_bit_identical(tmp_path):
    base, _ = load_model("micro:llama", device="cpu", dtype="float32")
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    stats = train_mode(cfg(), tmp_path, "attention", rows(), log=lambda *a: None, keep_model=True)
    model = stats.pop("model"); stats.pop("tokenizer")
    after = dict(model.get_base_model().named_parameters())
    lora = [n for n in after if "lora_" in n]
    assert lora and not [n for n in lora if is_ffn_module(n.split(".lora_")[0])], "an FFN module got an adapter"
    ffn = [n for n in before if ".mlp." in n]
    assert len(ffn) == 6 and all(torch.equal(before[n], after[n.replace(".weight", ".weight")]) for n in ffn)
    frozen = [n for n in before if "lora_" not in n]
    assert all(torch.equal(before[n], after[n if n in after else n.replace(".weight", ".base_layer.weight")]) for n in frozen)
    assert stats["trainable_parameters"] == expected_lora_parameters(base, lora_targets(base), 8) == 2 * 8 * ((64 + 64) * 2 + (64 + 32) * 2)
    from safetensors.torch import load_file
    keys = load_file(str(stage_dir(tmp_path, "05") / "adapters" / "attention" / "adapter_model.safetensors"))
    assert keys and all(".self_attn." in k for k in keys)


def test_all_linear_counts_and_loss_goes_down(tmp_path):
    stats = train_mode(cfg(), tmp_path, "all-linear", rows(), log=lambda *a: None)
    assert stats["trainable_parameters"] == 2 * 8 * ((64 + 64) * 2 + (64 + 32) * 2 + 3 * (64 + 128))
    assert stats["eval_loss_after"] < stats["eval_loss_before"]
    assert stats["optimizer_steps"] == 2 * 8  # 32 train pairs / batch 4, two epochs
    weights = json.loads((stage_dir(tmp_path, "05") / "logs" / "all-linear_sample_weights.json").read_text())
    assert [w["epoch"] for w in weights] == [0, 1]
    for w in weights:
        assert abs(sum(w["weights"]) / len(w["weights"]) - 1) < 1e-6 and 0.25 - 1e-9 <= min(w["weights"]) and max(w["weights"]) <= 3 + 1e-9
    again = train_mode(cfg(), tmp_path, "all-linear", rows(), log=lambda *a: None)  # a finished mode resumes from its last checkpoint
    assert again["resumed_from"] == "checkpoint-16" and again["optimizer_steps"] == 16 and again["eval_loss_after"] == stats["eval_loss_after"]


def _launch(run_dir: Path, c: RunConfig) -> subprocess.Popen:
    conf = write_json(run_dir / "launch.json", c.to_dict())
    return subprocess.Popen([sys.executable, "-m", "creativity_llm.lora", "--run-dir", str(run_dir), "--mode", "attention", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_kill_during_training_then_resume(tmp_path):
    c = cfg(lora_epochs=3, lora_save_steps=2)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for d in (whole, killed): write_train_dc(d, rows())
    assert _launch(whole, c).wait(timeout=600) == 0
    proc = _launch(killed, c)
    ckpts = stage_dir(killed, "05") / ".checkpoints" / "attention"
    t0 = time.time()
    while not list(ckpts.glob("checkpoint-1[02]/sample_weights.json")):  # killed in the second epoch (8 steps each)
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() - t0 < 300
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert _launch(killed, c).wait(timeout=600) == 0
    done = json.loads((stage_dir(whole, "05") / "logs" / "attention_stats.json").read_text())
    again = json.loads((stage_dir(killed, "05") / "logs" / "attention_stats.json").read_text())
    assert again["resumed_from"] in ("checkpoint-10", "checkpoint-12", "checkpoint-14")
    assert again["optimizer_steps"] == done["optimizer_steps"] == 3 * 8
    logs = lambda d, name: json.loads((stage_dir(d, "05") / "logs" / f"attention_{name}.json").read_text())
    order = {step: idx for step, idx in logs(whole, "batches")}
    resumed = logs(killed, "batches")
    assert resumed and all(order[step] == idx for step, idx in resumed), "the resumed run saw other batches than the uninterrupted one"
    assert [w["epoch"] for w in logs(killed, "sample_weights")] == [0, 1, 2]
    for a, b in zip(logs(killed, "sample_weights"), logs(whole, "sample_weights")):
        assert max(abs(x - y) for x, y in zip(a["weights"], b["weights"])) < 1e-4
    assert abs(again["eval_loss_after"] - done["eval_loss_after"]) < 1e-4


def test_long_sources_are_shortened_and_too_many_drops_fail(tmp_path):
    "Issue 22: a pair longer than lora_max_len has its quoted source shortened, never its answer; past lora_max_drop_fraction the stage fails."
    long = rows(20)
    source = "A fired clay block, heavy and flat, laid in courses with mortar. " * 6
    for r in long[:10]: r.update(input=source, instruction=f"Invention: brick\n{source}\n{r['instruction']}")
    stats = train_mode(cfg(lora_epochs=1, lora_max_len=260), tmp_path / "a", "attention", long, log=lambda *a: None)
    assert stats["prompts_shortened"] == 10 and stats["skipped_too_long"] == 0
    for r in long[10:12]: r["answer_first"] += " And more." * 40  # an answer too long to fit whatever the prompt: dropped
    with pytest.raises(ValueError, match=r"attention: 2 of 20 pairs do not fit in lora_max_len=260 tokens"):
        train_mode(cfg(lora_epochs=1, lora_max_len=260), tmp_path / "b", "attention", long, log=lambda *a: None)
    stats = train_mode(cfg(lora_epochs=1, lora_max_len=260, lora_max_drop_fraction=0.1), tmp_path / "c", "attention", long, log=lambda *a: None)
    assert stats["skipped_too_long"] == 2 and stats["prompts_shortened"] == 10


def test_changed_settings_do_not_resume(tmp_path):
    write_train_dc(tmp_path, rows())
    ckpts = stage_dir(tmp_path, "05") / ".checkpoints" / "attention" / "checkpoint-2"
    ckpts.mkdir(parents=True); (ckpts / "trainer_state.json").write_text("{}")
    write_json(ckpts.parent / "fingerprint.json", {"fingerprint": "someone else's"})
    stats = train_mode(cfg(lora_epochs=1), tmp_path, "attention", log=lambda *a: None)
    assert stats["resumed_from"] is None and stats["optimizer_steps"] == 8


def test_merge_matches_base_plus_adapter(tmp_path):
    c = cfg(lora_epochs=1)
    train_mode(c, tmp_path, "attention", rows(), log=lambda *a: None)
    out = tmp_path / "merged"
    res = merge_adapter(c, stage_dir(tmp_path, "05") / "adapters" / "attention", out, ["Propose a use for a brick.", "A longer prompt, padded."])
    assert res["max_abs_logit_diff"] <= 1e-5 and res["compared_in"] == "float64" and res["weights_dtype"] == "float32" and res["loads_without_peft"]
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= set(res["files"])


def test_deepspeed_config_is_accepted_and_typos_are_not(tmp_path):
    model, _ = load_model("micro:llama", device="cpu")
    filled = check_deepspeed_config(ROOT / "configs" / "deepspeed_zero2_bf16.json", model, batch_size=2, grad_accum=4)
    assert filled["train_batch_size"] == 8 and filled["gradient_accumulation_steps"] == 4 and filled["zero_optimization"]["stage"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"zero_optimization": {"stage": 2, "contiguous_gradient": True}}))
    with pytest.raises(ValueError, match="DeepSpeed rejects"):
        check_deepspeed_config(bad, model)


def test_stage_trains_both_modes_merges_and_plots(tmp_path):
    write_train_dc(tmp_path, rows())
    res = run_lora(cfg(lora_epochs=1), tmp_path, log=lambda *a: None)
    out = stage_dir(tmp_path, "05")
    assert res["trained"] == ["attention", "all-linear"] and set(res["merged"]) == {"attention"}
    assert res["modes"]["all-linear"]["trainable_parameters"] > res["modes"]["attention"]["trainable_parameters"]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG" and (out / "merged" / "attention" / "model.safetensors").is_file()
    assert list((out / "tensorboard" / "attention").glob("events.out.tfevents.*"))
    assert not (out / ".checkpoints").exists() and not (out / ".difficulty").exists(), "the finished stage removes its scratch state"
    assert not (out / ".timing").exists()
    # the step times reach the manifest, not the outputs: every optimizer step timed, with its tokens
    steps = res["timing"]["attention"]["steps"]
    assert [s["step"] for s in steps] == list(range(1, res["modes"]["attention"]["optimizer_steps"] + 1))
    assert all(s["tokens"] > 0 and s["padded_tokens"] >= s["tokens"] and 0 < s["seconds"] <= s["between"] for s in steps)
    recorded = lora_metrics(res)["modes"]["attention"]
    assert recorded["tokens_per_s"] > 0 and recorded["median_step_s"] > 0


def test_empty_train_dc_trains_nothing(tmp_path):
    import pyarrow as pa, pyarrow.parquet as pq
    out = stage_dir(tmp_path, "04"); out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows(1)).slice(0, 0), out / "train_dc.parquet")
    assert run_lora(cfg(), tmp_path, log=lambda *a: None)["trained"] == []


def test_gradient_checkpointing_gives_the_same_training(tmp_path):
    "Non-reentrant checkpointing with LoRA on frozen embeddings: the same losses as without (to 1e-5), the same trainable count."
    kw = dict(lora_dropout=0.0, lora_epochs=1, lora_hard_weighting=False)
    plain = train_mode(cfg(**kw), tmp_path / "plain", "attention", rows(16), log=lambda *a: None)
    ckpt = train_mode(cfg(**kw, lora_gradient_checkpointing=True), tmp_path / "ckpt", "attention", rows(16), log=lambda *a: None)
    history = lambda run: [h["loss"] for h in json.loads((stage_dir(run, "05") / "logs" / "attention_log_history.json").read_text()) if "loss" in h]
    a, b = history(tmp_path / "plain"), history(tmp_path / "ckpt")
    assert len(a) == len(b) == plain["optimizer_steps"] > 1
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5 and abs(plain["eval_loss_after"] - ckpt["eval_loss_after"]) < 1e-5
    assert plain["trainable_parameters"] == ckpt["trainable_parameters"]
