"""Evaluation with the protocol every agent shares: deterministic policy, a fixed number of episodes,
success = ``info["success"]`` at *any* step of the episode (MetaWorld's protocol), plus the return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from wam.agents.base import Agent
from wam.constants import SUCCESS


@dataclass
class EvalResult:
    """Per-episode outcomes of one evaluation."""

    success: list[bool]
    returns: list[float]
    lengths: list[int]

    def summary(self) -> dict[str, float]:
        """Mean success rate, mean return and mean episode length."""
        return {
            "eval/success": float(np.mean(self.success)),
            "eval/return": float(np.mean(self.returns)),
            "eval/length": float(np.mean(self.lengths)),
            "eval/episodes": float(len(self.success)),
        }


def evaluate(
    agent: Agent,
    envs: gym.vector.VectorEnv,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    video: str | Path | None = None,
    on_episode: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes split evenly over the vector env's copies (``NEXT_STEP`` autoreset).

    Every copy runs the same number of episodes, so short episodes are not over-represented. ``video`` writes
    the first copy's first episode to an mp4 (needs a ``render()`` on the environment). ``on_episode(done, total)``
    is called as episodes finish (e.g. to keep a progress bar alive).
    """
    n = envs.num_envs
    quota = -(-episodes // n)  # ceil
    obs, _ = envs.reset(seed=seed)
    state = agent.init_state(n)
    is_first = np.ones(n, bool)
    done_prev = np.zeros(n, bool)
    ep_return, ep_len, ep_success = np.zeros(n), np.zeros(n, int), np.zeros(n, bool)
    finished = [[] for _ in range(n)]
    frames = []
    while min(len(f) for f in finished) < quota:
        action, state = agent.act(obs, state, is_first, deterministic=deterministic)
        if video is not None and len(finished[0]) == 0 and not done_prev[0]:
            frames.append(envs.call("render")[0])
        obs, reward, terminated, truncated, info = envs.step(action)
        live = ~done_prev  # envs whose step was real (not the autoreset step)
        ep_return += np.where(live, reward, 0.0)
        ep_len += live
        ep_success |= live & np.asarray(info.get(SUCCESS, np.zeros(n, bool)), bool)
        done = live & (terminated | truncated)
        for i in np.flatnonzero(done):
            if len(finished[i]) < quota:
                finished[i].append((bool(ep_success[i]), float(ep_return[i]), int(ep_len[i])))
                if on_episode is not None:
                    on_episode(min(sum(len(f) for f in finished), episodes), episodes)
            ep_return[i], ep_len[i], ep_success[i] = 0.0, 0, False
        is_first = done_prev.copy()
        done_prev = done
    flat = [ep for i in range(n) for ep in finished[i][:quota]][:episodes]
    if video is not None and frames:
        import imageio.v2 as imageio

        Path(video).parent.mkdir(parents=True, exist_ok=True)
        imageio.mimsave(str(video), frames, fps=30)
    return EvalResult([e[0] for e in flat], [e[1] for e in flat], [e[2] for e in flat])
