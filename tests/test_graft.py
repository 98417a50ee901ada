"""Stage 06 (graft): SkillPacks from adapters and from dense deltas, reversible grafting, refusals that name the module and
change nothing, and the whole stage on a small synthetic run (micro Llama, random adapters)."""
import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from peft import LoraConfig, get_peft_model

from creativity_llm.core import ConfigError
from creativity_llm.pipeline import resolve_config
from creativity_llm.graft import (SkillPack, SkillPackConfig, SkillPackError, architecture_of, dense_deltas, extract_skillpack, graft,
                                  lora_factors, pack_to_adapter, run_graft, state_sha256, ungraft)
from creativity_llm.models import micro_model

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]


def random_adapter(folder, seed=0, targets=ATTN, r=4, scale=0.05):
    "Save a LoRA adapter with random (non-zero) A and B for the micro Llama in `folder`."
    base, _ = micro_model(0)
    pm = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets)))
    g = torch.Generator().manual_seed(seed)
    for n, p in pm.named_parameters():
        if "lora_" in n: p.data = torch.randn(p.shape, generator=g) * scale
    pm.save_pretrained(folder)
    return folder


@pytest.fixture
def pack(tmp_path):
    base, _ = micro_model(0)
    p = extract_skillpack(lora_factors(random_adapter(tmp_path / "a")), SkillPackConfig(energy=0.95, band_reference=0, bands="8:2,4:rest"),
                          architecture_of(base), "skill")
    p.save(tmp_path / "pack")
    return tmp_path / "pack"


def test_graft_ungraft_restores_bits(pack):
    model, _ = micro_model(0)
    h = state_sha256(model)
    g = graft(model, SkillPack.load(pack))
    assert state_sha256(model) != h
    assert ungraft(model, g) == h == state_sha256(model)


@pytest.mark.parametrize("damage, needle", [
    ("drop_tensor", "model.layers.0.self_attn.k_proj.weight"),
    ("shape", "model.layers.0.self_attn.k_proj.weight"),
    ("module", "model.layers.9.self_attn.k_proj.weight"),
])
def test_damaged_pack_is_refused_naming_the_module_and_model_unchanged(pack, damage, needle):
    p = SkillPack.load(pack)
    name = "model.layers.0.self_attn.k_proj.weight"
    if damage == "drop_tensor": p = SkillPack(p.manifest, {k: v for k, v in p.tensors.items() if k != f"{name}/U0.codes"})
    elif damage == "shape":
        m = copy.deepcopy(p.manifest); m["modules"][name]["shape"] = [64, 64]; p = SkillPack(m, p.tensors)
    else:
        m = copy.deepcopy(p.manifest); m["modules"][needle] = m["modules"][name]
        p = SkillPack(m, {**p.tensors, **{k.replace(name, needle): v for k, v in p.tensors.items() if k.startswith(name)}})
    model, _ = micro_model(0)
    h = state_sha256(model)
    with pytest.raises(SkillPackError, match=needle.replace(".", r"\.")): graft(model, p)
    assert state_sha256(model) == h


def test_pack_file_missing_a_tensor_fails_on_load(pack):
    from safetensors.torch import load_file, save_file
    t = load_file(str(pack / "skillpack.safetensors"))
    del t["model.layers.1.self_attn.o_proj.weight/S"]
    save_file(t, str(pack / "skillpack.safetensors"))
    with pytest.raises(SkillPackError, match=r"model\.layers\.1\.self_attn\.o_proj\.weight"): SkillPack.load(pack)


def test_other_architecture_is_refused(pack):
    other, _ = micro_model(0, num_hidden_layers=3)
    h = state_sha256(other)
    with pytest.raises(SkillPackError, match="num_hidden_layers"): graft(other, SkillPack.load(pack))
    assert state_sha256(other) == h


