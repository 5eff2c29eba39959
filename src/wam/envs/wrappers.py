"""Wrappers every suite shares: action repeat and a uniform ``info["success"]``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import SUCCESS


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times; rewards add up and ``success`` is true if any sub-step succeeded."""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        total, success = 0.0, False
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            success = success or bool(info.get(SUCCESS, False))
            if terminated or truncated:
                break
        info = dict(info)
        info[SUCCESS] = success
        return obs, total, terminated, truncated, info


class SuccessInfo(gym.Wrapper):
    """Guarantee ``info["success"]`` is a Python bool on reset and step, via ``fn(info) -> bool``."""

    def __init__(self, env: gym.Env, fn=None):
        super().__init__(env)
        self.fn = fn or (lambda info: bool(info.get(SUCCESS, False)))

    def reset(self, **kwargs) -> tuple[Any, dict]:
        """Start a new episode; returns (observation dict, info)."""
        obs, info = self.env.reset(**kwargs)
        info = dict(info)
        info[SUCCESS] = False
        return obs, info

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info[SUCCESS] = bool(self.fn(info))
        return obs, float(reward), bool(terminated), bool(truncated), info


def image_space(size: int, channels: int, depth: bool) -> gym.spaces.Box:
    """Observation space of an RGB (uint8) or depth (float32, metres) image."""
    from wam.constants import DEPTH_MAX_M, DEPTH_MIN_M

    if depth:
        return gym.spaces.Box(DEPTH_MIN_M, DEPTH_MAX_M, (size, size, channels), np.float32)
    return gym.spaces.Box(0, 255, (size, size, channels), np.uint8)


def vector_space(dim: int) -> gym.spaces.Box:
    """Unbounded float32 vector observation space."""
    return gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)


def dict_obs_space(obs: tuple[str, ...], image_size: int, dims: dict[str, int], num_tasks: int = 0) -> gym.spaces.Dict:
    """The Dict observation space of a suite for the requested keys.

    ``dims`` gives the length of each vector key the suite offers (``proprio``, ``state``); ``num_tasks`` > 0
    offers ``task``. Asking for a key the suite does not offer raises a ValueError naming what it offers.
    """
    from wam.constants import DEPTH, RGB, TASK

    offered = [RGB, DEPTH, *dims] + ([TASK] if num_tasks else [])
    spaces: dict[str, gym.Space] = {}
    for key in obs:
        if key == RGB:
            spaces[key] = image_space(image_size, 3, depth=False)
        elif key == DEPTH:
            spaces[key] = image_space(image_size, 1, depth=True)
        elif key in dims:
            spaces[key] = vector_space(dims[key])
        elif key == TASK and num_tasks:
            spaces[key] = gym.spaces.Discrete(num_tasks)
        else:
            raise ValueError(f"this suite cannot emit observation key {key!r}; it offers {offered}")
    return gym.spaces.Dict(spaces)
