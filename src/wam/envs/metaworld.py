"""MetaWorld v3 (Farama) as dict-observation Gymnasium environments.

``metaworld/<task>-v3`` is MT1: each reset draws one of the task's 50 goal variations (MetaWorld's own
protocol). ``metaworld/mt10`` draws one of the ten MT10 tasks per reset and reports its index as ``task``.
``proprio`` is the robot's own state (hand xyz + gripper opening); ``state`` is MetaWorld's full 39-d vector.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, PROPRIO, RGB, STATE, SUCCESS, TASK
from wam.envs.config import EnvConfig
from wam.envs.registry import require
from wam.envs.rendering import MujocoCamera, check_camera, configure_headless_gl
from wam.envs.wrappers import dict_obs_space

INSTALL_HINT = "pip install 'mujoco==3.3.0' && pip install 'metaworld==3.1.1' packaging"
DEFAULT_CAMERA = "corner2"
MAX_PATH_LENGTH = 500
PROPRIO_DIM = 4
STATE_DIM = 39
# MetaWorld's fixed corner cameras are mounted upside-down; these are rotated 180° on output.
_FLIPPED_CAMERAS = ("corner", "corner2", "corner3", "corner4")


def _metaworld():
    configure_headless_gl()
    return require("metaworld", INSTALL_HINT)


def tasks() -> list[str]:
    """All 50 MetaWorld v3 task names plus ``mt10``."""
    return sorted(_metaworld().env_dict.ALL_V3_ENVIRONMENTS) + ["mt10"]


class MetaWorldEnv(gym.Env):
    """One or more MetaWorld tasks behind a dict observation (see module docstring)."""

    # MetaWorld steps at 80 Hz (frame_skip 5 × 2.5 ms); data collection reads this for dataset fps.
    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        mw = _metaworld()
        self.cfg = cfg
        bench = mw.MT10(seed=cfg.seed) if cfg.task == "mt10" else mw.MT1(cfg.task, seed=cfg.seed)
        self.task_names = list(bench.train_classes)
        self._envs, self._goals, self._cameras = [], [], []
        horizon = MAX_PATH_LENGTH if cfg.max_episode_steps is None else cfg.max_episode_steps * cfg.action_repeat
        camera = cfg.camera or DEFAULT_CAMERA
        needs_camera = RGB in cfg.obs or DEPTH in cfg.obs
        for name in self.task_names:
            env = bench.train_classes[name]()
            env.max_path_length = horizon
            self._envs.append(env)
            self._goals.append([t for t in bench.train_tasks if t.env_name == name])
            if cfg.camera is not None and not needs_camera:  # it still films videos: check it now, not at the end
                check_camera(env.model, camera)
            if needs_camera:
                self._cameras.append(
                    MujocoCamera(
                        env.model,
                        env.data,
                        camera,
                        cfg.image_size,
                        flip=camera in _FLIPPED_CAMERAS,
                        antialias=cfg.antialias,
                    )
                )
        self._render_camera: MujocoCamera | None = None
        self._active = 0
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = dict_obs_space(
            cfg.obs, cfg.image_size, {PROPRIO: PROPRIO_DIM, STATE: STATE_DIM}, len(self.task_names)
        )
        self._last_state = np.zeros(STATE_DIM)

    @property
    def sim(self):
        """The active MetaWorld (SawyerXYZEnv) instance."""
        return self._envs[self._active]

    def _observe(self, state: np.ndarray) -> dict[str, Any]:
        self._last_state = state
        out: dict[str, Any] = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = self._cameras[self._active].rgb()
            elif key == DEPTH:
                out[key] = self._cameras[self._active].depth()
            elif key == PROPRIO:
                out[key] = state[:PROPRIO_DIM].astype(np.float32)
            elif key == STATE:
                out[key] = state.astype(np.float32)
            elif key == TASK:
                out[key] = np.int64(self._active)
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        self._active = int(self.np_random.integers(len(self._envs)))
        goals = self._goals[self._active]
        self.sim.set_task(goals[int(self.np_random.integers(len(goals)))])
        state, _ = self.sim.reset()
        return self._observe(state), {SUCCESS: False, "task_name": self.task_names[self._active]}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if action.shape != (4,):
            raise ValueError(f"MetaWorld actions have shape (4,), got {action.shape}")
        state, reward, terminated, truncated, info = self.sim.step(action)
        info = dict(info)
        info[SUCCESS] = bool(info.get(SUCCESS, 0.0))
        info["task_name"] = self.task_names[self._active]
        return self._observe(state), float(reward), bool(terminated), bool(truncated), info

    def expert_action(self) -> np.ndarray:
        """Action of MetaWorld's scripted expert for the current state (for data collection)."""
        from metaworld.policies import ENV_POLICY_MAP

        policy = ENV_POLICY_MAP[self.task_names[self._active]]()
        return np.clip(policy.get_action(self._last_state), -1.0, 1.0).astype(np.float32)

    def render(self) -> np.ndarray:
        """A 256×256 RGB view for videos, from the observation camera."""
        if self._render_camera is None or self._render_camera.model is not self.sim.model:
            camera = self.cfg.camera or DEFAULT_CAMERA
            self._render_camera = MujocoCamera(
                self.sim.model, self.sim.data, camera, 256, flip=camera in _FLIPPED_CAMERAS
            )
        return self._render_camera.rgb()

    def close(self) -> None:
        """Release the simulator and renderers."""
        for cam in self._cameras + ([self._render_camera] if self._render_camera else []):
            cam.close()
        for env in self._envs:
            env.close()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a MetaWorld environment for ``cfg``."""
    return MetaWorldEnv(cfg)
