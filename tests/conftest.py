"""Shared fixtures: tiny specs and synthetic batches following the batch convention of wam.agents.base."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import torch

from wam.envs.spec import EnvSpec
from wam.data.synthetic import random_batch

SPECS = {
    "state": EnvSpec({"state": [7]}, 3, False),
    "proprio_rgb_depth": EnvSpec({"proprio": [4], "rgb": [16, 16, 3], "depth": [16, 16, 1]}, 2, False),
    "rgb_task_discrete": EnvSpec({"rgb": [16, 16, 3], "task": []}, 5, True, num_tasks=3),
}


make_batch = random_batch


def bandit_batch(spec: EnvSpec, n: int, seed: int) -> dict[str, torch.Tensor]:
    """One-step episodes: reward 1 − ‖a − 0.5‖² arrives with the terminal second step."""
    batch = make_batch(spec, B=n, T=2, seed=seed)
    batch["reward"][:, 1] = 1.0 - (batch["action"][:, 0] - 0.5).pow(2).sum(-1)
    batch["is_terminal"][:, 1] = True
    batch["is_last"][:, 1] = True
    batch["mask"][:] = True
    return batch


@pytest.fixture(params=sorted(SPECS))
def spec(request) -> EnvSpec:
    """Each of the tiny specs: vector-only, multimodal, and discrete-action with a task index."""
    return SPECS[request.param]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; torch's default (every core) made the WAM tests ~20x slower while
    another process held a core of a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
