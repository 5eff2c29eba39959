"""Expert data collection on MetaWorld: CLI end to end, exact round trip of a real rollout, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tyro

import wam.envs
from wam.cli.data import CollectArgs, collect_cli
from wam.data.collect import CollectConfig, NoExpertError, collect, expert_of, rollout
from wam.data.episodes import EpisodeDataset
from wam.data.lerobot import LeRobotWriter
from wam.data.sequences import SequenceSampler

# MetaWorld's scripted policies warn that their gains saturate; the env clips the action anyway.
pytestmark = pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")


class NoExpertEnv(gym.Env):
    """A tiny dict-observation env without ``expert_action``."""

    observation_space = gym.spaces.Dict({"state": gym.spaces.Box(-1.0, 1.0, (3,), np.float32)})
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    metadata: dict = {}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"state": np.zeros(3, np.float32)}, {}

    def step(self, action):
        return {"state": np.zeros(3, np.float32)}, 0.0, False, True, {}


def test_collect_cli_end_to_end(tmp_path):
    argv = [
        "--env",
        "metaworld/reach-v3",
        "--episodes",
        "2",
        "--obs",
        "proprio,rgb,depth",
        "--max-episode-steps",
        "15",
        "--image-size",
        "32",
        "--out",
        str(tmp_path / "reach"),
        "--quiet",
    ]
    summary = collect_cli(tyro.cli(CollectArgs, args=argv))
    assert (summary.episodes, summary.frames) == (2, 32) and summary.bytes_on_disk > 0
    ds = EpisodeDataset(tmp_path / "reach")
    assert (
        ds.obs_keys == ["rgb", "depth", "proprio"]
        and ds.tasks == ["reach-v3"]
        and ds.info["wam"]["env"] == "metaworld/reach-v3"
    )
    assert ds.info["robot_type"] == "sawyer" and len(ds) == 32
    ep = ds.episode(1)
    assert ep["rgb"].shape == (16, 32, 32, 3) and ep["depth"].shape == (16, 32, 32, 1)
    assert ep["is_first"][0] and ep["is_last"][-1] and not ep["is_terminal"].any()  # MetaWorld only truncates
    assert not ep["action"][-1].any() and ep["reward"][0] == 0
    batch = SequenceSampler(ds, seq_len=8, batch_size=4).sample()
    assert batch["rgb"].shape == (4, 8, 32, 32, 3) and batch["mask"].all()
    with pytest.raises(FileExistsError, match="--overwrite"):
        collect(CollectConfig(env="metaworld/reach-v3", out=tmp_path / "reach", episodes=1), progress=False)


def test_real_rollout_round_trip_is_exact(tmp_path):
    env = wam.envs.make(
        "metaworld/reach-v3", obs=("state", "proprio", "depth"), image_size=32, seed=3, max_episode_steps=12
    )
    try:
        rng = np.random.default_rng(0)
        episodes = [rollout(env, expert_of(env), rng, noise=0.1)[0] for _ in range(2)]
        with LeRobotWriter(tmp_path / "ds", env.observation_space, env.action_space, fps=80) as writer:
            for ep in episodes:
                writer.add_episode(ep, task="reach-v3")
    finally:
        env.close()
    ds = EpisodeDataset(tmp_path / "ds")
    for i, ep in enumerate(episodes):
        got = ds.episode(i)
        for key in ("state", "proprio", "action", "reward", "is_first", "is_last", "is_terminal", "success"):
            np.testing.assert_array_equal(got[key], ep[key], err_msg=key)
        mm = np.rint(ep["depth"].astype(np.float64) * 1000).astype(np.uint16)
        np.testing.assert_array_equal(got["depth"], mm.astype(np.float32) / np.float32(1000))
    assert np.abs(episodes[0]["action"][:-1]).max() <= 1.0  # noisy actions stay in bounds


def test_env_without_expert_is_refused(tmp_path, monkeypatch):
    with pytest.raises(NoExpertError, match="no scripted expert"):
        expert_of(NoExpertEnv())
    monkeypatch.setattr(wam.envs, "make", lambda *args, **kwargs: NoExpertEnv())
    with pytest.raises(NoExpertError, match="expert_action"):
        collect(CollectConfig(env="fake/task", out=tmp_path / "ds", episodes=1), progress=False)
    assert not (tmp_path / "ds").exists()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="proprio,rgb,depth"):
        CollectConfig(env="metaworld/reach-v3", out="x", obs="proprio,rbg")
    with pytest.raises(ValueError, match="episodes"):
        CollectConfig(env="metaworld/reach-v3", out="x", episodes=0)


def test_scripted_expert_solves_reach():
    env = wam.envs.make("metaworld/reach-v3", obs=("state",), seed=0, max_episode_steps=100)
    try:
        rng = np.random.default_rng(0)
        solved = [rollout(env, expert_of(env), rng)[0]["success"].any() for _ in range(3)]
    finally:
        env.close()
    assert all(solved)