def test_dense_delta_module_aware(tmp_path):
    base, _ = micro_model(0)
    tuned = copy.deepcopy(base)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        tuned.model.embed_tokens.weight[:5] += torch.randn(5, 64, generator=g) * 0.1  # a few token rows: sparse
        tuned.model.norm.weight += 0.01
        tuned.model.layers[0].mlp.up_proj.weight += torch.randn(128, 1, generator=g) @ torch.randn(1, 64, generator=g) * 0.1  # rank 1
    deltas = dense_deltas(base, tuned)
    assert set(deltas) == {"model.embed_tokens.weight", "model.norm.weight", "model.layers.0.mlp.up_proj.weight"}
    p = extract_skillpack(deltas, SkillPackConfig(energy=0.999, bands="32:rest", embed_density=0.05), architecture_of(base), "dense")
    methods = {n: m["method"] for n, m in p.modules.items()}
    assert methods == {"model.embed_tokens.weight": "prune", "model.norm.weight": "exact", "model.layers.0.mlp.up_proj.weight": "svd"}
    assert p.modules["model.layers.0.mlp.up_proj.weight"]["rank"] == 1
    assert p.modules["model.embed_tokens.weight"]["rel_error"] < 0.05  # 5% of entries hold all of the 5 touched rows (320 of 16k+)
    assert p.nbytes < 0.25 * p.manifest["dense_bytes"]
    h = state_sha256(base)
    gr = graft(base, p)
    for n, d in deltas.items(): torch.testing.assert_close(base.get_parameter(n).detach().double() - tuned.get_parameter(n).detach().double(), torch.zeros_like(d), atol=2e-3, rtol=0)
    assert ungraft(base, gr) == h
    with pytest.raises(SkillPackError, match="embed_tokens"): pack_to_adapter(p, tmp_path / "x")


def test_unsupported_adapters_are_refused(tmp_path):
    folder = random_adapter(tmp_path / "a")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(SkillPackError, match="use_dora"): lora_factors(folder)
    with pytest.raises(SkillPackError, match="missing"): lora_factors(tmp_path / "nothing")


@pytest.mark.parametrize("key, value, needle", [("graft_bands", "8:20,4:rest,2:9", "graft_bands"), ("graft_energy", 0, "graft_energy"),
                                                 ("graft_curve", "0.5,2", "graft_curve"), ("graft_group_size", 12, "graft_group_size")])
def test_bad_graft_settings(key, value, needle):
    with pytest.raises(ConfigError, match=needle): resolve_config("smoke", overrides=[f"{key}={value}"])


def _pairs(category, n, start=0):
    return [{"id": f"{category}-{i}", "source_id": f"doc-{category}-{i}", "task": "creativity", "category": category, "subdomain": "energy",
             "lang": "en", "instruction": f"Propose ideas about {category} number {i}.", "response": f"1. idea {i} for {category}\n2. another idea",
             "answer_first": f"Answer: idea {i}. Because it works.", "rationale": "Because it works."} for i in range(start, start + n)]


