"""DeepMind Control suite: naming, observation contract, metric depth, seeding, episode protocol, errors."""

import numpy as np
import pytest

pytest.importorskip("dm_control")

from wam.constants import DEPTH_MAX_M, DEPTH_MIN_M  # noqa: E402
from wam.envs import list_envs, make  # noqa: E402
from wam.envs.dmc import dm_control_names, flatten_observation  # noqa: E402

ALL_OBS = ("rgb", "depth", "proprio", "state")


def test_names_cover_the_benchmark_with_hyphens_only():
    names = list_envs("dmc")
    for name in (
        "dmc/cartpole-swingup",
        "dmc/walker-walk",
        "dmc/cheetah-run",
        "dmc/reacher-easy",
        "dmc/ball-in-cup-catch",
    ):
        assert name in names
    assert len(names) == 28 and not any("_" in n for n in names)
    assert dm_control_names()["cartpole-swingup-sparse"] == ("cartpole", "swingup_sparse")


@pytest.mark.parametrize("task, dim, actions", [("cartpole-swingup", 5, 1), ("reacher-easy", 6, 2)])
def test_observation_keys_dtypes_and_shapes(task, dim, actions):
    env = make(f"dmc/{task}", obs=ALL_OBS, image_size=64, seed=0)
    obs, info = env.reset(seed=0)
    assert set(obs) == set(ALL_OBS) and info["success"] is False
    assert obs["rgb"].dtype == np.uint8 and obs["rgb"].shape == (64, 64, 3)
    assert obs["depth"].dtype == np.float32 and obs["depth"].shape == (64, 64, 1)
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (dim,)
    np.testing.assert_array_equal(obs["state"], obs["proprio"])
    assert env.observation_space.contains(obs)
    assert env.action_space.shape == (actions,) and env.action_space.low.min() == -1.0
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and isinstance(reward, float) and info["success"] is False
    env.close()


def test_images_are_upright_non_blank_and_metric():
    env = make("dmc/cartpole-swingup", obs=("rgb", "depth"), seed=0)
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].astype(np.float32).std() > 10.0
    depth = obs["depth"][..., 0]
    assert depth.min() >= DEPTH_MIN_M and depth.max() <= DEPTH_MAX_M
    # Upright: the floor near the camera is at the bottom, the far background (clipped) at the top.
    assert np.median(depth[-1]) < 4.0 and np.median(depth[0]) == pytest.approx(DEPTH_MAX_M)
    # The cart and pole stand a few metres in front of the fixed camera.
    assert 1.0 < depth.min() < 5.0
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    env.close()


def _rollout(seed: int):
    env = make("dmc/walker-walk", obs=("proprio", "rgb"), seed=seed)
    first, _ = env.reset(seed=seed)
    actions = np.random.default_rng(0).uniform(-1, 1, (10, 6)).astype(np.float32)
    rewards = [env.step(a)[1] for a in actions]
    again, _ = env.reset(seed=seed)
    env.close()
    return first, rewards, again


def test_same_seed_same_episode_and_different_seed_differs():
    first_a, rewards_a, again_a = _rollout(5)
    first_b, rewards_b, _ = _rollout(5)
    for key in first_a:
        np.testing.assert_array_equal(first_a[key], first_b[key])
        np.testing.assert_array_equal(first_a[key], again_a[key])
    assert rewards_a == rewards_b
    other, _, _ = _rollout(6)
    assert not np.array_equal(other["proprio"], first_a["proprio"])


def test_episode_is_1000_simulator_steps_truncated_never_terminated():
    env = make("dmc/cartpole-swingup", obs=("proprio",), seed=0, action_repeat=2)
    env.reset(seed=0)
    for t in range(1, 501):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated and info["success"] is False and reward >= 0.0
        assert truncated == (t == 500)
    env.close()


def test_max_episode_steps_counts_agent_steps():
    env = make("dmc/reacher-easy", obs=("state",), seed=0, max_episode_steps=3, action_repeat=2)
    env.reset(seed=0)
    truncated = [env.step(np.zeros(2, np.float32))[3] for _ in range(3)]
    assert truncated == [False, False, True]
    env.close()


def test_unknown_names_and_bad_actions_are_explained():
    with pytest.raises(ValueError, match="did you mean 'dmc/walker-walk'"):
        make("dmc/walker-walkk")
    with pytest.raises(ValueError, match="did you mean 'dmc/ball-in-cup-catch'"):
        make("dmc/ball_in_cup-catch")
    with pytest.raises(ValueError, match="unknown camera"):
        make("dmc/cartpole-swingup", obs=("rgb",), camera="nope")
    env = make("dmc/cartpole-swingup", obs=("proprio",), seed=0)
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        env.step(np.zeros(2, np.float32))
    env.close()


def test_flatten_observation_keeps_key_order():
    flat = flatten_observation({"b": np.array([[1.0, 2.0]]), "a": 3.0})
    np.testing.assert_array_equal(flat, np.array([1.0, 2.0, 3.0], np.float32))
    assert flat.dtype == np.float32
