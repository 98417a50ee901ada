"""The distributed training path proven on CPU (issue 23): stage 05's own launcher (`launch_training`, torchrun) with two processes
on gloo against one process with the same global batch; only rank 0 writes; a kill and re-run resumes to the uninterrupted result;
the DataParallel guard. One thread per rank."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from creativity_llm.core import stage_dir
from creativity_llm.lora import launch_training, train_mode, write_train_dc
from creativity_llm.pipeline import RunConfig
from test_lora import rows

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5  # largest |difference| between the adapters' weights (they are of order 1e-2): all-reduce sums in another order


def cfg(**kw) -> RunConfig:
    base = dict(model="micro:llama", device="cpu", lora_max_len=160, lora_epochs=1, lora_lr=0.01, lora_dropout=0.0, lora_eval_fraction=0.25,
                lora_save_steps=2, lora_hard_weighting=True, lora_merge="", lora_modes="attention")
    return RunConfig(**{**base, **kw})


def adapter(run_dir) -> dict:
    return load_file(stage_dir(run_dir, "05") / "adapters" / "attention" / "adapter_model.safetensors")


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    run = tmp_path_factory.mktemp("one")
    write_train_dc(run, rows(32))
    stats = train_mode(cfg(lora_batch_size=4), run, "attention", log=lambda *a: None)
    return run, stats


def test_two_gloo_processes_equal_one_with_the_same_global_batch(one_process, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run1, stats1 = one_process
    write_train_dc(tmp_path, rows(32))
    stats2 = launch_training(cfg(lora_batch_size=2, lora_processes=2), tmp_path, "attention", 2, log=lambda *a: None)
    assert stats2["optimizer_steps"] == stats1["optimizer_steps"] == 6  # 24 training pairs, global batch 4
    assert max_diff(adapter(tmp_path), adapter(run1)) < TOLERANCE
    assert abs(stats2["eval_loss_after"] - stats1["eval_loss_after"]) < 1e-5
    w1 = json.loads((stage_dir(run1, "05") / "logs" / "attention_sample_weights.json").read_text())
    w2 = json.loads((stage_dir(tmp_path, "05") / "logs" / "attention_sample_weights.json").read_text())
    assert max(abs(x - y) for x, y in zip(w1[0]["weights"], w2[0]["weights"])) < 1e-5  # the difficulty pass, shared out and gathered
    out = stage_dir(tmp_path, "05")
    assert len(list((out / "tensorboard").rglob("events.*"))) == 1, "rank 1 wrote TensorBoard events"
    assert sorted(p.name for p in (out / "logs").iterdir()) == sorted(p.name for p in (stage_dir(run1, "05") / "logs").iterdir())


def test_killed_two_process_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for run in (whole, killed): write_train_dc(run, rows(32))
    c = cfg(lora_batch_size=2, lora_processes=2, lora_epochs=2, lora_save_steps=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    launch = lambda run: [sys.executable, "-c", "import json, sys; from creativity_llm.lora import launch_training; from creativity_llm.pipeline import RunConfig; "
                          f"launch_training(RunConfig(**json.loads(sys.argv[1])), {str(run)!r}, 'attention', 2)", json.dumps(c.to_dict())]
    subprocess.run(launch(whole), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(launch(killed), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = stage_dir(killed, "05") / ".checkpoints" / "attention"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpts.glob("checkpoint-*/sample_weights.json")): time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks, mid-epoch
    proc.wait()
    assert list(ckpts.glob("checkpoint-*")), "no checkpoint was written before the kill"
    assert not (stage_dir(killed, "05") / "adapters").exists()
    subprocess.run(launch(killed), check=True, env=env, capture_output=True, text=True)
    stats = json.loads((stage_dir(killed, "05") / "logs" / "attention_stats.json").read_text())
    assert stats["resumed_from"] and stats["optimizer_steps"] == 12
    assert max_diff(adapter(killed), adapter(whole)) < TOLERANCE


def test_data_parallel_is_refused_and_one_process_is_pinned_to_one_device(tmp_path):
    "transformers counts every visible GPU outside a launch and wraps the model in nn.DataParallel; simulated here on CPU."
    from transformers import TrainingArguments
    from creativity_llm.models import load_model
    from creativity_llm.trainer import WeightedLossTrainer, pin_one_device
    model, _ = load_model("micro:llama", device="cpu")
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    args._n_gpu = 2  # what TrainingArguments computes on a node with two GPUs visible, outside torchrun
    trainer = WeightedLossTrainer(model=model, args=args)
    with pytest.raises(RuntimeError, match="nn.DataParallel over 2 GPUs"):
        trainer._wrap_model(trainer.model)
    assert pin_one_device(args).n_gpu == 1
    assert trainer._wrap_model(trainer.model) is trainer.model


def test_deepspeed_zero2_on_the_cpu_accelerator_trains_saves_lora_only_and_resumes(tmp_path):
    "ZeRO-2 through the same launcher on DeepSpeed's CPU accelerator (no CUDA; the training arguments not in CPU mode, which would skip DeepSpeed)."
    for run in (tmp_path / "whole", tmp_path / "killed"): write_train_dc(run, rows(32))
    c = cfg(lora_batch_size=2, lora_processes=2, lora_epochs=2, lora_save_steps=3, lora_deepspeed_on_cpu=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    launch = lambda run: [sys.executable, "-c", "import json, sys; from creativity_llm.lora import launch_training; from creativity_llm.pipeline import RunConfig; "
                          f"launch_training(RunConfig(**json.loads(sys.argv[1])), {str(run)!r}, 'attention', 2)", json.dumps(c.to_dict())]
    r = subprocess.run(launch(tmp_path / "whole"), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads((stage_dir(tmp_path / "whole", "05") / "logs" / "attention_stats.json").read_text())
    assert stats["deepspeed"] and stats["optimizer_steps"] == 12 and stats["eval_loss_after"] < stats["eval_loss_before"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(launch(killed), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = stage_dir(killed, "05") / ".checkpoints" / "attention"
    deadline = time.time() + 180
    while time.time() < deadline and not list(ckpts.glob("checkpoint-*/sample_weights.json")): time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # sample_weights.json is written last, after the engine's own files
    proc.wait()
    states = sorted(ckpts.glob("checkpoint-*/global_step*/mp_rank_00_model_states.pt"))
    assert states, sorted(str(p.relative_to(ckpts)) for p in ckpts.rglob("*"))
    module = torch.load(states[0], weights_only=True, map_location="cpu")["module"]  # our own file, tensors and plain types only
    frozen = [k for k in module if ".lora_" not in k]
    # LoRA-only, but for the micro model's tied output embedding: DeepSpeed drops frozen parameters by the name named_parameters()
    # gives them, and a tied weight is named once (as the input embedding), so its second name stays in the checkpoint
    assert frozen == ["base_model.model.lm_head.weight"] and len(module) == 1 + 2 * 8, sorted(module)
    first = states[0].parents[1]  # checkpoint-N: under load a second checkpoint may be written before the kill lands
    assert len(list(first.glob("global_step*/*optim_states.pt"))) == 2  # ZeRO-2: one optimizer shard per rank
    from torch.utils.cpp_extension import _get_build_directory
    (Path(_get_build_directory("deepspeed_shm_comm", verbose=False)) / "lock").touch()  # what a run killed while building its op leaves
    r = subprocess.run(launch(killed), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((stage_dir(killed, "05") / "logs" / "attention_stats.json").read_text())
    assert again["resumed_from"] and again["optimizer_steps"] == 12
    assert max_diff(adapter(killed), adapter(tmp_path / "whole")) < TOLERANCE
