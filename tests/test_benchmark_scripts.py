"""Benchmark scripts' bookkeeping (no training): stashing unfinished DMC runs for the next session."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def dv3_dmc(tmp_path, monkeypatch):
    """``benchmarks/dv3_dmc.py`` as a module, with its runs and stash folders under ``tmp_path``."""
    spec = importlib.util.spec_from_file_location("dv3_dmc_under_test", SCRIPTS / "dv3_dmc.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(module, "STASH", tmp_path / "stash")
    return module


def fake_run(runs: Path, name: str, finished: bool = False, checkpoint: bool = True) -> Path:
    """A run folder as ``wam train`` leaves it: logs, and a complete checkpoint and/or ``final/``."""
    run = runs / name
    (run / "checkpoint").mkdir(parents=True)
    (run / "eval.jsonl").write_text('{"env_steps": 0, "eval/return": 1.0}\n')
    if checkpoint:
        (run / "checkpoint" / "COMPLETE").write_text("ok\n")
        (run / "checkpoint" / "counters.json").write_text(json.dumps({"env_steps": 2500}))
        (run / "checkpoint" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    if finished:
        (run / "final").mkdir()
    return run


def test_stash_packs_unfinished_runs_and_run_unpacks_them(dv3_dmc, tmp_path, monkeypatch):
    run = fake_run(dv3_dmc.RUNS, "cartpole-swingup_size1m_s0")
    fake_run(dv3_dmc.RUNS, "reacher-easy_size1m_s0", checkpoint=False)  # stopped before its first checkpoint
    dv3_dmc.stash()
    assert sorted(p.name for p in dv3_dmc.STASH.iterdir()) == ["cartpole-swingup_size1m_s0.tar.gz"]

    original = (run / "checkpoint" / "weights.bin").read_bytes()
    (dv3_dmc.RUNS / "cartpole-swingup_size1m_s0").rename(tmp_path / "gone")  # a fresh checkout has no runs/
    started = []
    monkeypatch.setattr(dv3_dmc, "run_to_end", lambda cmd, timeout_s: started.append(cmd) or 0)
    monkeypatch.setattr(dv3_dmc, "RESULTS", tmp_path / "results")
    dv3_dmc.run_one("cartpole-swingup", 0, "size1m", 50_000, None)
    assert (run / "checkpoint" / "weights.bin").read_bytes() == original
    assert "--resume" in started[0], "an unpacked run must continue from its checkpoint, not start over"


def test_stash_removes_the_archive_of_a_finished_run(dv3_dmc):
    run = fake_run(dv3_dmc.RUNS, "cartpole-swingup_size1m_s0")
    dv3_dmc.stash()
    (run / "final").mkdir()
    dv3_dmc.stash()
    assert not any(dv3_dmc.STASH.iterdir())
