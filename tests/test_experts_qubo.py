"Stages 02 (experts) and 03 (QUBO team selection): solver correctness against oracles, the stage on the micro model, array-job subsets."
import json, subprocess, sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pyarrow as pa, pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from conftest import cli
from creativity_llm import qubo
from creativity_llm.pipeline import RunConfig
from creativity_llm.core import STAGE_BY_ID, Manifest, StageIncomplete
from creativity_llm.experts import EXPERTS_TABLE, build_experts, load_profile
from creativity_llm.qubo import (TeamProblem, clustered_instance, exact_team, greedy_team, milp_team, swap_anneal, dwave_sa_team,
                                 choose_team, load_experts, select_and_generate)
from creativity_llm.sources import Document

REPO = Path(__file__).resolve().parent.parent


# ---- solvers
@pytest.mark.parametrize("seed", range(8))
def test_penalised_ground_state_is_the_best_team(seed):
    "dimod.ExactSolver over all 2^n states: the minimum is feasible, and ours and the MILP find its energy."
    p = clustered_instance(12 + seed % 5, 2 + seed % 5, seed=seed, d=[0.0, 0.5, 2.0][seed % 3])
    oracle = exact_team(p)
    assert oracle.feasible and len(oracle.members) == p.K
    assert swap_anneal(p, seed=seed).energy == pytest.approx(oracle.energy, abs=1e-9)
    for t in (milp_team(p), milp_team(p, by_counts=False)):  # HiGHS at a zero gap: exact, not within its default 1e-4
        assert t.info["optimal"] and t.energy == pytest.approx(oracle.energy, abs=1e-9)


def test_problem_rejects_bad_input():
    with pytest.raises(ValueError, match="n_groups=2 but the items fall in 3 groups"):
        TeamProblem([0.1, 0.2, 0.3], [0, 1, 2], 2, similarity=np.eye(3), n_groups=2)
    with pytest.raises(ValueError, match="NaN"):
        TeamProblem([0.1, 0.2], [0, 1], 1, similarity=np.array([[1, np.nan], [np.nan, 1]]))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        TeamProblem([0.1, 0.2], [0, 1], 1, similarity=np.eye(2), b=-1)
    with pytest.raises(ValueError, match="K=3 must be in 1..n=2"):
        TeamProblem([0.1, 0.2], [0, 1], 3, similarity=np.eye(2))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 11), data=st.data())
def test_annealer_on_arbitrary_instances(n, data):
    "Arbitrary qualities, groups and (possibly negative, possibly degenerate) similarities: always exactly K members, optimal at this size."
    K = data.draw(st.integers(1, n))
    q = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    groups = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    a = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=n * n, max_size=n * n))).reshape(n, n)
    p = TeamProblem(q, groups, K, similarity=(a + a.T) / 2, b=data.draw(st.floats(0, 2)), d=data.draw(st.floats(0, 2)))
    ours = swap_anneal(p, seed=0)
    assert ours.feasible and len(set(ours.members)) == K
    assert ours.energy <= greedy_team(p).energy + 1e-12
    assert ours.energy == pytest.approx(exact_team(p).energy, abs=1e-9)


def test_bqm_matches_terms_and_penalty_rule():
    p = clustered_instance(14, 5, seed=3, d=1.0)
    bqm, rng = p.to_bqm(), np.random.default_rng(0)
    for _ in range(100):
        x = rng.random(p.n) < rng.random()
        assert bqm.energy(dict(enumerate(x.astype(int)))) == pytest.approx(p.energy(np.flatnonzero(x)), abs=1e-9)
    assert p.size_penalty() > (np.abs(p.linear) + np.abs(p.dense_couplings()).sum(1)).max()


def test_data_scale_never_builds_the_dense_model(monkeypatch):
    "n = 5000 from embeddings: no n×n matrix (dense_couplings and to_bqm are not called), a feasible team better than greedy."
    p = clustered_instance(5000, 100, seed=0, dense=False)
    monkeypatch.setattr(TeamProblem, "dense_couplings", lambda self: pytest.fail("built the dense coupling matrix"))
    monkeypatch.setattr(TeamProblem, "to_bqm", lambda self, *a: pytest.fail("built the dense BQM"))
    t = swap_anneal(p, seed=0, kicks=10**6, patience=10**6, time_limit_s=0.3)
    assert t.feasible and len(t.members) == 100 and t.energy < greedy_team(p).energy


def test_dwave_sa_answers_are_checked():
    "The seed's method can return a team of the wrong size; choose_team refuses it rather than passing it on."
    p = clustered_instance(30, 6, seed=1)
    bqm = p.to_bqm()
    for seed in range(5):
        t = dwave_sa_team(p, seed=seed, num_sweeps=10, bqm=bqm)
        assert t.feasible == (len(t.members) == p.K) and t.energy == pytest.approx(p.energy(t.members), abs=1e-9)


