"""``act()`` latency of an agent on real observations (p50 / p95 milliseconds), for throughput tables."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

from wam.agents.base import Agent


def act_latency(
    agent: Agent, env: gym.vector.VectorEnv, steps: int = 200, warmup: int = 10, threads: int = 1
) -> dict[str, float]:
    """Time ``agent.act`` on one environment's observations (batch of ``env.num_envs``) over ``steps`` calls."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        obs, _ = env.reset(seed=0)
        state = agent.init_state(env.num_envs)
        is_first = np.ones(env.num_envs, bool)
        times = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            action, state = agent.act(obs, state, is_first, deterministic=True)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
            obs, _, terminated, truncated, _ = env.step(action)
            is_first = terminated | truncated
    finally:
        torch.set_num_threads(previous)
    ms = np.asarray(times) * 1000.0
    return {"act_ms_p50": float(np.percentile(ms, 50)), "act_ms_p95": float(np.percentile(ms, 95))}
