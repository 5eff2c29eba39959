"""Navigation suites: MiniWorld (child process), PointMaze (MuJoCo) and the Habitat install hint."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from wam.constants import DEPTH, DEPTH_MAX_M, DEPTH_MIN_M, PROPRIO, RGB, STATE, SUCCESS
from wam.envs import EnvConfig, MissingSimulatorError, make, make_vector

# MiniWorld is never imported in the test process: importing it opens an OpenGL context, which is exactly what
# the suite keeps in a child process. So skip on the package being findable, not importable.
needs_miniworld = pytest.mark.skipif(importlib.util.find_spec("miniworld") is None, reason="miniworld not installed")
# Likewise gymnasium_robotics: importing it imports mujoco, which must happen after wam picks the headless GL
# backend (wam.envs.rendering.configure_headless_gl), so it is only imported through the suite.
needs_robotics = pytest.mark.skipif(
    importlib.util.find_spec("gymnasium_robotics") is None, reason="gymnasium-robotics not installed"
)


def _check_obs(env, obs: dict, size: int) -> None:
    assert set(obs) == set(env.observation_space.spaces), (sorted(obs), env.observation_space)
    for key, value in obs.items():
        space = env.observation_space[key]
        assert value.shape == space.shape and value.dtype == space.dtype, (key, value.shape, value.dtype, space)
    if RGB in obs:
        assert obs[RGB].shape == (size, size, 3)
        assert obs[RGB].std() > 5, "RGB frame is blank"
    if DEPTH in obs:
        depth = obs[DEPTH]
        assert depth.shape == (size, size, 1)
        assert np.isfinite(depth).all() and DEPTH_MIN_M <= depth.min() and depth.max() <= DEPTH_MAX_M
        assert depth.min() < DEPTH_MAX_M, "depth saturated everywhere"


def _rollout(env, seed: int, steps: int) -> list[dict]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    frames = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(info[SUCCESS], bool) and isinstance(reward, float)
        frames.append(obs)
        if terminated or truncated:
            break
    return frames


# ----------------------------------------------------------------------------------------------- miniworld


@needs_miniworld
def test_miniworld_observations_and_subprocess():
    env = make("miniworld/OneRoom", obs=(RGB, DEPTH, PROPRIO), image_size=32, seed=0)
    try:
        assert env.unwrapped.pid is not None, "MiniWorld must run in a child process"
        obs, info = env.reset(seed=0)
        assert info[SUCCESS] is False
        _check_obs(env, obs, 32)
        assert env.action_space.n == 3  # turn left, turn right, move forward
        # Headings are unit vectors; the room is 10 m × 10 m.
        assert abs(np.hypot(*obs[PROPRIO][2:]) - 1) < 1e-5
        assert ((0 <= obs[PROPRIO][:2]) & (obs[PROPRIO][:2] <= 10)).all(), obs[PROPRIO]
        # Upright: the checkered floor (high contrast) is in the lower half, plain walls / sky above.
        gray = obs[RGB].astype(np.float32).mean(-1)
        assert gray[16:].std() > gray[:8].std()
        for obs in _rollout(env, seed=0, steps=5)[1:]:
            _check_obs(env, obs, 32)
        assert env.render().shape == (256, 256, 3)
        with pytest.raises(ValueError, match="outside Discrete"):
            env.step(7)
    finally:
        env.close()


@needs_miniworld
def test_miniworld_seeding_is_deterministic():
    # One env reseeded twice: a second child process would double the test's run time for no extra coverage.
    env = make("miniworld/MazeS2", obs=(PROPRIO,), seed=3)
    try:
        run_a, run_b = _rollout(env, 3, 20), _rollout(env, 3, 20)
        assert all(np.array_equal(x[PROPRIO], y[PROPRIO]) for x, y in zip(run_a, run_b))
        assert not np.array_equal(_rollout(env, 4, 0)[0][PROPRIO], run_a[0][PROPRIO])
    finally:
        env.close()


def test_miniworld_success_rule():
    from wam.envs.miniworld import is_success

    assert is_success(True, 0.93) and not is_success(False, 0.93) and not is_success(True, 0.0)
    assert not is_success(True, -100.0)


@needs_miniworld
@needs_robotics
def test_miniworld_runs_beside_mujoco_rendering():
    maze = make("pointmaze/UMaze", obs=(RGB,), image_size=32, seed=0)
    world = make("miniworld/OneRoom", obs=(RGB,), image_size=32, seed=0)
    try:
        for _ in range(3):
            assert maze.step(maze.action_space.sample())[0][RGB].std() > 5
            assert world.step(2)[0][RGB].std() > 5
    finally:
        maze.close()
        world.close()


@needs_miniworld
@pytest.mark.slow
def test_miniworld_vector_env():
    envs = make_vector(EnvConfig(name="miniworld/OneRoom", obs=(RGB, PROPRIO), image_size=16), num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs[RGB].shape == (2, 16, 16, 3) and obs[PROPRIO].shape == (2, 4)
        assert not np.array_equal(obs[PROPRIO][0], obs[PROPRIO][1])
        obs, *_ = envs.step(envs.action_space.sample())
        assert obs[RGB].dtype == np.uint8
    finally:
        envs.close()


@needs_miniworld
def test_miniworld_unknown_task_lists_choices():
    with pytest.raises(ValueError, match=r"did you mean 'miniworld/OneRoom'.*Valid: miniworld/FourRooms"):
        make("miniworld/OneRom", obs=(RGB,))


# ----------------------------------------------------------------------------------------------- pointmaze


@needs_robotics
def test_pointmaze_observations():
    env = make("pointmaze/UMaze", obs=(RGB, DEPTH, PROPRIO, STATE), image_size=40, seed=0)
    try:
        obs, _ = env.reset(seed=0)
        _check_obs(env, obs, 40)
        assert obs[PROPRIO].shape == (4,) and obs[STATE].shape == (8,)
        np.testing.assert_array_equal(obs[STATE][:4], obs[PROPRIO])
        assert env.action_space.shape == (2,) and env.action_space.low.min() == -1 and env.action_space.high.max() == 1
        for obs in _rollout(env, seed=0, steps=5)[1:]:
            _check_obs(env, obs, 40)
        assert env.render().shape == (256, 256, 3)
    finally:
        env.close()


@needs_robotics
def test_pointmaze_image_is_upright_top_down_view():
    env = make("pointmaze/UMaze", obs=(RGB, DEPTH), image_size=50, seed=0)
    try:
        # U_MAZE's middle row (row 2 of 5) is wall in columns 0-2 and free in column 3.
        obs, _ = env.reset(seed=0, options={"goal_cell": np.array([3, 1]), "reset_cell": np.array([1, 3])})
        depth = obs[DEPTH][..., 0]
        wall, free = depth[20:30, 15:25].mean(), depth[20:30, 32:38].mean()
        assert wall < free - 0.2, (wall, free)  # wall tops are closer to the camera than the floor
        # The red goal (cell row 3, column 1) is in the lower-left quadrant.
        rgb = obs[RGB].astype(int)
        red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
        rows, cols = np.nonzero(red)
        assert len(rows) > 0 and rows.mean() > 25 and cols.mean() < 25, (rows.mean(), cols.mean())
    finally:
        env.close()


@needs_robotics
def test_pointmaze_seeding_and_success():
    a = make("pointmaze/Open", obs=(STATE,), seed=7)
    b = make("pointmaze/Open", obs=(STATE,), seed=7)
    try:
        run_a, run_b = _rollout(a, 7, 30), _rollout(b, 7, 30)
        assert all(np.array_equal(x[STATE], y[STATE]) for x, y in zip(run_a, run_b))
        assert not np.array_equal(_rollout(a, 8, 0)[0][STATE], run_a[0][STATE])
        # Drive straight at the goal: success must turn on within the horizon.
        obs, _ = a.reset(seed=1)
        for _ in range(200):
            position, goal = obs[STATE][:2], obs[STATE][6:8]
            obs, _, _, truncated, info = a.step(np.clip(3 * (goal - position) - obs[STATE][2:4], -1, 1))
            if info[SUCCESS] or truncated:
                break
        assert info[SUCCESS], np.linalg.norm(obs[STATE][6:8] - obs[STATE][:2])
    finally:
        a.close()
        b.close()


@needs_robotics
def test_pointmaze_unknown_task_and_camera():
    with pytest.raises(ValueError, match=r"did you mean 'pointmaze/UMaze'.*Valid: pointmaze/Large"):
        make("pointmaze/Umaze")
    with pytest.raises(ValueError, match="topdown"):
        make("pointmaze/UMaze", obs=(RGB,), camera="corner")


# ----------------------------------------------------------------------------------------------- habitat


def test_habitat_without_simulator_says_how_to_install():
    if importlib.util.find_spec("habitat_sim") is not None:
        pytest.skip("habitat-sim is installed")
    from wam.envs import habitat

    with pytest.raises(MissingSimulatorError, match="conda install habitat-sim -c conda-forge -c aihabitat"):
        make("habitat/pointnav", obs=(RGB,))
    with pytest.raises(MissingSimulatorError, match="conda install habitat-sim"):
        habitat.tasks()
    with pytest.raises(MissingSimulatorError, match="conda install habitat-sim"):
        habitat.build(EnvConfig(name="habitat/pointnav", obs=(RGB,)))