def _experts(n=6):
    rng = np.random.default_rng(0)
    cats = ["divergent", "reasoning", "perspective", "constraint"]
    return [{"index": i, "id": f"{cats[i % 4]}.s{i}", "category": cats[i % 4], "subdomain": f"s{i}", "quality": float(rng.random()),
             "embedding": rng.normal(size=8).tolist(), "trained": True, "adapter": f"adapters/{i}"} for i in range(n)]


def test_choose_team_refuses_an_infeasible_answer(monkeypatch):
    bad = lambda problem, seed=0, **kw: qubo._team(problem, [0], "dwave-sa", 0.0)
    monkeypatch.setitem(qubo.SOLVERS, "dwave-sa", bad)
    with pytest.raises(RuntimeError, match="returned a team of 1, not K=4"):
        choose_team(RunConfig(qubo_solver="dwave-sa", qubo_team_size=4), _experts())
    sel = choose_team(RunConfig(qubo_team_size=4), _experts())  # the default solver; dwave's bad answer is only in the comparison
    assert len(sel["chosen"]["members"]) == 4 and sel["comparison"]["dwave-sa"]["feasible"] is False
    assert sel["comparison"]["exact"]["energy"] == pytest.approx(sel["chosen"]["energy"], abs=1e-9)


def test_qubo_compare_chooses_the_comparison():
    sel = choose_team(RunConfig(qubo_team_size=4, qubo_compare=""), _experts())
    assert list(sel["comparison"]) == ["swap-anneal"]  # the chosen solver alone
    sel = choose_team(RunConfig(qubo_team_size=4, qubo_compare="greedy,exact"), _experts())
    assert list(sel["comparison"]) == ["swap-anneal", "greedy", "exact"]


def test_fewer_experts_than_K():
    sel = choose_team(RunConfig(qubo_team_size=8), _experts(3))
    assert sel["K"] == 3 and sel["K_requested"] == 8 and len(sel["chosen"]["members"]) == 3


# ---- the stages on the micro model
def _pair(i, cat, sub, src):
    return {"id": f"{src}/{cat}", "task": "creativity", "instruction": f"Invent uses for device {i} ({sub}).", "response": f"1. Use {i} as a lamp\n2. Use it as a fan",
            "category": cat, "subdomain": sub, "source_id": src, "lang": "en", "answer_first": f"Answer: lamp {i}\nRationale: it glows", "dc_format": "x",
            "rationale": "it glows", "ideas": [f"Use {i} as a lamp", "Use it as a fan"], "input": f"A device {i} for {sub}."}


@pytest.fixture
def run_dir(tmp_path):
    s01 = tmp_path / "01_synthesis"
    s01.mkdir()
    seed = [_pair(0, "divergent", "energy", "a"), _pair(1, "divergent", "energy", "b"), _pair(2, "divergent", "energy", "c"),
            _pair(3, "reasoning", "energy", "d"), _pair(4, "reasoning", "energy", "e")]
    pq.write_table(pa.Table.from_pylist(seed), s01 / "seed_pairs.parquet")
    pq.write_table(pa.Table.from_pylist([_pair(5, "divergent", "computing", "f"), _pair(6, "reasoning", "computing", "g")]), s01 / "eval_heldout.parquet")
    texts = ["stores heat in molten salt", "harvests vibration with a piezo strip", "cools panels by evaporating rain", "charges from a bicycle dynamo",
             "tracks the sun with bimetal strips", "floats turbines on a reservoir", "recovers braking energy in lifts"]
    docs = [Document(d, f"Device {d}", f"A device that {t}.", "en", "energy", "test", "CC0") for d, t in zip("abcdefh", texts)]  # f is held out
    (s01 / "documents.jsonl").write_text("".join(json.dumps(asdict(d)) + "\n" for d in docs))
    return tmp_path


CFG = RunConfig(model="micro:llama", device="cpu", expert_epochs=1, expert_probe_new_tokens=6, lora_batch_size=2, lora_hard_weighting=False,
                qubo_team_size=2, team_docs_per_expert=2, synth_max_new_tokens=8, synth_max_retries=0, gen_batch_size=4)


