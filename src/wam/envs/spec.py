"""What an agent must know about its environment, resolved once from the Gymnasium spaces and saved with it."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, OBS_KEYS, RGB, TASK


@dataclass
class EnvSpec:
    """Observation shapes and action space of one environment, in a JSON-friendly form."""

    obs_shapes: dict[str, list[int]] = field(default_factory=dict)
    """Shape of each observation key, e.g. ``{"rgb": [64, 64, 3], "state": [39]}`` (``task``: ``[]``)."""
    action_dim: int = 0
    """Action vector size (Box) or number of discrete actions (Discrete)."""
    discrete: bool = False
    """True for a Discrete action space."""
    num_tasks: int = 1
    """Number of task indices when ``task`` is observed."""

    def __post_init__(self) -> None:
        self.obs_shapes = {k: list(v) for k, v in self.obs_shapes.items()}
        unknown = [k for k in self.obs_shapes if k not in OBS_KEYS]
        if unknown:
            raise ValueError(f"EnvSpec has unknown observation keys {unknown}; valid keys are {list(OBS_KEYS)}")

    @classmethod
    def from_spaces(cls, obs_space: gym.spaces.Dict, action_space: gym.Space) -> "EnvSpec":
        """Resolve a spec from a single (not vectorised) environment's spaces."""
        if not isinstance(obs_space, gym.spaces.Dict):
            raise TypeError(f"expected a Dict observation space (as wam.envs.make returns), got {obs_space}")
        shapes, num_tasks = {}, 1
        for key, space in obs_space.spaces.items():
            if key == TASK:
                num_tasks = int(space.n)
                shapes[key] = []
            else:
                shapes[key] = list(space.shape)
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(shapes, int(action_space.n), True, num_tasks)
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            if not (np.allclose(action_space.low, -1) and np.allclose(action_space.high, 1)):
                raise ValueError("Box actions must lie in [-1, 1]; rescale the environment's action space first")
            return cls(shapes, int(action_space.shape[0]), False, num_tasks)
        raise TypeError(f"unsupported action space {action_space}; use a 1-d Box in [-1, 1] or Discrete")

    @property
    def image_keys(self) -> list[str]:
        """Observation keys holding images, in canonical order."""
        return [k for k in (RGB, DEPTH) if k in self.obs_shapes]

    @property
    def vector_keys(self) -> list[str]:
        """Observation keys holding flat vectors."""
        return [k for k, s in self.obs_shapes.items() if k not in (RGB, DEPTH, TASK)]

    def check_obs(self, obs: dict[str, np.ndarray], batch_dims: int) -> None:
        """Raise a clear error if ``obs`` lacks a key or has a mis-shaped one (after ``batch_dims`` leading dims)."""
        missing = [k for k in self.obs_shapes if k not in obs]
        if missing:
            raise KeyError(
                f"observation is missing key(s) {missing}; the model was built for {sorted(self.obs_shapes)}"
            )
        for key, shape in self.obs_shapes.items():
            got = tuple(obs[key].shape[batch_dims:])
            if got != tuple(shape):
                raise ValueError(
                    f"observation {key!r} has shape {tuple(obs[key].shape)}; expected {batch_dims} batch dim(s) + {tuple(shape)}"
                )
