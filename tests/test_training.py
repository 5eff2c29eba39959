"""End-to-end: `wam train` / `wam eval` as subprocesses, resume after an interruption, both agents' contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wam.io.metrics import read_jsonl

TINY_WAM = [  # the default agent (wamq), tiny
    "--wamq.dim",
    "16",
    "--wamq.heads",
    "2",
    "--wamq.mlp-hidden",
    "32",
    "--wamq.batch-size",
    "2",
]
FAST = [
    "--env",
    "metaworld/reach-v3",
    "--obs",
    "state",
    "--max-episode-steps",
    "15",
    "--prefill",
    "10",
    "--train-ratio",
    "8",
    "--eval-episodes",
    "1",
    "--eval-every",
    "1000",
    "--log-every",
    "10",
    "--checkpoint-every",
    "20",
    "--no-progress",
]


def wam(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the wam CLI in a subprocess and fail with its output if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "wam.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_train_then_eval_then_resume(tmp_path: Path):
    run = tmp_path / "run"
    every_40 = [("40" if prev == "--eval-every" else flag) for prev, flag in zip([None, *FAST], FAST)]
    out = wam("train", *every_40, *TINY_WAM, "--steps", "40", "--out", str(run))
    assert "final: success" in out.stdout and f"curves: {run / 'curves.png'}" in out.stdout
    for name in (
        "config.json",
        "metrics.jsonl",
        "eval.jsonl",
        "final/model.safetensors",
        "final/config.json",
        "checkpoint/COMPLETE",
        "curves.png",
    ):
        assert (run / name).exists(), name
    metrics = read_jsonl(run / "metrics.jsonl")
    assert metrics[-1]["charts/updates"] > 0 and "loss/dyn" in metrics[-1]
    assert read_jsonl(run / "eval.jsonl")[-1]["env_steps"] == 40
    # The replay holds one row per env step plus each finished episode's final observation (15-step episodes).
    assert json.loads((run / "checkpoint" / "replay" / "replay.json").read_text())["count"] == [40 + 40 // 15]

    ev = wam("eval", str(run), "--episodes", "1")
    assert "success" in ev.stdout and "deterministic policy" in ev.stdout
    assert "stochastic policy" in wam("eval", str(run), "--episodes", "1", "--stochastic", "--threads", "2").stdout
    no_plan = subprocess.run(
        [sys.executable, "-m", "wam.cli.main", "eval", str(run), "--episodes", "1", "--plan"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_plan.returncode != 0 and "--plan needs a WAM agent with box actions" in no_plan.stderr

    # Extend the finished run's budget, in a moved copy: resume continues the counters and replay there.
    original, run = run, tmp_path / "moved"
    shutil.copytree(original, run)
    updates_before = json.loads((run / "checkpoint" / "counters.json").read_text())["updates"]
    wam("train", "--resume", str(run), "--extend-to", "70")
    assert read_jsonl(original / "eval.jsonl")[-1]["env_steps"] == 40  # the original is untouched
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 70
    counters = json.loads((run / "checkpoint" / "counters.json").read_text())
    assert counters["env_steps"] == 70 and counters["updates"] > updates_before
    evaluated = [r["env_steps"] for r in read_jsonl(run / "eval.jsonl")]
    assert evaluated[-1] == 70 and evaluated == sorted(set(evaluated))  # the 40-step evaluation is not repeated
    shrink = subprocess.run(
        [sys.executable, "-m", "wam.cli.main", "train", "--resume", str(run), "--extend-to", "50"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shrink.returncode != 0 and "can only grow" in shrink.stderr + shrink.stdout


TINY_IMAGINATION_WAM = [
    "--agent",
    "wam",
    "--wam.size",
    "tiny",
    "--wam.batch-size",
    "2",
    "--wam.seq-len",
    "4",
    "--wam.imag-starts",
    "4",
    "--wam.horizon",
    "2",
]


@pytest.mark.parametrize("agent", ["wamq", "wam"])
def test_decoupled_shortcut_reaches_the_model(tmp_path: Path, agent: str):
    run = tmp_path / "dec"
    flags = TINY_WAM if agent == "wamq" else TINY_IMAGINATION_WAM
    wam("train", *FAST, *flags, "--coupling", "decoupled", "--steps", "20", "--out", str(run))
    assert json.loads((run / "config.json").read_text())["train"][agent]["coupling"] == "decoupled"
    saved = json.loads((run / "final" / "config.json").read_text())["config"]
    assert saved.get("config", saved)["coupling"] == "decoupled"  # wamq saves {config, spec}
    if agent == "wam":  # the imagination WAM can plan in its model (MPPI)
        mppi = ["--mppi.horizon", "2", "--mppi.samples", "4", "--mppi.elites", "2", "--mppi.policy-samples", "1"]
        planned = wam("eval", str(run), "--episodes", "1", "--plan", *mppi, "--mppi.iterations", "1")
        assert "success" in planned.stdout


def test_the_coupling_shortcut_refuses_an_agent_without_coupling(tmp_path: Path):
    from wam.cli.train import TrainArgs

    with pytest.raises(ValueError, match="agent 'sac' has none"):
        TrainArgs(agent="sac", coupling="decoupled").to_config()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "metaworld/rech-v3"], "did you mean 'metaworld/reach-v3'"),
        (["--extend-to", "10"], "--extend-to needs --resume"),
        (["--obs", "lidar"], "unknown observation key"),
        (["--agent", "dremer"], "unknown agent"),
    ],
)
def test_bad_flags_fail_with_a_clear_message(tmp_path: Path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "wam.cli.main", "train", *FAST, "--steps", "5", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and message in proc.stderr + proc.stdout


def short_reach_run(out: Path, checkpoint_every: int):
    """A 60-step reach-v3 run of a tiny agent, with an evaluation every 20 steps (episodes of 15 steps)."""
    from wam.agents.wam_agent import WAMAgentConfig
    from wam.training.config import TrainConfig

    return TrainConfig(
        env="metaworld/reach-v3",
        max_episode_steps=15,
        steps=60,
        prefill=10,
        train_ratio=8,
        eval_episodes=1,
        eval_every=20,
        checkpoint_every=checkpoint_every,
        log_every=10,
        progress=False,
        out=str(out),
        wam=WAMAgentConfig(size="tiny", batch_size=2, seq_len=4, imag_starts=4, horizon=2),
    )


def test_a_run_killed_after_an_evaluation_does_not_repeat_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from wam.training.online import Trainer, train

    cfg = short_reach_run(tmp_path / "run", checkpoint_every=20)
    save = Trainer._checkpoint

    def killed_at_40(self: Trainer) -> None:
        if self.counters["env_steps"] >= 40:
            raise KeyboardInterrupt  # the process dies before the step-40 checkpoint lands
        save(self)

    monkeypatch.setattr(Trainer, "_checkpoint", killed_at_40)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert [r["env_steps"] for r in read_jsonl(tmp_path / "run" / "eval.jsonl")] == [0, 20, 40]
    monkeypatch.setattr(Trainer, "_checkpoint", save)
    train(cfg, resume=True)  # continues from the step-20 checkpoint, written after the step-20 evaluation
    # ... and drops the lost run's step-40 evaluation, which it then makes again
    assert [r["env_steps"] for r in read_jsonl(tmp_path / "run" / "eval.jsonl")] == [0, 20, 40, 60]


@pytest.mark.parametrize(
    "run_config, message",
    [(None, "pass the run folder"), ('{"x', "is not valid JSON"), ('{"x": 1}', "has no 'train' section")],
)
def test_eval_explains_a_missing_or_broken_run_config(tmp_path: Path, run_config, message):
    from wam.cli.evaluate import _find_weights
    from wam.io.pretrained import CheckpointError

    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "model.safetensors").write_bytes(b"")
    if run_config is not None:
        (tmp_path / "config.json").write_text(run_config)
    with pytest.raises(CheckpointError, match=message):
        _find_weights(tmp_path)
    (tmp_path / "config.json").write_text('{"train": {"env": "toy/reach2d"}}')
    assert _find_weights(tmp_path) == (tmp_path / "final", {"train": {"env": "toy/reach2d"}})


def test_a_signal_stops_training_with_a_checkpoint_of_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import os
    import signal

    from wam.training.online import Trainer, train
    from wam.training.signals import TrainingStopped

    cfg = short_reach_run(tmp_path / "run", checkpoint_every=1000)
    evaluate = Trainer._evaluate

    def terminated_after_step_20(self: Trainer, progress):
        summary = evaluate(self, progress)
        if self.counters["env_steps"] == 20:
            os.kill(os.getpid(), signal.SIGTERM)
        return summary

    monkeypatch.setattr(Trainer, "_evaluate", terminated_after_step_20)
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match="wam train --resume") as stopped:
        train(cfg)
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the handler is restored
    counters = json.loads((tmp_path / "run" / "checkpoint" / "counters.json").read_text())
    assert (
        counters["env_steps"] == stopped.value.env_steps > 20
    )  # no scheduled checkpoint before 1000: this one is the stop's
    stopped_at = counters["env_steps"]
    (tmp_path / "run" / "episodes.jsonl").open("a").write(
        '{"step": 59, "return": -1.0}\n'
    )  # as if logged after the stop
    monkeypatch.setattr(Trainer, "_evaluate", evaluate)
    train(cfg, resume=True)
    assert [r["env_steps"] for r in read_jsonl(tmp_path / "run" / "eval.jsonl")] == [0, 20, 40, 60]
    # One row per training episode (15 steps each); the resumed run dropped what its checkpoint does not contain.
    episodes = read_jsonl(tmp_path / "run" / "episodes.jsonl")
    assert [r["length"] for r in episodes] == [15] * len(episodes) and -1.0 not in [r["return"] for r in episodes]
    assert [r["step"] for r in episodes if r["step"] <= stopped_at] == [15, 30][: stopped_at // 15]
    assert episodes[-1]["step"] > stopped_at and all(np.isfinite(r["return"]) for r in episodes)


@pytest.fixture
def python_ctrl_c():
    """Python's own SIGINT handler while the test runs: a shell starts background jobs with SIGINT ignored, and
    ``stop_requests`` rightly restores whatever handler it found."""
    import signal

    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, outer)


def test_stop_requests_defer_repeated_sigterms_but_not_a_second_ctrl_c(python_ctrl_c):
    import os
    import signal

    from wam.training.signals import stop_requests

    with stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # e.g. pkill beside a parent forwarding its own SIGTERM: still deferred
        assert stop == {"signum": signal.SIGTERM}
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after a stop request quits at once
    with stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop == {"signum": signal.SIGINT}
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_sigterm_to_wam_train_exits_with_a_resume_hint(tmp_path: Path):
    import signal
    import time

    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wam.cli.main",
            "train",
            *FAST,
            *TINY_WAM,
            "--steps",
            "100000",
            "--checkpoint-every",
            "100000",
            "--out",
            str(run),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").is_file() or not read_jsonl(run / "metrics.jsonl"):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert f"continue with: wam train --resume {run}" in err
    assert (
        json.loads((run / "checkpoint" / "counters.json").read_text())["env_steps"]
        >= read_jsonl(run / "metrics.jsonl")[-1]["step"]
    )


def test_progress_bar_shows_an_evaluation_under_way_then_its_result():
    from wam.training.progress import TrainProgress

    progress = TrainProgress(total=10, enabled=False)
    progress.set_evaluating(3, 10)
    assert progress._progress.tasks[0].fields["success"] == "evaluating 3/10"
    progress.set_eval(0.5, 12.0)
    assert progress._progress.tasks[0].fields["success"] == "50%"
