"""The SAC reference agent: it solves a one-step bandit, keeps its temperature moving, and refuses what it can't read."""

from __future__ import annotations

import pytest
import torch

from conftest import SPECS, bandit_batch, make_batch
from wam.agents.sac import SACAgent, SACConfig
from wam.envs.spec import EnvSpec


def test_sac_learns_the_best_action_of_a_bandit():
    torch.manual_seed(0)
    spec = EnvSpec({"state": [3]}, 2, False)
    agent = SACAgent(SACConfig(batch_size=64, hidden=32, layers=1, lr=3e-3, init_alpha=0.01), spec)
    losses = [agent.update(bandit_batch(spec, 64, seed=i))["loss/critic"] for i in range(600)]
    assert sum(losses[-20:]) < 0.2 * sum(losses[:20])
    obs = {"state": torch.randn(16, 3).numpy()}
    action, _ = agent.act(
        obs, agent.init_state(16), is_first=torch.ones(16, dtype=torch.bool).numpy(), deterministic=True
    )
    assert action.shape == (16, 2) and abs(action - 0.5).mean() < 0.1


def test_sac_temperature_moves_towards_the_target_entropy():
    torch.manual_seed(0)
    spec = EnvSpec({"state": [3]}, 2, False)
    agent = SACAgent(SACConfig(batch_size=16, hidden=16, target_entropy=-10.0), spec)
    before = float(agent.log_alpha.detach())
    for i in range(20):
        metrics = agent.update(make_batch(spec, B=4, T=4, seed=i))
    # The policy's entropy is far above -10, so the temperature must fall.
    assert float(agent.log_alpha.detach()) < before and metrics["sac/alpha"] < 1.0


@pytest.mark.parametrize("spec_name", ["proprio_rgb_depth", "rgb_task_discrete"])
def test_sac_rejects_images_and_discrete_actions(spec_name):
    with pytest.raises(ValueError, match="SAC reference"):
        SACAgent(SACConfig(), SPECS[spec_name])


def test_sac_config_rejects_bad_values():
    with pytest.raises(ValueError, match="seq_len"):
        SACConfig(seq_len=1)
    with pytest.raises(ValueError, match="gamma"):
        SACConfig(gamma=0.0)
