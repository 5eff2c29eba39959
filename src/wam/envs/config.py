"""Typed configuration for building an environment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wam.constants import OBS_KEYS


def parse_obs_keys(obs: str | Iterable[str]) -> tuple[str, ...]:
    """Observation keys from a tuple, a comma-separated string or a mix: ``"proprio,rgb"``, ``("proprio", "rgb")``
    and ``("proprio,rgb",)`` (what ``--obs proprio,rgb`` gives a tuple flag) all read ``("proprio", "rgb")``."""
    items = [obs] if isinstance(obs, str) else list(obs)
    return tuple(k.strip() for item in items for k in str(item).split(",") if k.strip())


@dataclass
class EnvConfig:
    """How to build one environment; saved with every run so it can be rebuilt exactly."""

    name: str = "metaworld/reach-v3"
    """Environment name, ``<suite>/<task>`` (see ``wam.envs.list_envs()``)."""
    obs: tuple[str, ...] = ("state",)
    """Observation keys to emit: any of rgb, depth, proprio, state, task (space- or comma-separated)."""
    image_size: int = 64
    """Side of the square RGB / depth images, in pixels."""
    seed: int = 0
    """Seed of the first environment; vector env ``i`` uses ``seed + i``."""
    action_repeat: int = 1
    """Repeat each action this many simulator steps (rewards summed, success OR-ed)."""
    max_episode_steps: int | None = None
    """Episode length in agent steps (after action repeat); ``None`` keeps the suite default."""
    camera: str | None = None
    """Camera name for image observations; ``None`` keeps the suite default."""
    reward_type: str = "dense"
    """``dense`` or ``sparse`` for suites that offer both (panda)."""
    antialias: bool = True
    """Multisample anti-aliasing of MuJoCo camera images (MuJoCo's default). Off made 64×64 RGB-D steps 2.6× (MetaWorld)
    to 4× (DMC) faster on a software renderer (``benchmarks/render_speed.py``), with jagged edges; depth is unchanged. MuJoCo suites only
    (MetaWorld, DMC, PointMaze); the others ignore it."""

    def __post_init__(self) -> None:
        self.obs = parse_obs_keys(self.obs)
        if not self.obs:
            raise ValueError("EnvConfig.obs is empty; ask for at least one of " + ", ".join(OBS_KEYS))
        unknown = [k for k in self.obs if k not in OBS_KEYS]
        if unknown:
            raise ValueError(f"unknown observation key(s) {unknown}; valid keys are {list(OBS_KEYS)}")
        if len(set(self.obs)) != len(self.obs):
            raise ValueError(f"duplicate observation keys in {self.obs}")
        if not 8 <= self.image_size <= 1024:
            raise ValueError(f"image_size={self.image_size} is out of range; use 8..1024 (64 is the default)")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat={self.action_repeat} must be >= 1")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps={self.max_episode_steps} must be >= 1 or None")
        if self.reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type={self.reward_type!r}; use 'dense' or 'sparse'")
        if "/" not in self.name:
            raise ValueError(
                f"environment name {self.name!r} must look like '<suite>/<task>', e.g. 'metaworld/reach-v3'"
            )

    @property
    def suite(self) -> str:
        """The part of ``name`` before the slash."""
        return self.name.split("/", 1)[0]

    @property
    def task(self) -> str:
        """The part of ``name`` after the slash."""
        return self.name.split("/", 1)[1]