def test_stage_on_a_synthetic_run(tmp_path):
    "Stages 01, 02, 04 and 05 faked with the micro Llama and random adapters; stage 06 runs whole and keeps its promises."
    run = tmp_path / "run"
    rows = [r for c in ("divergent", "reasoning", "perspective") for r in _pairs(c, 6)]
    for stage, name in (("01_synthesis", "seed_pairs.parquet"), ("04_scoring", "train_dc.parquet")):
        (run / stage).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), run / stage / name)
    random_adapter(run / "05_lora" / "adapters" / "attention", seed=1)
    random_adapter(run / "05_lora" / "adapters" / "all-linear", seed=2, targets=ATTN + ["gate_proj", "up_proj", "down_proj"])
    experts = []
    for i, c in enumerate(("divergent", "reasoning", "perspective")):
        folder = random_adapter(run / "02_experts" / "adapters" / f"{c}.energy", seed=10 + i)
        (folder / "expert_card.json").write_text(json.dumps({"train_ids": [f"{c}-0"], "val_ids": [f"{c}-1"]}))
        experts.append({"index": i, "id": f"{c}.energy", "category": c, "trained": True, "train_pairs": 1, "adapter": f"adapters/{c}.energy"})
    pq.write_table(pa.Table.from_pylist(experts), run / "02_experts" / "experts.parquet")
    cfg = resolve_config("smoke", overrides=["graft_curve=0.5,1.0", "graft_skills=3", "graft_mc_items=8", "graft_kl_passages=1"])
    res = run_graft(cfg, run, log=lambda *a: None)
    sp = res["skillpack"]
    assert sp["ungraft_exact"] and sp["hash_before"] == sp["hash_after_ungraft"]
    assert sp["share_of_dense"] < 0.25 and sp["bytes"] == SkillPack.load(run / "06_graft" / "skillpacks" / "attention").nbytes
    assert sp["other_model"]["ungraft_exact"]
    from creativity_llm.core import OfferedModel
    from creativity_llm.graft import offered_models
    assert offered_models(run) == {"attention-skillpack": OfferedModel(run / "06_graft" / "pack_adapters" / "attention", "retention-only")}  # stage 07 scores it
    assert {p["bands"] for p in res["curve"]} == {cfg.graft_bands, "32:rest"} and len(res["curve"]) == 4
    exact = next(p for p in res["curve"] if p["bands"] == "32:rest" and p["energy"] == 1.0)
    assert exact["loss"] == sp["tuned_loss"] and abs(exact["share_of_adapter"] - 1) < 0.01  # β = 1 in fp32 is the adapter itself
    fu = res["fusion"]
    assert [s["id"] for s in fu["skills"]] == ["divergent.energy", "reasoning.energy", "perspective.energy"]
    methods = [r["method"] for r in fu["table"]]
    assert methods[:5] == ["base", "each skill alone", "weighted", "TIES", "DARE"] and methods[5] == "routing (label)" and methods[6].startswith("routing (Arrow")
    assert fu["routing_check"] == {"state_unchanged": True, "max_abs_loss_change": 0.0}
    label = next(r for r in fu["table"] if r["method"] == "routing (label)")
    alone = next(r for r in fu["table"] if r["method"] == "each skill alone")
    assert all(label[k] == alone[k] for k in alone if k.startswith("loss:"))
    assert all(r["acc"] is not None for r in fu["table"] if r["method"] != "each skill alone")
    assert (run / "06_graft" / "curve.png").is_file() and (run / "06_graft" / "fusion.png").is_file()
    stats = json.loads((run / "06_graft" / "stats.json").read_text())
    assert stats["skillpack"]["modules"] == sp["modules"] and stats["transfer"]["student"] == "micro:llama"
    for s in ("divergent.energy", "reasoning.energy", "perspective.energy"):
        SkillPack.load(run / "06_graft" / "skillpacks" / s)
        assert (run / "06_graft" / "skill_adapters" / s / "adapter_config.json").is_file()


def test_pack_file_with_a_mis_shaped_tensor_fails_on_load(pack):
    from safetensors.torch import load_file, save_file
    t = load_file(str(pack / "skillpack.safetensors"))
    name = "model.layers.1.self_attn.v_proj.weight"
    t[f"{name}/S"] = torch.cat([t[f"{name}/S"], torch.ones(1)])
    t[f"{name}/V0.codes"] = t[f"{name}/V0.codes"][:, :-1].contiguous()
    save_file(t, str(pack / "skillpack.safetensors"))
    with pytest.raises(SkillPackError, match=name.replace(".", r"\.")): SkillPack.load(pack)
    t[f"{name}/S"] = t[f"{name}/S"][:-1].contiguous()  # S right again: the vectors' codes are still one byte short per row
    save_file(t, str(pack / "skillpack.safetensors"))
    with pytest.raises(SkillPackError, match=name.replace(".", r"\.") + ": V"): SkillPack.load(pack)


