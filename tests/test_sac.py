"""The SAC reference agent: it solves a one-step bandit, keeps its temperature moving, and refuses what it can't read."""

from __future__ import annotations

import numpy as np
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
    with pytest.raises(ValueError, match="eval_tau"):
        SACConfig(eval_tau=-0.1)


def test_sac_evaluates_with_the_slow_actor_copy_and_saves_it(tmp_path):
    torch.manual_seed(0)
    spec = SPECS["state"]
    agent = SACAgent(SACConfig(batch_size=8, hidden=16, layers=1, lr=1e-2, eval_tau=0.1), spec)
    before = [p.clone() for p in agent.eval_actor.parameters()]
    agent.update(make_batch(spec, B=4, T=4))
    for old, slow, fast in zip(before, agent.eval_actor.parameters(), agent.actor.parameters()):
        torch.testing.assert_close(slow, old + 0.1 * (fast - old))
    obs = {"state": torch.randn(8, 7).numpy()}
    first = torch.ones(8, dtype=torch.bool).numpy()
    slow, _ = agent.act(obs, None, first, deterministic=True)
    with torch.no_grad():
        online = agent._policy(agent._features({"state": torch.as_tensor(obs["state"])})).mode().numpy()
    assert not np.allclose(slow, online)
    loaded = SACAgent.from_pretrained(agent.save_pretrained(tmp_path / "sac"), device="cpu")
    np.testing.assert_array_equal(slow, loaded.act(obs, None, first, deterministic=True)[0])
