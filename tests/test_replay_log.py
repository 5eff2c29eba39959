"""Crash-safe replay: the log of rows added since the last checkpoint, read back after a kill, and a run that resumes
with every step it took before the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wam.data.replay import step_layout
from wam.data.replay_log import LOG_DIR, ReplayLog
from wam.envs.spec import EnvSpec
from wam.io.metrics import read_jsonl

SPEC = EnvSpec({"state": [3], "rgb": [4, 4, 3]}, 2, False)


def rows(n: int, num_envs: int = 2, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    layout = step_layout(SPEC)
    return [
        {k: (rng.random((num_envs, *shape)) * 200).astype(dtype) for k, (shape, dtype) in layout.items()}
        for _ in range(n)
    ]


def equal(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_logged_rows_come_back_exactly_and_a_cut_record_ends_them(tmp_path):
    log = ReplayLog(tmp_path, step_layout(SPEC), num_envs=2)
    steps = rows(5)
    log.start(10)
    for step in steps:
        log.append(step)
    log.close()
    assert equal(log.recover(10), steps) and equal(log.recover(12), steps[2:])
    segment = next((tmp_path / LOG_DIR).glob("seg-*.bin"))
    data = segment.read_bytes()
    segment.write_bytes(data[: 4 * log.record_bytes + 7])  # the kill cut the fifth record
    assert equal(log.recover(10), steps[:4])
    corrupt = bytearray(data)
    corrupt[2 * log.record_bytes + 3] ^= 0xFF  # a flipped byte in the third record
    segment.write_bytes(bytes(corrupt))
    assert equal(log.recover(10), steps[:2])


def test_a_new_segment_replaces_the_ones_a_checkpoint_covers(tmp_path):
    log = ReplayLog(tmp_path, step_layout(SPEC), num_envs=2)
    log.start(0)
    for step in rows(3):
        log.append(step)
    log.start(3)  # a checkpoint after three adds
    later = rows(2, seed=1)
    for step in later:
        log.append(step)
    log.close()
    assert [p.name for p in (tmp_path / LOG_DIR).iterdir()] == ["seg-000000000003.bin"]
    assert equal(log.recover(3), later) and equal(log.recover(0), later)
    one_env = ReplayLog(tmp_path / "other", step_layout(SPEC), num_envs=1)
    one_env.start(0)
    with pytest.raises(ValueError, match="record of"):
        one_env.append(rows(1)[0])  # two envs' rows into a one-env log
    one_env.close()


def short_run(out: Path, steps: int = 60):
    from wam.agents.wamq import WAMQConfig
    from wam.training.config import TrainConfig

    return TrainConfig(
        env="metaworld/reach-v3",
        agent="wamq",
        wamq=WAMQConfig(dim=16, heads=2, mlp_hidden=32, batch_size=2),
        max_episode_steps=15,
        steps=steps,
        prefill=10,
        train_ratio=6,
        eval_episodes=1,
        eval_every=20,
        checkpoint_every=20,
        log_every=10,
        progress=False,
        out=str(out),
    )


def test_a_crashed_run_resumes_with_every_step_it_took(tmp_path, monkeypatch):
    from wam.training.online import Trainer, train

    cfg = short_run(tmp_path / "run")
    crashed = {}
    step = Trainer._env_step

    def crash_at_33(self, roll, signum):
        if self.counters["env_steps"] == 33:  # no checkpoint since step 20, and the process dies (no cleanup)
            crashed.update(self.counters, replay={k: v.copy() for k, v in self.replay.data.items()})
            raise RuntimeError("killed")
        return step(self, roll, signum)

    monkeypatch.setattr(Trainer, "_env_step", crash_at_33)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg)
    monkeypatch.setattr(Trainer, "_env_step", step)
    trainer = Trainer(cfg)
    try:
        assert trainer.resume()
        c = trainer.counters
        assert c["env_steps"] == 33 and c["replay_adds"] == crashed["replay_adds"]
        n = int(crashed["replay_adds"])
        assert all(np.array_equal(trainer.replay.data[k][:, :n], v[:, :n]) for k, v in crashed["replay"].items())
        # the updates made after the step-20 checkpoint died with the process: they are due again
        assert c["updates"] < crashed["updates"] and c["updates"] + c["catch_up"] >= crashed["updates"] - 1
        assert c["next_eval"] == 40 and c["next_checkpoint"] == 40
        assert json.loads((tmp_path / "run" / "checkpoint" / "counters.json").read_text())["env_steps"] == 33
        trainer.run()
        # the lost updates were made again along the way: the run ends with the updates an uninterrupted one makes
        assert c["catch_up"] == 0 and c["updates"] == int((60 - cfg.prefill + 1) * cfg.train_ratio / 6)
    finally:
        trainer.close()
    assert [r["env_steps"] for r in read_jsonl(tmp_path / "run" / "eval.jsonl")] == [0, 20, 40, 60]


def test_sigkill_loses_no_collected_step(tmp_path):
    from wam.io.pretrained import config_from_dict
    from wam.training.config import TrainConfig
    from wam.training.online import Trainer

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "wam.cli.main", "train", "--env", "metaworld/reach-v3", "--obs", "state"]
    cmd += ["--max-episode-steps", "15", "--prefill", "10", "--train-ratio", "6", "--wamq.dim", "16"]
    cmd += ["--wamq.heads", "2", "--wamq.mlp-hidden", "32", "--wamq.batch-size", "2", "--steps", "100000"]
    cmd += ["--checkpoint-every", "50", "--eval-every", "100000", "--log-every", "10", "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # past the first checkpoint and into the next interval
        logged = read_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
        if logged and logged[-1]["step"] >= 80:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    segment = max((run / LOG_DIR).glob("seg-*.bin"))
    checkpointed = json.loads((run / "checkpoint" / "counters.json").read_text())
    log = ReplayLog(run, step_layout(EnvSpec({"state": [39]}, 4, False)), 1)
    logged_adds = int(segment.stem.removeprefix("seg-")) + segment.stat().st_size // log.record_bytes
    assert logged_adds > checkpointed["replay_adds"]  # the kill came after steps the checkpoint does not hold

    cfg = config_from_dict(TrainConfig, json.loads((run / "config.json").read_text())["train"])
    trainer = Trainer(cfg)
    try:
        assert trainer.resume()
        assert trainer.counters["replay_adds"] == logged_adds == len(trainer.replay)  # one env: one row per add
        assert trainer.counters["env_steps"] > checkpointed["env_steps"]
    finally:
        trainer.close()


def test_a_run_killed_before_its_first_checkpoint_keeps_its_steps(tmp_path, monkeypatch):
    from wam.training.online import Trainer, train

    cfg = short_run(tmp_path / "run")
    step, crashed = Trainer._env_step, {}

    def crash_at_15(self, roll, signum):
        if self.counters["env_steps"] == 15:
            crashed.update(self.counters)
            raise RuntimeError("killed")
        return step(self, roll, signum)

    monkeypatch.setattr(Trainer, "_env_step", crash_at_15)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoint").exists()
    monkeypatch.setattr(Trainer, "_env_step", step)
    trainer = Trainer(cfg)
    try:
        assert trainer.resume()  # nothing to load, but the 15 steps come back and the updates are due again
        c = trainer.counters
        assert c["env_steps"] == 15 and c["replay_adds"] == crashed["replay_adds"] == len(trainer.replay)
        assert c["updates"] == 0 and c["catch_up"] >= crashed["updates"]
        assert c["next_eval"] == 20  # the step-0 evaluation the killed process logged is kept
    finally:
        trainer.close()
    assert [r["env_steps"] for r in read_jsonl(tmp_path / "run" / "eval.jsonl")] == [0]