def test_state_hash_covers_bf16_and_scalar_buffers():
    "Gemma keeps a 0-d buffer (its embedding scale) and GPU runs load bf16: both must hash, and any bit flip must show."
    m = torch.nn.Linear(4, 4).to(torch.bfloat16)
    m.register_buffer("scale", torch.tensor(3.0))
    h = state_sha256(m)
    with torch.no_grad(): m.scale += 1
    assert state_sha256(m) != h
    with torch.no_grad(): m.scale -= 1; m.weight.view(torch.int16)[0, 0] ^= 1
    assert state_sha256(m) != h


def test_tied_weights_nan_and_edited_tensors_are_refused(pack):
    p = SkillPack.load(pack)
    model, _ = micro_model(0)  # ties lm_head to embed_tokens
    h = state_sha256(model)
    emb = torch.zeros(model.config.vocab_size, 64); emb[3, :5] = 0.1
    tied = extract_skillpack({"model.embed_tokens.weight": emb, "lm_head.weight": emb.clone()}, SkillPackConfig(), architecture_of(model), "tied")
    with pytest.raises(SkillPackError, match="tied"): graft(model, tied)
    name = "model.layers.0.self_attn.q_proj.weight"
    nan = SkillPack(p.manifest, {**p.tensors, f"{name}/S": torch.full_like(p.tensors[f"{name}/S"], float("nan"))})
    with pytest.raises(SkillPackError, match=name.replace(".", r"\.")): graft(model, nan)  # the sha256 no longer matches
    m = copy.deepcopy(nan.manifest); del m["modules"][name]["sha256"]
    with pytest.raises(SkillPackError, match="NaN"): graft(model, SkillPack(m, nan.tensors))
    assert state_sha256(model) == h


def test_adapters_with_more_than_lora_factors_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file
    folder = random_adapter(tmp_path / "a")
    t = load_file(str(folder / "adapter_model.safetensors"))
    t["base_model.model.lm_head.modules_to_save.default.weight"] = torch.zeros(3, 3)
    save_file(t, str(folder / "adapter_model.safetensors"))
    with pytest.raises(SkillPackError, match="modules_to_save"): lora_factors(folder)


def test_alpha_pattern_with_alternation(tmp_path):
    folder = random_adapter(tmp_path / "a")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**cfg, "alpha_pattern": {"q_proj|v_proj": 4 * cfg["r"]}}))
    f = lora_factors(folder)
    plain = lora_factors(random_adapter(tmp_path / "b"))
    for n in f:
        ratio = float(f[n][0].abs().sum() / plain[n][0].abs().sum())
        assert abs(ratio - (2.0 if n.split(".")[-2] in ("q_proj", "v_proj") else 1.0)) < 1e-9, n


def test_packs_of_different_ranks_route_with_arrow(tmp_path):
    from peft import ArrowConfig, create_arrow_model
    base, _ = micro_model(0)
    packs = [extract_skillpack(lora_factors(random_adapter(tmp_path / f"a{i}", seed=i)), SkillPackConfig(energy=e, bands="32:rest"), architecture_of(base), f"p{i}")
             for i, e in ((0, 0.5), (1, 0.999))]
    ranks = [max(m["rank"] for m in p.modules.values()) for p in packs]
    assert ranks[0] < ranks[1]
    dirs = [str(pack_to_adapter(p, tmp_path / f"ad{i}", max(ranks))) for i, p in enumerate(packs)]
    with pytest.raises(SkillPackError, match="below"): pack_to_adapter(packs[1], tmp_path / "x", ranks[0])
    arrow = create_arrow_model(base, dirs, ArrowConfig(top_k=1, rng_seed=0))
    with torch.no_grad(): assert torch.isfinite(arrow(input_ids=torch.tensor([[5, 6, 7]])).logits).all()
