"""Shared fixtures: tiny specs and synthetic batches following the batch convention of wam.agents.base."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

from wam.envs.spec import EnvSpec
from wam.data.synthetic import random_batch

SPECS = {
    "state": EnvSpec({"state": [7]}, 3, False),
    "proprio_rgb_depth": EnvSpec({"proprio": [4], "rgb": [16, 16, 3], "depth": [16, 16, 1]}, 2, False),
    "rgb_task_discrete": EnvSpec({"rgb": [16, 16, 3], "task": []}, 5, True, num_tasks=3),
}


make_batch = random_batch


@pytest.fixture(params=sorted(SPECS))
def spec(request) -> EnvSpec:
    """Each of the tiny specs: vector-only, multimodal, and discrete-action with a task index."""
    return SPECS[request.param]
