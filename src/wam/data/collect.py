"""Roll out an environment's scripted expert and write the episodes as a LeRobot v3.0 dataset.

Any wam environment that has an ``expert_action()`` method (reachable through its wrappers) can be collected;
the expert reads the environment's current internal state, so it needs no observation argument.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from wam.constants import ACTION, IS_FIRST, IS_LAST, IS_TERMINAL, OBS_KEYS, REWARD, SUCCESS
from wam.data.lerobot import LeRobotWriter, check_output_dir
from wam.envs.config import parse_obs_keys

#: Frame rate written to the metadata when neither the config nor the environment gives one.
DEFAULT_FPS = 30.0
#: Stop an episode that never ends on its own after this many steps (marked truncated).
MAX_STEPS = 100_000
#: LeRobot's ``robot_type`` for each suite.
ROBOT_TYPES = {"metaworld": "sawyer", "panda": "panda"}


class NoExpertError(ValueError):
    """The environment has no scripted expert to collect data from."""


@dataclass
class CollectConfig:
    """What to collect and where; the flags of ``wam data collect``."""

    env: str
    """Environment name, e.g. ``metaworld/reach-v3``; it must have a scripted expert (``expert_action()``)."""
    out: Path
    """Dataset directory to create; must not exist or be empty, unless ``overwrite``."""
    episodes: int = 50
    """Number of episodes to collect."""
    obs: str = "state"
    """Comma-separated observation keys to record, e.g. ``proprio,rgb,depth``."""
    seed: int = 0
    """Seed of the environment and of the action noise."""
    image_size: int = 64
    """Side of the square RGB / depth images, in pixels."""
    noise: float = 0.0
    """Std of Gaussian noise added to continuous expert actions (then clipped to the action bounds); for discrete
    actions, the probability of a uniformly random action instead."""
    max_episode_steps: int | None = None
    """Episode length in environment steps; ``None`` keeps the suite default (500 for MetaWorld)."""
    rgb_lossless: bool = False
    """Store RGB bit-exact (H.264 RGB, QP 0, a few times larger) instead of lossy H.264 like LeRobot."""
    fps: float | None = None
    """Frame rate written to the metadata; ``None`` takes the env's ``metadata["render_fps"]``, else 30."""
    overwrite: bool = False
    """Replace an existing dataset at ``out`` (the old one is removed only after the new one is complete)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes} must be >= 1")
        if self.noise < 0:
            raise ValueError(f"noise={self.noise} must be >= 0")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps={self.fps} must be > 0")
        unknown = [k for k in self.obs_keys if k not in OBS_KEYS]
        if unknown or not self.obs_keys:
            raise ValueError(
                f"obs={self.obs!r}: give comma-separated keys among {list(OBS_KEYS)}, e.g. 'proprio,rgb,depth'"
            )

    @property
    def obs_keys(self) -> tuple[str, ...]:
        """``obs`` split into keys."""
        return parse_obs_keys(self.obs)


@dataclass
class CollectSummary:
    """What a collection produced."""

    path: Path
    """The dataset directory."""
    episodes: int
    """Episodes written."""
    frames: int
    """Rows written (T + 1 per episode of T steps)."""
    successes: int
    """Episodes in which the expert solved the task at some step."""
    seconds: float
    """Wall-clock time of the rollouts and writing (not of building the env)."""
    bytes_on_disk: int
    """Size of the finished dataset directory."""
    fps: float
    """Frame rate written to the metadata."""

    @property
    def success_rate(self) -> float:
        """Fraction of episodes in which the task was solved at some step."""
        return self.successes / max(self.episodes, 1)

    @property
    def frames_per_s(self) -> float:
        """Frames written per second of wall-clock time (simulation, rendering and encoding)."""
        return self.frames / max(self.seconds, 1e-9)


def expert_of(env: gym.Env) -> Callable[[], np.ndarray]:
    """The ``expert_action`` method of ``env`` (or of an env it wraps); :class:`NoExpertError` if there is none."""
    try:
        return env.get_wrapper_attr("expert_action")
    except AttributeError:
        name = env.spec.id if env.spec else type(env.unwrapped).__name__
        raise NoExpertError(
            f"environment {name!r} has no scripted expert (no `expert_action()` method), so `wam data collect` cannot "
            "roll it out; suites with experts: metaworld, panda. Collect with a trained agent instead."
        ) from None


def perturb(action: np.ndarray, space: gym.Space, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Add exploration noise to an expert action (see :attr:`CollectConfig.noise`)."""
    if isinstance(space, gym.spaces.Discrete):
        return np.int64(rng.integers(space.n)) if noise > 0 and rng.random() < noise else np.int64(action)
    action = np.asarray(action, dtype=np.float32)
    if action.shape != space.shape:
        raise ValueError(f"expert returned an action of shape {action.shape}; the action space is {space}")
    if noise > 0:
        action = np.clip(action + rng.normal(0.0, noise, action.shape), space.low, space.high).astype(np.float32)
    return action


