"""Tiny synthetic tasks for fast learning checks (seconds to minutes on a CPU), not for results.

``toy/reach2d``: a point in [-1, 1]² must reach a random goal. Action = velocity in [-1, 1]² (step 0.1);
reward = 1 − distance (dense); success = distance < 0.1; 50 steps. ``proprio`` = position, ``state`` =
position + goal. Images are a 2-D top view (goal red, point green) with depth = 1 m everywhere but the point.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, PROPRIO, RGB, STATE, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.wrappers import dict_obs_space

HORIZON = 50
STEP = 0.1
SUCCESS_RADIUS = 0.1


def tasks() -> list[str]:
    """The toy tasks."""
    return ["reach2d"]


class Reach2D(gym.Env):
    """Point-to-goal reaching in the plane (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.horizon = cfg.max_episode_steps * cfg.action_repeat if cfg.max_episode_steps else HORIZON
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = dict_obs_space(cfg.obs, cfg.image_size, {PROPRIO: 2, STATE: 4})
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)
        self.t = 0

    def _pixel(self, xy: np.ndarray, size: int) -> tuple[int, int]:
        col, row = ((xy + 1) / 2 * (size - 1)).round().astype(int)
        return size - 1 - row, col

    def _image(self, size: int) -> np.ndarray:
        img = np.full((size, size, 3), 40, np.uint8)
        for xy, colour in ((self.goal, (220, 40, 40)), (self.pos, (40, 220, 40))):
            r, c = self._pixel(xy, size)
            img[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = colour
        return img

    def _observe(self) -> dict:
        out = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = self._image(self.cfg.image_size)
            elif key == DEPTH:
                depth = np.ones((self.cfg.image_size, self.cfg.image_size, 1), np.float32)
                r, c = self._pixel(self.pos, self.cfg.image_size)
                depth[r, c] = 0.9
                out[key] = depth
            elif key == PROPRIO:
                out[key] = self.pos.astype(np.float32)
            elif key == STATE:
                out[key] = np.concatenate([self.pos, self.goal]).astype(np.float32)
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, 2)
        self.goal = self.np_random.uniform(-0.8, 0.8, 2)
        self.t = 0
        return self._observe(), {SUCCESS: False}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = np.clip(np.asarray(action, np.float64), -1, 1)
        if action.shape != (2,):
            raise ValueError(f"toy/reach2d actions have shape (2,), got {action.shape}")
        self.pos = np.clip(self.pos + STEP * action, -1, 1)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        return self._observe(), 1.0 - dist, False, self.t >= self.horizon, {SUCCESS: dist < SUCCESS_RADIUS}

    def render(self) -> np.ndarray:
        """A 128×128 top view."""
        return self._image(128)


def build(cfg: EnvConfig) -> gym.Env:
    """Build a toy environment."""
    return Reach2D(cfg)
