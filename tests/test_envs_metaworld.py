"""MetaWorld suite: observation dict, upright non-blank RGB, metric depth, determinism, expert, errors, vector envs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("metaworld")

from wam.constants import DEPTH_MAX_M
from wam.envs import EnvConfig, list_envs, make, make_vector


@pytest.fixture(scope="module")
def pixel_env():
    env = make("metaworld/reach-v3", obs=("proprio", "state", "rgb", "depth"), image_size=64, seed=0)
    yield env
    env.close()


def test_observation_keys_dtypes_and_shapes(pixel_env):
    obs, info = pixel_env.reset(seed=0)
    assert set(obs) == {"proprio", "state", "rgb", "depth"} and info["success"] is False
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (64, 64, 1) and obs["depth"].dtype == np.float32
    assert obs["proprio"].shape == (4,) and obs["state"].shape == (39,)
    assert pixel_env.observation_space.contains(obs)


def test_rgb_is_upright_and_not_blank(pixel_env):
    obs, _ = pixel_env.reset(seed=0)
    rgb = obs["rgb"].astype(float)
    assert rgb.std() > 10
    # The camera looks down at the table: the top rows are farther away than the bottom rows when upright.
    depth = obs["depth"][..., 0]
    assert np.median(depth[:16]) > np.median(depth[-16:])


def test_depth_is_metric_and_in_range(pixel_env):
    obs, _ = pixel_env.reset(seed=0)
    depth = obs["depth"]
    assert depth.min() >= 0.0 and depth.max() <= DEPTH_MAX_M
    table = np.median(depth[-16:])
    assert 0.3 < table < 3.0, f"the table should be roughly a metre from the camera, got {table:.2f} m"


def test_antialias_off_changes_only_rgb_edges_and_leaves_the_model_as_it_was(pixel_env):
    on, _ = pixel_env.reset(seed=0)
    env = make("metaworld/reach-v3", obs=("rgb", "depth"), image_size=64, seed=0, antialias=False)
    try:
        off, _ = env.reset(seed=0)
        assert np.array_equal(on["depth"], off["depth"])
        changed = np.any(on["rgb"] != off["rgb"], -1).mean()
        assert 0 < changed < 0.5, f"without anti-aliasing only edge pixels should differ, got {changed:.0%}"
        assert env.unwrapped.sim.model.vis.quality.offsamples == 4, "other renderers of the model keep MuJoCo's default"
    finally:
        env.close()


def test_seeding_is_deterministic():
    def rollout(seed: int):
        env = make("metaworld/reach-v3", obs="state", seed=seed, max_episode_steps=10)
        obs, _ = env.reset(seed=seed)
        rewards = [env.step(np.full(4, 0.3, np.float32))[1] for _ in range(5)]
        env.close()
        return obs["state"], rewards

    a, b, c = rollout(1), rollout(1), rollout(2)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


def test_scripted_expert_reaches_success():
    env = make("metaworld/reach-v3", obs="proprio", seed=0)
    env.reset(seed=0)
    expert = env.get_wrapper_attr("expert_action")
    success = False
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(expert())
        success = success or info["success"]
        if success or terminated or truncated:
            break
    env.close()
    assert success


def test_mt10_reports_a_task_index():
    env = make("metaworld/mt10", obs=("state", "task"), seed=0)
    seen = {int(env.reset(seed=s)[0]["task"]) for s in range(6)}
    assert seen <= set(range(10)) and len(seen) > 1
    env.close()


def test_action_repeat_and_time_limit():
    env = make("metaworld/reach-v3", obs="state", seed=0, action_repeat=2, max_episode_steps=5)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(np.zeros(4, np.float32))
        steps += 1
    assert steps == 5
    env.close()


def test_vector_env_batches_dict_observations():
    envs = make_vector(
        EnvConfig(name="metaworld/reach-v3", obs=("proprio",), max_episode_steps=5), num_envs=2, asynchronous=False
    )
    obs, _ = envs.reset(seed=0)
    assert obs["proprio"].shape == (2, 4)
    obs, reward, *_ = envs.step(np.zeros((2, 4), np.float32))
    assert reward.shape == (2,)
    envs.close()


@pytest.mark.parametrize(
    "name, obs, message",
    [
        ("metaworld/rech-v3", "state", "did you mean 'metaworld/reach-v3'"),
        ("metaverse/reach-v3", "state", "unknown environment suite"),
        ("reach-v3", "state", "<suite>/<task>"),
        ("metaworld/reach-v3", "lidar", "unknown observation key"),
    ],
)
def test_bad_names_raise_clear_errors(name, obs, message):
    with pytest.raises(ValueError, match=message):
        make(name, obs=obs)


def test_bad_image_size_raises():
    with pytest.raises(ValueError, match="image_size"):
        make("metaworld/reach-v3", obs="rgb", image_size=4)


def test_list_envs_has_all_fifty_tasks():
    names = list_envs("metaworld")
    assert len(names) == 51 and "metaworld/reach-v3" in names and "metaworld/mt10" in names
