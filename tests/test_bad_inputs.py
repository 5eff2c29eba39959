"""The bad-input table: each row is a mistake a user can make (a flag, a config or suite file, an observation, an
environment name, a dataset or checkpoint folder) and the one message that must answer it, never a traceback.

Flag values that a config dataclass refuses are reported by tyro inside its error box (the message wrapped over a
few lines); everything else ends as one ``wam: error: ...`` line. Rows run in-process and take seconds in all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import wam
from wam.agents.wamq import WAMQAgent, WAMQConfig
from wam.bench.suite import SuiteError, load_suite
from wam.cli.main import main
from wam.data.episodes import EpisodeDataset
from wam.data.lerobot import LeRobotWriter
from wam.data.lerobot_schema import DatasetError
from wam.data.replay import Replay
from wam.data.sequences import SequenceSampler
from wam.data.synthetic import random_batch
from wam.envs.config import EnvConfig
from wam.envs.spec import EnvSpec
from wam.io.pretrained import CheckpointError

COLLECT = ["data", "collect", "--env", "metaworld/reach-v3", "--out", "{tmp}/d"]
# (id, argv with {tmp} for a scratch folder, the fragment the error must contain)
CLI = [
    ("env-suite", ["train", "--env", "nosuch/task"], "unknown environment suite 'nosuch' Valid suites:"),
    ("env-task", ["train", "--env", "metaworld/nosuch-v3"], "did you mean 'metaworld/push-v3'"),
    ("env-form", ["train", "--env", "reach-v3"], "must look like '<suite>/<task>', e.g. 'metaworld/reach-v3'"),
    ("obs-key", ["train", "--obs", "bogus"], "unknown observation key(s) ['bogus']; valid keys are"),
    ("agent", ["train", "--agent", "nosuch"], "unknown agent 'nosuch' Valid agents:"),
    ("steps", ["train", "--steps", "0"], "steps=0 must be >= 1"),
    ("train-ratio", ["train", "--train-ratio", "0"], "train_ratio=0.0 must be > 0"),
    ("prefill", ["train", "--prefill", "-1"], "prefill=-1 must be >= 0"),
    ("device", ["train", "--device", "tpu"], "device='tpu'; use auto, cpu or cuda"),
    ("num-envs", ["train", "--num-envs", "0"], "num_envs=0 must be >= 1"),
    ("eval-every", ["train", "--eval-every", "0"], "eval_every=0 must be >= 1"),
    ("log-every", ["train", "--log-every", "0"], "log_every=0 must be >= 1"),
    ("checkpoint-every", ["train", "--checkpoint-every", "0"], "checkpoint_every=0 must be >= 1"),
    ("image-size", ["train", "--image-size", "0"], "image_size=0 is out of range; use 8..1024"),
    ("action-repeat", ["train", "--action-repeat", "0"], "action_repeat=0 must be >= 1"),
    ("episode-steps", ["train", "--max-episode-steps", "0"], "max_episode_steps=0 must be >= 1 or None"),
    ("reward-type", ["train", "--reward-type", "foo"], "reward_type='foo'; use 'dense' or 'sparse'"),
    ("camera", ["train", "--camera", "nosuch", "--steps", "5", "--out", "{tmp}/run"], "unknown camera 'nosuch'"),
    ("demo-fraction", ["train", "--demos", "{tmp}/d", "--demo-fraction", "1.5"], "demo_fraction=1.5 must be in (0, 1)"),
    ("demos-missing", ["train", "--demos", "{tmp}/d", "--steps", "5", "--out", "{tmp}/run"], "no dataset directory"),
    ("resume-missing", ["train", "--resume", "{tmp}/none"], "cannot resume: no config.json in"),
    ("sac-pixels", ["train", "--agent", "sac", "--obs", "rgb", "--out", "{tmp}/run"], "SAC reference reads vector"),
    ("wamq-coupling", ["train", "--wamq.coupling", "foo"], "coupling='foo'; choose one of ('coupled', 'decoupled')"),
    ("wamq-q-kind", ["train", "--wamq.q-kind", "foo"], "q_kind='foo'; choose one of ('twohot', 'scalar')"),
    ("wamq-dyn-target", ["train", "--wamq.dyn-target", "foo"], "dyn_target='foo'; choose one of ('sg', 'ema')"),
    ("wamq-dim", ["train", "--wamq.dim", "30"], "dim=30 must be a positive multiple of heads=4"),
    ("wamq-seq-len", ["train", "--wamq.seq-len", "1"], "seq_len=1 >= 2"),
    ("wamq-num-q", ["train", "--wamq.num-q", "1"], "num_q=1 must be >= 2"),
    ("wamq-gamma", ["train", "--wamq.gamma", "0"], "need 0 < gamma (0.0) <= 1"),
    ("wamq-std", ["train", "--wamq.min-std", "2"], "need 0 < min_std (2.0) < max_std (1.0)"),
    ("wamq-eval-tau", ["train", "--wamq.eval-tau", "2"], "eval_tau=2.0 must be in [0, 1]"),
    ("wamq-lr", ["train", "--wamq.lr", "0"], "init_alpha, lr and grad_clip must be > 0"),
    ("wamq-alpha-pg", ["train", "--wamq.alpha-pg", "-1"], "alpha_pg=-1.0 must be >= 0"),
    ("wam-coupling", ["train", "--wam.coupling", "foo"], "coupling='foo'; choose one of"),
    ("wam-size", ["train", "--wam.size", "huge"], "size='huge'; choose one of ['tiny', 'small', 'base', 'large']"),
    ("sac-batch", ["train", "--sac.batch-size", "0"], "batch_size, hidden, layers must be >= 1"),
    ("eval-missing", ["eval", "{tmp}/none"], "no saved agent under"),
    ("collect-no-expert", ["data", "collect", "--env", "toy/reach2d", "--out", "{tmp}/d"], "has no scripted expert"),
    ("collect-episodes", [*COLLECT, "--episodes", "0"], "episodes=0 must be >= 1"),
    ("collect-obs", [*COLLECT, "--obs", "bogus"], "obs='bogus': give comma-separated"),
    ("collect-noise", [*COLLECT, "--noise", "-1"], "noise=-1.0 must be >= 0"),
    ("collect-image", [*COLLECT, "--image-size", "0"], "image_size=0 is out of range"),
    ("plot-missing", ["plot", "{tmp}/none"], "is not a folder; pass run folders written by `wam train --out`"),
    ("bench-suite", ["bench", "nosuch"], "unknown suite 'nosuch' Suites in"),
    ("bench-agent", ["bench", "state-v4", "--agents", "nosuch", "--dry-run"], "suite 'state-v4' has no agent 'nosuch'"),
    ("bench-task", ["bench", "state-v4", "--tasks", "nosuch", "--dry-run"], "suite 'state-v4' has no task 'nosuch'"),
    ("bench-seeds", ["bench", "state-v4", "--seeds", "0", "--dry-run"], "seeds=0 must be >= 1"),
    ("bench-jobs", ["bench", "state-v4", "--jobs", "0", "--dry-run"], "jobs=0 must be >= 1"),
]


@pytest.mark.parametrize("argv, message", [pytest.param(a, m, id=i) for i, a, m in CLI])
def test_the_cli_answers_a_bad_input_with_one_message(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # bench finds benchmarks/suites
    with pytest.raises(SystemExit) as exit_:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    text = exit_.value.code if isinstance(exit_.value.code, str) else capsys.readouterr().err
    assert "Traceback" not in text
    assert message in " ".join(text.replace("│", " ").split())  # tyro's box wraps long messages
    assert not isinstance(exit_.value.code, str) or "\n" not in text  # our own errors are one line


SPEC = EnvSpec({"state": [5]}, 2, False)
OBS_SPACE = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (5,), np.float32)})
BOX = gym.spaces.Box(-1, 1, (2,), np.float32)


def tiny_agent() -> WAMQAgent:
    return WAMQAgent(WAMQConfig(dim=16, heads=2, mlp_hidden=32, batch_size=2), SPEC)


def saved(tmp: Path, edit=None) -> Path:
    """A saved tiny agent, then ``edit(folder)``."""
    tiny_agent().save_pretrained(tmp / "agent")
    if edit is not None:
        edit(tmp / "agent")
    return tmp / "agent"


def act(obs):
    agent = tiny_agent()
    return agent.act(obs, agent.init_state(1), np.ones(1, bool))


def write_suite(tmp: Path, text: str) -> Path:
    (tmp / "s.toml").write_text(text)
    return tmp / "s.toml"


def other_weights(folder: Path) -> None:
    WAMQAgent(WAMQConfig(dim=32, heads=2, mlp_hidden=32), SPEC).save_pretrained(folder.parent / "other")
    shutil.copy(folder.parent / "other" / "model.safetensors", folder / "model.safetensors")


def unknown_agent(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "agent": "nosuch"}))


def dataset_folder(tmp: Path, info: str | None) -> Path:
    (tmp / "ds" / "meta").mkdir(parents=True)
    if info is not None:
        (tmp / "ds" / "meta" / "info.json").write_text(info)
    return tmp / "ds"


def empty_writer(tmp: Path) -> None:
    LeRobotWriter(tmp / "w", OBS_SPACE, BOX, fps=10).close()


def bad_episode(tmp: Path) -> None:
    with LeRobotWriter(tmp / "w", OBS_SPACE, BOX, fps=10) as writer:
        writer.add_episode({"state": np.zeros((3, 5))}, task="t")


# (id, a call that must fail given a scratch folder, the exception type, the fragment of its message)
API = [
    ("spec-key", lambda t: EnvSpec({"lidar": [3]}, 2), ValueError, "unknown observation keys ['lidar']"),
    ("env-config-key", lambda t: EnvConfig(name="toy/reach2d", obs=("lidar",)), ValueError, "unknown observation key"),
    ("make-env-task", lambda t: wam.make_env("metaworld/nosuch-v3"), ValueError, "did you mean"),
    ("make-env-form", lambda t: wam.make_env("reach"), ValueError, "must look like '<suite>/<task>'"),
    ("get-agent", lambda t: wam.get_agent("nosuch"), ValueError, "unknown agent 'nosuch' Valid agents"),
    ("act-key", lambda t: act({"rgb": np.zeros((1, 8, 8, 3), np.uint8)}), KeyError, "missing key(s) ['state']"),
    ("act-shape", lambda t: act({"state": np.zeros((1, 4), np.float32)}), ValueError, "expected 1 batch dim(s) + (5,)"),
    ("act-batch", lambda t: act({"state": np.zeros(5, np.float32)}), ValueError, "has shape (5,); expected 1 batch"),
    (
        "update-window",
        lambda t: tiny_agent().update({k: torch.as_tensor(v) for k, v in random_batch(SPEC, B=2, T=9).items()}),
        ValueError,
        "a window of 9 steps is longer than the model's seq_len=3",
    ),
    ("load-missing", lambda t: wam.load_agent(t / "none"), CheckpointError, "no config.json in"),
    (
        "load-weights",
        lambda t: wam.load_agent(saved(t, lambda f: (f / "model.safetensors").write_bytes(b"x"))),
        CheckpointError,
        "is not a valid safetensors file",
    ),
    (
        "load-config",
        lambda t: wam.load_agent(saved(t, lambda f: (f / "config.json").write_text("{"))),
        CheckpointError,
        "config.json is not valid JSON",
    ),
    ("load-agent-name", lambda t: wam.load_agent(saved(t, unknown_agent)), ValueError, "unknown agent 'nosuch'"),
    ("load-shapes", lambda t: wam.load_agent(saved(t, other_weights)), CheckpointError, "do not match the model"),
    ("replay-capacity", lambda t: Replay(SPEC, 1, 2), ValueError, "replay capacity 1 is smaller than num_envs 2"),
    ("replay-empty", lambda t: Replay(SPEC, 10, 1).sample(2, 2), RuntimeError, "cannot sample from an empty replay"),
    ("replay-row", lambda t: Replay(SPEC, 10, 1).add({"state": np.zeros((1, 5))}), KeyError, "replay step lacks"),
    ("dataset-missing", lambda t: EpisodeDataset(t / "none"), DatasetError, "no dataset directory at"),
    ("dataset-no-info", lambda t: EpisodeDataset(dataset_folder(t, None)), DatasetError, "has no meta/info.json"),
    ("dataset-json", lambda t: EpisodeDataset(dataset_folder(t, "{")), DatasetError, "is not valid JSON"),
    (
        "dataset-version",
        lambda t: EpisodeDataset(dataset_folder(t, '{"codebase_version": "v2.1"}')),
        DatasetError,
        "is a LeRobot 'v2.1' dataset; wam reads v3.0",
    ),
    ("sampler-window", lambda t: SequenceSampler(t, 0, 2), ValueError, "seq_len=0 and batch_size=2 must both be >= 1"),
    ("writer-fps", lambda t: LeRobotWriter(t / "w", OBS_SPACE, BOX, fps=0), ValueError, "fps=0 must be > 0"),
    (
        "writer-action",
        lambda t: LeRobotWriter(t / "w", OBS_SPACE, gym.spaces.Box(-1, 1, (2, 2)), fps=10),
        ValueError,
        "can only store 1-d Box or Discrete actions",
    ),
    (
        "writer-obs",
        lambda t: LeRobotWriter(t / "w", gym.spaces.Dict({"lidar": BOX}), BOX, fps=10),
        ValueError,
        "cannot store observation key 'lidar'",
    ),
    ("writer-empty", empty_writer, ValueError, "no episodes were added"),
    ("writer-episode", bad_episode, ValueError, "episode lacks keys ['action', 'reward'"),
    ("suite-toml", lambda t: load_suite(str(write_suite(t, "name = \n"))), SuiteError, "not valid TOML"),
    ("suite-key", lambda t: load_suite(str(write_suite(t, "nme = 'x'\n"))), SuiteError, "unknown key 'nme'"),
    ("suite-path", lambda t: load_suite(str(t / "none.toml")), SuiteError, "does not exist"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(c, e, m, id=i) for i, c, e, m in API])
def test_the_api_answers_a_bad_input_with_one_message(call, error, message, tmp_path):
    with pytest.raises(error) as raised:
        call(tmp_path)
    text = str(raised.value)
    assert message in text and "\n" not in text.strip()


def test_the_table_has_fifty_distinct_rows():
    ids = [row[0] for row in CLI] + [row[0] for row in API]
    assert len(ids) == len(set(ids)) >= 50
