"""gymnasium-robotics PointMaze (MuJoCo) as dict-observation Gymnasium environments.

``pointmaze/<map>`` is ``PointMaze_<map>-v3`` for the maps UMaze, Open, Medium, Large and their
``_Diverse_G`` / ``_Diverse_GR`` variants. A 2-DoF force-actuated ball must reach a goal in the maze.

* Reward: ``cfg.reward_type`` — ``dense`` (default, ``exp(-distance to goal)``, the ``...Dense-v3`` ids) or
  ``sparse`` (1 within 0.45 m of the goal).
* Episodes do not terminate at the goal (gymnasium-robotics' default ``continuing_task=True``, with the goal
  kept fixed for the whole episode): like MetaWorld, ``info["success"]`` is true on every step the ball is within
  0.45 m of the goal, and episodes end by truncation after the registered horizon (300 / 600 / 800 steps for
  Open and UMaze / Medium / Large) or ``cfg.max_episode_steps``.
* ``proprio`` (4,): ball position (x, y) and velocity (vx, vy). ``state`` (8,): ``observation`` (= proprio)
  + ``achieved_goal`` (2) + ``desired_goal`` (2).
* ``rgb`` / ``depth``: a fixed top-down view of the whole maze (``cfg.camera`` ``None`` or ``"topdown"``); image
  up is +y and image right is +x, so row 0 of the map is at the top. The ball is green and the goal red.
  Depth is the metric distance from the camera plane (floor ≈ 2.7 m in UMaze, ≈ 6.4 m in Large).
* Actions: Box(-1, 1, (2,)) forces along x and y.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, PROPRIO, RGB, STATE, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.registry import require
from wam.envs.rendering import MujocoCamera, configure_headless_gl
from wam.envs.wrappers import dict_obs_space

INSTALL_HINT = "pip install 'mujoco==3.3.0' 'gymnasium-robotics==1.4.2'"
DEFAULT_CAMERA = "topdown"
PROPRIO_DIM = 4
STATE_DIM = 8
# A wide field of view keeps the camera low, so the largest maze's floor (≈ 6.4 m away) stays inside the
# documented depth range instead of saturating at DEPTH_MAX_M.
_TOPDOWN_FOVY_DEG = 90.0
_FRAME_MARGIN = 1.05
_RENDER_SIZE = 256


def _robotics():
    configure_headless_gl()
    return require("gymnasium_robotics", INSTALL_HINT)


def _gym_id(task: str, reward_type: str) -> str:
    return f"PointMaze_{task}{'Dense' if reward_type == 'dense' else ''}-v3"


def tasks() -> list[str]:
    """All PointMaze map names registered by gymnasium-robotics (``UMaze``, ``Medium``, ...)."""
    _robotics()
    names = []
    for env_id in gym.registry:
        if env_id.startswith("PointMaze_") and env_id.endswith("-v3") and not env_id.endswith("Dense-v3"):
            names.append(env_id[len("PointMaze_") : -len("-v3")])
    return sorted(names)


def _topdown_camera(maze):
    """A free MuJoCo camera looking straight down at the maze centre, framing the whole map."""
    import mujoco

    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = 0.0  # gymnasium-robotics centres every maze on the origin
    cam.elevation = -90.0
    cam.azimuth = 90.0  # image up = +y, image right = +x
    extent = max(maze.map_width, maze.map_length) * maze.maze_size_scaling
    cam.distance = _FRAME_MARGIN * extent / 2 / np.tan(np.deg2rad(_TOPDOWN_FOVY_DEG) / 2)
    return cam


class PointMazeEnv(gym.Env):
    """One PointMaze map behind a dict observation (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        _robotics()
        if cfg.camera not in (None, DEFAULT_CAMERA):
            raise ValueError(f"pointmaze has one camera, {DEFAULT_CAMERA!r}; got camera={cfg.camera!r}")
        self.cfg = cfg
        env_id = _gym_id(cfg.task, cfg.reward_type)
        spec = gym.spec(env_id)
        # Build the raw env (no TimeLimit / checker wrappers): this class owns the horizon.
        self._env = gym.make(env_id, continuing_task=True, reset_target=False, disable_env_checker=True).unwrapped
        default_horizon = spec.max_episode_steps
        self.horizon = default_horizon if cfg.max_episode_steps is None else cfg.max_episode_steps * cfg.action_repeat
        self._t = 0
        model = self._env.model
        self._camera: MujocoCamera | None = None
        self._render_camera: MujocoCamera | None = None
        if RGB in cfg.obs or DEPTH in cfg.obs:
            model.vis.global_.fovy = _TOPDOWN_FOVY_DEG
            self._camera = MujocoCamera(
                model, self._env.data, _topdown_camera(self._env.maze), cfg.image_size, antialias=cfg.antialias
            )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = dict_obs_space(cfg.obs, cfg.image_size, {PROPRIO: PROPRIO_DIM, STATE: STATE_DIM})

    @property
    def sim(self):
        """The underlying gymnasium-robotics ``PointMazeEnv``."""
        return self._env

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = self._camera.rgb()
            elif key == DEPTH:
                out[key] = self._camera.depth()
            elif key == PROPRIO:
                out[key] = raw["observation"].astype(np.float32)
            elif key == STATE:
                out[key] = np.concatenate([raw["observation"], raw["achieved_goal"], raw["desired_goal"]]).astype(
                    np.float32
                )
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; ``options`` may hold ``goal_cell`` / ``reset_cell`` (row, col) as in gymnasium-robotics."""
        super().reset(seed=seed)
        raw, _ = self._env.reset(seed=seed, options=options)
        self._t = 0
        return self._observe(raw), {SUCCESS: False}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"PointMaze actions have shape (2,), got {action.shape}")
        raw, reward, terminated, _, info = self._env.step(np.clip(action, -1.0, 1.0))
        self._t += 1
        info = dict(info)
        info[SUCCESS] = bool(info.get(SUCCESS, False))
        return self._observe(raw), float(reward), bool(terminated), self._t >= self.horizon, info

    def render(self) -> np.ndarray:
        """A 256×256 top-down RGB view for videos."""
        if self._render_camera is None:
            self._env.model.vis.global_.fovy = _TOPDOWN_FOVY_DEG
            self._render_camera = MujocoCamera(
                self._env.model, self._env.data, _topdown_camera(self._env.maze), _RENDER_SIZE
            )
        return self._render_camera.rgb()

    def close(self) -> None:
        """Release the simulator and renderers."""
        for cam in (self._camera, self._render_camera):
            if cam is not None:
                cam.close()
        self._camera = self._render_camera = None
        self._env.close()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a PointMaze environment for ``cfg``."""
    return PointMazeEnv(cfg)