def rollout(
    env: gym.Env,
    expert: Callable[[], np.ndarray],
    rng: np.random.Generator,
    noise: float = 0.0,
    on_step: Callable[[], None] | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """Run one expert episode; returns its rows in the dataset step convention and its task string."""
    obs, info = env.reset()
    rows: dict[str, list] = {k: [v] for k, v in obs.items()}
    rows.update({ACTION: [], REWARD: [0.0], IS_FIRST: [True], IS_LAST: [False], IS_TERMINAL: [False], SUCCESS: [False]})
    task = str(info.get("task_name", ""))
    for step in range(MAX_STEPS):
        action = perturb(expert(), env.action_space, rng, noise)
        obs, reward, terminated, truncated, info = env.step(action)
        for k, v in obs.items():
            rows[k].append(v)
        done = terminated or truncated or step == MAX_STEPS - 1
        rows[ACTION].append(action)
        rows[REWARD].append(reward)
        rows[IS_FIRST].append(False)
        rows[IS_LAST].append(done)
        rows[IS_TERMINAL].append(terminated)
        rows[SUCCESS].append(bool(info.get(SUCCESS, False)))
        if on_step is not None:
            on_step()
        if done:
            break
    rows[ACTION].append(np.zeros_like(rows[ACTION][0]))
    steps = {k: np.stack(v) if k in obs else np.asarray(v) for k, v in rows.items()}
    steps[REWARD] = steps[REWARD].astype(np.float32)
    return steps, task


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def collect(cfg: CollectConfig, progress: bool = True) -> CollectSummary:
    """Collect ``cfg.episodes`` expert episodes of ``cfg.env`` into a LeRobot v3.0 dataset at ``cfg.out``.

    Raises :class:`NoExpertError` for environments without a scripted expert and ``FileExistsError`` when ``out``
    holds something and ``overwrite`` is off; in both cases nothing is written.
    """
    from tqdm.auto import tqdm

    from wam.envs import make

    check_output_dir(cfg.out, cfg.overwrite)
    kwargs = {} if cfg.max_episode_steps is None else {"max_episode_steps": cfg.max_episode_steps}
    env = make(cfg.env, obs=cfg.obs_keys, image_size=cfg.image_size, seed=cfg.seed, **kwargs)
    try:
        expert = expert_of(env)
        fps = float(cfg.fps or env.metadata.get("render_fps") or DEFAULT_FPS)
        rng = np.random.default_rng(cfg.seed)
        writer = LeRobotWriter(
            cfg.out,
            env.observation_space,
            env.action_space,
            fps,
            env_name=cfg.env,
            robot_type=ROBOT_TYPES.get(cfg.env.split("/", 1)[0]),
            rgb_lossless=cfg.rgb_lossless,
            overwrite=cfg.overwrite,
        )
        bar = tqdm(total=cfg.episodes, unit="ep", desc=f"collect {cfg.env}", disable=not progress, dynamic_ncols=True)
        successes = frames = steps = 0
        start = shown = time.perf_counter()

        def show() -> None:
            rate = steps / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix_str(f"success {successes}/{bar.n}, {rate:.0f} steps/s")

        def on_step() -> None:
            nonlocal steps, shown
            steps += 1
            if time.perf_counter() - shown > 1.0:
                shown = time.perf_counter()
                show()

        with writer, bar, warnings.catch_warnings():
            # MetaWorld's scripted policies warn on every episode that their gains saturate; the env clips anyway.
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)
            for _ in range(cfg.episodes):
                episode, task = rollout(env, expert, rng, cfg.noise, on_step)
                writer.add_episode(episode, task or cfg.env.split("/", 1)[1])
                successes += bool(episode[SUCCESS].any())
                frames += len(episode[IS_FIRST])
                bar.update(1)
                show()
        seconds = time.perf_counter() - start
    finally:
        env.close()
    return CollectSummary(cfg.out, cfg.episodes, frames, successes, seconds, _dir_bytes(cfg.out), fps)
