"""Benchmark scripts' bookkeeping (no training): which DMC runs are trained again, how the DMC report judges
closeness, the side-by-side throughput measurement, and the provenance note of continued MetaWorld runs."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str, monkeypatch, **paths: Path):
    """``benchmarks/<name>.py`` imported as a module (for the test's duration only), with the module-level paths
    named in ``paths`` redirected (e.g. ``RUNS=tmp_path / "runs"``)."""
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    for attr, path in paths.items():
        monkeypatch.setattr(module, attr, path)
    return module


@pytest.fixture
def dv3_dmc(tmp_path, monkeypatch):
    """``benchmarks/dv3_dmc.py`` as a module, with its runs and results folders under ``tmp_path``."""
    return load_script("dv3_dmc", monkeypatch, RUNS=tmp_path / "runs", RESULTS=tmp_path / "results")


def fake_run(runs: Path, name: str) -> Path:
    """A run folder as ``wam train`` leaves it mid-run: logs and a complete checkpoint."""
    run = runs / name
    (run / "checkpoint").mkdir(parents=True)
    (run / "eval.jsonl").write_text('{"env_steps": 0, "eval/return": 1.0}\n')
    (run / "checkpoint" / "COMPLETE").write_text("ok\n")
    (run / "checkpoint" / "counters.json").write_text(json.dumps({"env_steps": 2500}))
    (run / "checkpoint" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    return run


def test_dmc_variant_adds_its_flags_to_the_size_preset(dv3_dmc, tmp_path):
    plain = dv3_dmc.protocol_flags("cartpole-swingup", 0, "size1m", None, 100, tmp_path)
    ablation = dv3_dmc.protocol_flags("cartpole-swingup", 0, "size1m", "noactnorm", 100, tmp_path)
    assert "--dreamerv3.no-action-norm" not in plain
    assert ablation == plain + dv3_dmc.VARIANTS["noactnorm"]
    assert plain[plain.index("--dreamerv3.units") + 1] == "64"  # the size1m preset


@pytest.mark.parametrize(
    "variant, changes",
    [("noactnorm", {"action_norm": False}), ("noactnorm-backprop", {"action_norm": False, "actor_grad": "backprop"})],
)
def test_dmc_variant_flags_reach_the_dreamerv3_config(dv3_dmc, tmp_path, variant, changes):
    import tyro

    from wam.cli.train import TrainArgs

    def parsed(name):
        return tyro.cli(TrainArgs, args=dv3_dmc.protocol_flags("cartpole-swingup", 0, "size1m", name, 100, tmp_path))

    plain, ablation = parsed(None).dreamerv3, parsed(variant).dreamerv3
    assert ablation == plain.replace(**changes)
    assert plain.action_norm and plain.actor_grad == "reinforce"  # the defaults are the 2024/2025 reference's


def test_a_run_whose_committed_curve_is_complete_is_not_trained_again(dv3_dmc, monkeypatch):
    # a fresh machine has no runs/, only the curves committed to benchmarks/results/
    dv3_dmc.RESULTS.mkdir()
    curve = dv3_dmc.RESULTS / "reacher-easy_size1m_s0.jsonl"
    curve.write_text("".join(json.dumps({"step": s, "eval/return": 1.0}) + "\n" for s in (0, 25_000, 50_000)))
    partial = dv3_dmc.RESULTS / "cartpole-swingup_size1m_s0.jsonl"
    partial.write_text(json.dumps({"step": 0, "eval/return": 1.0}) + "\n")
    started = []
    monkeypatch.setattr(dv3_dmc, "run_to_end", lambda cmd, timeout_s: started.append(cmd) or 0)
    dv3_dmc.run_one("reacher-easy", 0, "size1m", None, 50_000, None)
    assert started == [] and "50000" in curve.read_text(), "a finished run was started again over its curve"
    dv3_dmc.run_one("cartpole-swingup", 0, "size1m", None, 50_000, None)
    assert len(started) == 1, "an unfinished run must still be trained"


def test_a_variant_run_copies_its_curve_to_its_own_results_file(dv3_dmc, tmp_path, monkeypatch):
    fake_run(dv3_dmc.RUNS, "cartpole-swingup_size1m-noactnorm_s0")
    results = tmp_path / "results"
    results.mkdir()
    (results / "cartpole-swingup_size1m_s0.jsonl").write_text("plain\n")
    monkeypatch.setattr(dv3_dmc, "run_to_end", lambda cmd, timeout_s: 0)
    monkeypatch.setattr(dv3_dmc, "RESULTS", results)
    dv3_dmc.run_one("cartpole-swingup", 0, "size1m", "noactnorm", 50_000, None)
    assert (results / "cartpole-swingup_size1m_s0.jsonl").read_text() == "plain\n"
    assert (results / "cartpole-swingup_size1m-noactnorm_s0.jsonl").is_file()


def test_dmc_closeness_follows_the_fixed_rule(dv3_dmc):
    steps = np.array([10_000, 20_000])
    published = np.array([[10.0, 400.0], [30.0, 600.0]])  # 2 seeds × 2 points
    assert dv3_dmc.closeness(published, steps, {}) == "no evaluation yet"
    assert "in progress (reached 10k of 20k frames); 1 of its 1 points" in dv3_dmc.closeness(
        published, steps, {10_000: [20.0]}
    )
    assert "**within**" in dv3_dmc.closeness(published, steps, {10_000: [50.0], 20_000: [500.0]})
    assert "**above**" in dv3_dmc.closeness(published, steps, {20_000: [700.0]})
    assert "**below (a bug to look for)**" in dv3_dmc.closeness(published, steps, {20_000: [100.0, 200.0]})


@pytest.fixture
def throughput(tmp_path, monkeypatch):
    """``benchmarks/throughput.py`` as a module, writing under ``tmp_path``."""
    return load_script(
        "throughput", monkeypatch, RESULTS=tmp_path, OUT=tmp_path / "throughput.jsonl", TABLE=tmp_path / "throughput.md"
    )


def test_throughput_builds_agents_from_the_suite_flags_and_sizes_the_protocol(throughput, tmp_path):
    from wam.bench.suite import load_suite

    suite = load_suite("toy", SCRIPTS / "suites")
    trainer = throughput.build_trainer(suite, "wam-decoupled", "toy-reach2d", tmp_path / "run", "cpu", capacity=500)
    try:
        assert trainer.cfg.agent == "wam" and trainer.cfg.wam.coupling == "decoupled"
        assert trainer.cfg.train_ratio == suite.train_ratio_of("wam-decoupled") and trainer.cfg.threads == 1
        rate, lengths = throughput.fill(trainer, 120)
        assert rate > 0 and lengths == [50, 50]  # toy episodes last 50 steps
        assert len(trainer.replay) == 120
        assert throughput.update_seconds(trainer, 1) > 0
        act = throughput.act_mean_ms(trainer, 5)
        assert 0 < act["act_ms_p50"] <= act["act_ms_p95"]
        out = throughput.derive(
            suite,
            "wam-decoupled",
            trainer,
            env_rate=1000.0,
            act={"act_ms_mean_with_env": 2.0},
            update_s=0.5,
            episode=50.0,
        )
    finally:
        trainer.close()
    B, T = trainer.batch_size, trainer.seq_len
    assert out["updates_per_100k"] == pytest.approx(100_000 * suite.train_ratio_of("wam-decoupled") / (B * T))
    # 100k × (1 ms env + 1 ms act) + updates × 0.5 s; evaluation adds its episodes at 2 ms a step.
    train_s = 100_000 * 0.002 + out["updates_per_100k"] * 0.5
    assert out["hours_per_100k_train"] == pytest.approx(train_s / 3600)
    eval_steps = (100_000 // suite.eval_every) * suite.eval_episodes * 50
    assert out["hours_per_100k_with_eval"] == pytest.approx((train_s + eval_steps * 0.002) / 3600)


def test_throughput_table_divides_by_sac_and_reads_the_runs_peak_memory(throughput, tmp_path):
    runs = tmp_path / "s" / "wam" / "t"
    runs.mkdir(parents=True)
    for seed, peak in enumerate([500.0, 600.0]):
        (runs / f"seed{seed}.throughput.json").write_text(json.dumps({"peak_memory_mb": peak}))
    row = dict(suite="s", task="t", machine="m", device="cpu", env_steps_per_s=1000.0, act_ms_mean=1.0, act_ms_p50=1.0)
    row.update(act_ms_p95=2.0, updates_per_100k=100_000, hours_per_100k_train=0.9, rounds=3, when="now")
    wam = {**row, "agent": "wam", "seconds_per_update": 0.025, "hours_per_100k_with_eval": 1.0}
    sac = {**row, "agent": "sac", "seconds_per_update": 0.0125, "hours_per_100k_with_eval": 0.4}
    throughput.write_table([wam, sac, {**sac, "machine": "other", "hours_per_100k_with_eval": 0.1}])
    table = (tmp_path / "throughput.md").read_text()
    assert (
        "| s | t | m | cpu | wam | 1000 | 1.0 / 1.0 / 2.0 | 0.025 | 40 | 100000 | 0.90 | 1.00 | 2.50 | 550 |" in table
    )
    assert "| sac | 1000 | 1.0 / 1.0 / 2.0 | 0.013 | 80 | 100000 | 0.90 | 0.40 | 1.00 | – |" in table


def test_wam_state_note_groups_continued_runs(monkeypatch):
    wam_state = load_script("wam_state", monkeypatch)
    records = [
        {
            "name": "wam_reach-v3_s0",
            "seeded_from": "runs/bench/quick-state/wam/metaworld-reach-v3/seed0",
            "replay_capacity": 50_000,
        },
        {
            "name": "wam_reach-v3_s1",
            "seeded_from": "runs/bench/quick-state/wam/metaworld-reach-v3/seed1",
            "replay_capacity": 50_000,
        },
        {"name": "wam_push-v3_s0", "seeded_from": "elsewhere/run7", "replay_capacity": 10_000},
        {"name": "wam_reach-v3_s2"},
    ]  # trained from scratch: not listed
    assert wam_state.seeded_note(records[3:]) == []
    note = wam_state.seeded_note(records)[1]
    assert "from `runs/bench/quick-state` (`wam_reach-v3_s0`, `wam_reach-v3_s1`), replay capacity 50,000 rows" in note
    assert "from `elsewhere/run7` (`wam_push-v3_s0`), replay capacity 10,000 rows" in note
    assert "s2" not in note


def test_training_episodes_are_binned_like_the_published_curves_and_only_where_logged(dv3_dmc):
    borders = np.array([0, 10_000, 20_000, 30_000])  # frames; 500-decision episodes = 1000 frames at repeat 2

    def episodes(first_step, returns):
        return [{"step": first_step + 500 * i, "return": r, "length": 500} for i, r in enumerate(returns)]

    # logged from the start: 10 episodes per 10k-frame bin, each bin the mean of the episodes that ended in it
    full = episodes(500, [1.0] * 10 + [3.0] * 10 + [5.0, 7.0] * 5)
    assert dv3_dmc.binned_training_scores(full, borders) == {10_000: 1.0, 20_000: 3.0, 30_000: 6.0}
    # a run still training (its last episode ended at 22k frames) has not filled its last bin yet; a finished run
    # whose episodes are offset from the bins (the last one ends at 29.5k frames) has, as no other episode ends there
    assert dv3_dmc.binned_training_scores(full[:22], borders) == {10_000: 1.0, 20_000: 3.0}
    assert dv3_dmc.binned_training_scores(episodes(250, [1.0] * 30), borders)[30_000] == 1.0
    # a log that begins mid-run (first episode began at 6k frames) skips the bin it only partly covers
    late = episodes(3_500, [2.0] * 4 + [4.0] * 10)  # end at 7k-10k frames, then 11k-20k
    assert dv3_dmc.binned_training_scores(late, borders) == {20_000: 4.0}
    assert dv3_dmc.binned_training_scores([], borders) == {}


def test_faults_tells_a_clear_error_from_a_traceback(monkeypatch):
    import subprocess

    faults = load_script("faults", monkeypatch)

    def ended(code: int, err: str):
        return subprocess.CompletedProcess([], code, "", err)

    assert faults.outcome(ended(0, ""))["outcome"] == "recovered"
    clear = faults.outcome(ended(1, "some warning\nwam: error: cannot read x; collect it again\n"))
    assert clear == {"outcome": "clear error", "message": "wam: error: cannot read x; collect it again"}
    assert faults.outcome(ended(1, "Traceback (most recent call last):\n  ...\nValueError: x"))["outcome"] == "DEFECT"
    assert faults.outcome(ended(-9, ""))["outcome"] == "DEFECT"
