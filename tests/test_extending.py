"""docs/extending.md stays true: its example agent runs through the Agent contract as the page says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_batch
from wam.envs.spec import EnvSpec
from wam.envs import EnvConfig, make_vector
from wam.evaluation.evaluate import evaluate

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def example():
    """The first python block of docs/extending.md, executed as a module."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"no python block in {DOC}"
    module = types.ModuleType("wam_docs_example")
    sys.modules[module.__name__] = module  # dataclasses resolve their module by name
    try:
        exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[module.__name__]


def test_the_example_agent_acts_learns_evaluates_and_round_trips(example, tmp_path):
    torch.manual_seed(0)
    envs = make_vector(
        EnvConfig(name="toy/reach2d", obs=("state",), max_episode_steps=5), num_envs=2, asynchronous=False
    )
    spec = EnvSpec.from_spaces(envs.single_observation_space, envs.single_action_space)
    agent = example.LinearAgent(example.LinearConfig(batch_size=2, seq_len=4), spec)
    obs, _ = envs.reset(seed=0)
    action, _ = agent.act(obs, agent.init_state(2), np.ones(2, bool))
    assert action.shape == (2, 2) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)

    before = agent.mean.weight.detach().clone()
    metrics = agent.update(make_batch(spec, B=2, T=4))
    assert set(metrics) == {"loss/policy", "policy/std"} and all(np.isfinite(v) for v in metrics.values())
    assert not torch.equal(before, agent.mean.weight)
    batch = make_batch(spec, B=2, T=4)
    losses = [agent.update(batch)["loss/policy"] for _ in range(30)]
    assert losses[-1] < losses[0]  # on a fixed batch, the better-than-average actions become more likely
    assert len(evaluate(agent, envs, episodes=2, seed=1).success) == 2

    agent.save_pretrained(tmp_path / "linear")
    loaded = example.LinearAgent.from_pretrained(tmp_path / "linear", device="cpu")
    first = np.ones(2, bool)
    a, _ = agent.act(obs, None, first, deterministic=True)
    b, _ = loaded.act(obs, None, first, deterministic=True)
    assert np.array_equal(a, b)
    envs.close()


def test_the_example_config_and_agent_reject_bad_input(example):
    with pytest.raises(ValueError, match="lr > 0"):
        example.LinearConfig(lr=0)
    with pytest.raises(ValueError, match="box actions"):
        example.LinearAgent(example.LinearConfig(), EnvSpec({"state": [4]}, 3, True))