def test_experts_then_team(run_dir):
    res = build_experts(CFG, run_dir, log=lambda *a: None)
    assert res["stats"]["trained"] == 2 and res["stats"]["per_category"] == {"divergent": 1, "reasoning": 1}
    rows = pq.read_table(run_dir / "02_experts" / "experts.parquet").to_pylist()
    for r in rows:
        card = json.loads((run_dir / "02_experts" / r["adapter"] / "expert_card.json").read_text())
        assert card["id"] == r["id"] and card["val_loss"] == r["val_loss"] and card["train_pairs"] == r["train_pairs"]
        assert (run_dir / "02_experts" / r["adapter"] / "adapter_model.safetensors").is_file()
    assert np.load(run_dir / "02_experts" / "similarity.npy").shape == (2, 2)
    assert [d.id for d in qubo.team_documents(run_dir, ["en"])] == list("abcdeh")  # the held-out document is never written for
    out = select_and_generate(CFG, run_dir, log=lambda *a: None)
    team = json.loads((run_dir / "03_qubo" / "team.json").read_text())
    assert len(team["members"]) == 2 and set(team["per_expert"]) == set(team["members"])
    assert all(v["prompts"] == 2 for v in team["per_expert"].values())  # team_docs_per_expert documents of the expert's subdomain each
    assert team["terms"]["size"] == 0 and team["energy"] == pytest.approx(sum(v for k, v in team["terms"].items() if k != "total"))
    assert (run_dir / "03_qubo" / "team_energy.png").is_file()


def test_array_subset_then_assemble(run_dir):
    "An array task trains one expert into the bank (no manifest, no stage outputs); stage 03 refuses an incomplete bank, names the gap."
    env_args = ["-p", "model=micro:llama", "-p", "device=cpu", "-p", "expert_epochs=1", "-p", "expert_probe_new_tokens=6", "-p", "lora_batch_size=2"]
    r = cli("experts", "--run-dir", run_dir, "--list", *env_args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["0 divergent.energy 2 train / 1 val pairs", "1 reasoning.energy 1 train / 1 val pairs"]
    r = cli("experts", "--run-dir", run_dir, "--expert", "1", *env_args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["trained_now"] == ["reasoning.energy"]
    assert load_profile(run_dir, "reasoning.energy") and not load_profile(run_dir, "divergent.energy")
    assert not (run_dir / "manifest.json").exists() and not (run_dir / "02_experts" / "experts.parquet").exists()
    # called from Python, the stage behaves as the pipeline does: it assembles what the bank has, then raises while an expert is missing
    with pytest.raises(StageIncomplete, match=r"^experts not in the bank yet: divergent.energy$") as gap:
        build_experts(CFG, run_dir, index="1", log=lambda *a: None)  # the same settings as the task: found current, assembled
    res = gap.value.result
    assert res["trained_now"] == [] and res["already_current"] == ["reasoning.energy"] and res["stats"]["missing"] == ["divergent.energy"]
    assert pq.read_table(run_dir / "02_experts" / EXPERTS_TABLE).column("trained").to_pylist() == [False, True]
    with pytest.raises(StageIncomplete):  # the registry's entry, as a notebook's run cell calls it: the metrics are recorded all the same
        STAGE_BY_ID["02"].run_and_record(replace(CFG, expert_index="1"), run_dir, log=lambda *a: None)
    assert Manifest(run_dir).stage("02")["metrics"]["missing"] == ["divergent.energy"]
    with pytest.raises(RuntimeError, match=r"not trained yet: 0 \(divergent.energy\)"):
        load_experts(run_dir)


def test_experts_in_two_processes_equal_one_process(run_dir, tmp_path):
    "Issue 23: expert_processes trains the bank's experts N at a time, one worker process each (one GPU each on CUDA)."
    import shutil
    from safetensors.torch import load_file
    other = tmp_path / "two"
    shutil.copytree(run_dir / "01_synthesis", other / "01_synthesis")
    one = build_experts(CFG, run_dir, log=lambda *a: None)
    two = build_experts(replace(CFG, expert_processes=2), other, log=lambda *a: None)
    assert sorted(two["trained_now"]) == sorted(one["trained_now"]) == ["divergent.energy", "reasoning.energy"]
    logs = sorted((other / "02_experts" / ".bank" / ".launch").glob("worker-*.log"))
    by_worker = [json.loads(next(l for l in reversed(p.read_text().splitlines()) if l.startswith('{"cells"')))["trained_now"] for p in logs]
    assert sorted(by_worker) == [["divergent.energy"], ["reasoning.energy"]]  # each worker trained its share, the parent none
    for eid in one["trained_now"]:
        a, b = load_profile(run_dir, eid), load_profile(other, eid)
        assert a["fingerprint"] == b["fingerprint"] and abs(a["val_loss"] - b["val_loss"]) < 1e-5
        wa = load_file(run_dir / "02_experts" / ".bank" / "adapters" / eid / "adapter_model.safetensors")
        wb = load_file(other / "02_experts" / ".bank" / "adapters" / eid / "adapter_model.safetensors")
        assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5
