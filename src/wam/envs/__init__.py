"""Environments: one factory for every suite, returning dict observations (see DESIGN.md §1).

>>> env = make("metaworld/reach-v3", obs=("proprio", "rgb", "depth"), image_size=64, seed=0)
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import gymnasium as gym

from wam.envs.config import EnvConfig, parse_obs_keys
from wam.envs.registry import SUITES, MissingSimulatorError, check_obs, check_task, get_suite, list_envs
from wam.envs.wrappers import ActionRepeat, SuccessInfo

__all__ = ["EnvConfig", "make", "make_from_config", "make_vector", "list_envs", "SUITES", "MissingSimulatorError"]


def make_from_config(cfg: EnvConfig) -> gym.Env:
    """Build one environment from an :class:`EnvConfig`; validates name, task and observation keys."""
    suite = get_suite(cfg.suite)
    check_obs(suite, cfg.obs)
    check_task(suite, cfg.task)
    env = suite.build(cfg)
    if cfg.action_repeat > 1:
        env = ActionRepeat(env, cfg.action_repeat)
    env = SuccessInfo(env)
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    return env


def make(
    name: str, obs: tuple[str, ...] | list[str] | str = ("state",), image_size: int = 64, seed: int = 0, **kwargs
) -> gym.Env:
    """Build one environment by name, e.g. ``make("metaworld/reach-v3", obs=("proprio", "rgb"))``.

    Extra keyword arguments are :class:`EnvConfig` fields (``action_repeat``, ``camera``, ...).
    """
    return make_from_config(EnvConfig(name=name, obs=parse_obs_keys(obs), image_size=image_size, seed=seed, **kwargs))


def make_vector(cfg: EnvConfig, num_envs: int, asynchronous: bool = True) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``cfg`` (env ``i`` seeded ``cfg.seed + i``), in worker processes when ``asynchronous``.

    Autoreset is Gymnasium's ``NEXT_STEP``: after ``terminated | truncated`` the next ``step`` call ignores its
    action, resets that environment and returns the first observation of the next episode with reward 0.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs={num_envs} must be >= 1")
    # Validate in this process so a bad name fails fast with a readable error, not in a worker.
    suite = get_suite(cfg.suite)
    check_obs(suite, cfg.obs)
    check_task(suite, cfg.task)
    fns = [partial(make_from_config, replace(cfg, seed=cfg.seed + i)) for i in range(num_envs)]
    mode = gym.vector.AutoresetMode.NEXT_STEP
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, context="spawn", autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
