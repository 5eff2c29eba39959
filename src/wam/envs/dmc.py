"""DeepMind Control Suite (dm_control) as dict-observation Gymnasium environments.

Names: ``dmc/<domain>-<task>`` for every task of ``dm_control.suite.BENCHMARKING``, with every underscore of
dm_control's names written as a hyphen: ``dmc/cartpole-swingup``, ``dmc/walker-walk``, ``dmc/cheetah-run``,
``dmc/reacher-easy``, ``dmc/ball-in-cup-catch``, ``dmc/cartpole-swingup-sparse``, ``dmc/point-mass-easy``.
(Hyphens only, like the other suites; :func:`dm_control_names` maps a name back.)

Protocol (as in DreamerV3): 1000 simulator steps per episode, ended by *truncation* (DMC tasks do not
terminate); dm_control's reward; ``cfg.action_repeat`` (2 in DreamerV3) is applied by ``wam.envs.make``, so an
episode is ``1000 / action_repeat`` agent steps. Actions are in [-1, 1] (rescaled to the task's bounds, which
are [-1, 1] for every benchmark task). DMC has no notion of success: ``info["success"]`` is always False.

Observations: ``proprio`` is dm_control's observation dict flattened in its own key order (the "proprio" or
state setting of the DreamerV3 paper); ``state`` is the same vector, for code that asks for state. ``rgb`` /
``depth`` come from camera 0 (``cfg.camera`` may name another camera or give its index), rendered by the
project's :class:`~wam.envs.rendering.MujocoCamera` without shadows or reflections: 3-4× faster than
``physics.render`` on a software renderer, at the cost of images that differ slightly from the papers'.
Depth is metric; the far background reads as ``DEPTH_MAX_M``.

Seeding: ``reset(seed=s)`` reseeds the task's random state, so the same seed gives the same initial state,
and unseeded resets continue that random sequence.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, PROPRIO, RGB, STATE, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.registry import require
from wam.envs.rendering import MujocoCamera, configure_headless_gl
from wam.envs.wrappers import image_space, vector_space

INSTALL_HINT = "pip install 'wam[dmc]'  (dm-control==1.0.28)"
EPISODE_STEPS = 1000
RENDER_SIZE = 256


def _suite():
    configure_headless_gl()
    return require("dm_control.suite", INSTALL_HINT)


def dm_control_names() -> dict[str, tuple[str, str]]:
    """Map every wam task name (``walker-walk``) to dm_control's ``(domain, task)`` (``("walker", "walk")``)."""
    names = {f"{domain}-{task}".replace("_", "-"): (domain, task) for domain, task in _suite().BENCHMARKING}
    # Hyphenation must not merge two tasks; a future dm_control could in principle break this.
    if len(names) != len(_suite().BENCHMARKING):
        raise RuntimeError("two dm_control benchmark tasks map to the same wam name; extend dm_control_names()")
    return names


def tasks() -> list[str]:
    """All DMC benchmark task names, ``<domain>-<task>`` with hyphens only."""
    return sorted(dm_control_names())


def flatten_observation(observation: dict[str, Any]) -> np.ndarray:
    """Concatenate a dm_control observation dict, in its own key order, into one float32 vector."""
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])


class DMCEnv(gym.Env):
    """One dm_control task behind a dict observation (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        names = dm_control_names()
        if cfg.task not in names:
            raise ValueError(f"unknown dmc task {cfg.task!r}; valid tasks are {sorted(names)}")
        self.cfg = cfg
        self.domain, self.task_name = names[cfg.task]
        # The episode length is ours to enforce (it depends on action repeat), so dm_control's clock never stops.
        self._env = _suite().load(
            self.domain, self.task_name, task_kwargs={"random": cfg.seed, "time_limit": float("inf")}
        )
        # Per instance: the control rate differs between domains (e.g. 100 Hz cartpole, 40 Hz walker).
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": 1.0 / self._env.control_timestep()}
        physics = self._env.physics
        self._camera_id = self._camera(cfg.camera, physics)
        needs_camera = RGB in cfg.obs or DEPTH in cfg.obs
        self._cam = (
            MujocoCamera(physics.model.ptr, physics.data.ptr, self._camera_id, cfg.image_size, antialias=cfg.antialias)
            if needs_camera
            else None
        )
        self._render_cam: MujocoCamera | None = None
        self._horizon = EPISODE_STEPS if cfg.max_episode_steps is None else cfg.max_episode_steps * cfg.action_repeat
        self._steps = 0
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)
        dim = int(sum(np.prod(s.shape, dtype=int) for s in self._env.observation_spec().values()))
        sizes = {RGB: image_space(cfg.image_size, 3, depth=False), DEPTH: image_space(cfg.image_size, 1, depth=True)}
        sizes.update({PROPRIO: vector_space(dim), STATE: vector_space(dim)})
        self.observation_space = gym.spaces.Dict({key: sizes[key] for key in cfg.obs})

    @staticmethod
    def _camera(camera: str | None, physics) -> int | str:
        """Camera 0 by default; otherwise a camera name of the model or its index written as digits."""
        if camera is None:
            return 0
        if camera.isdigit():
            if int(camera) >= physics.model.ncam:
                raise ValueError(f"camera index {camera} is out of range; this model has {physics.model.ncam} cameras")
            return int(camera)
        return camera  # MujocoCamera checks the name and lists the valid ones

    def _observe(self, observation: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = self._cam.rgb()
            elif key == DEPTH:
                out[key] = self._cam.depth()
            elif key in (PROPRIO, STATE):
                out[key] = flatten_observation(observation)
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)
        self._steps = 0
        timestep = self._env.reset()
        return self._observe(timestep.observation), {SUCCESS: False}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"dmc/{self.cfg.task} actions have shape {self.action_space.shape}, got {action.shape}")
        action = np.clip(action, -1.0, 1.0)
        timestep = self._env.step(self._low + (action + 1.0) * 0.5 * (self._high - self._low))
        self._steps += 1
        terminated = bool(timestep.last() and timestep.discount == 0.0)
        truncated = not terminated and (self._steps >= self._horizon or timestep.last())
        reward = float(timestep.reward or 0.0)
        return self._observe(timestep.observation), reward, terminated, truncated, {SUCCESS: False}

    def render(self) -> np.ndarray:
        """A 256×256 RGB view for videos, from the observation camera."""
        if self._render_cam is None:
            physics = self._env.physics
            self._render_cam = MujocoCamera(physics.model.ptr, physics.data.ptr, self._camera_id, RENDER_SIZE)
        return self._render_cam.rgb()

    def close(self) -> None:
        """Release the simulator and renderers."""
        for cam in (self._cam, self._render_cam):
            if cam is not None:
                cam.close()
        self._cam = self._render_cam = None
        self._env.close()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a DeepMind Control Suite environment for ``cfg``."""
    return DMCEnv(cfg)
