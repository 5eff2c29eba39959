"""MPPI planning: the search itself on a known score, its settings, and planning through a tiny WAM."""

from __future__ import annotations

import pytest
import torch

from conftest import SPECS
from wam.models.config import WAMConfig
from wam.models.planning import MPPIConfig, mppi
from wam.models.world_action_model import WorldActionModel


def _distance_score(target: torch.Tensor):
    """Score of candidates (B, S, H, A): minus the squared distance of every action to ``target`` (B, A)."""
    return lambda candidates: -(candidates - target[:, None, None]).square().sum((-1, -2))


def test_mppi_moves_towards_the_maximum_of_a_known_score():
    target = torch.tensor([[0.6, -0.4], [-0.3, 0.8]])
    config = MPPIConfig(horizon=3, samples=256, policy_samples=0, iterations=4, elites=16, temperature=5.0)
    mean, std = mppi(_distance_score(target), 2, 2, config, generator=torch.Generator().manual_seed(0))
    assert mean.shape == std.shape == (2, 3, 2)
    assert (mean - target[:, None]).abs().max() < 0.15
    assert std.max() < config.init_std  # the search narrowed


def test_mppi_keeps_a_perfect_proposal():
    target = torch.tensor([[0.5, 0.5, -0.5]])
    proposal = target[:, None, None].expand(1, 1, 4, 3)
    config = MPPIConfig(horizon=4, samples=8, policy_samples=1, iterations=2, elites=1)
    mean, _ = mppi(
        _distance_score(target), 1, 3, config, proposals=proposal, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(mean, proposal[:, 0])


@pytest.mark.parametrize(
    "bad",
    [
        dict(horizon=0),
        dict(samples=0),
        dict(elites=100),
        dict(temperature=0.0),
        dict(min_std=2.0),
        dict(policy_samples=-1),
    ],
)
def test_bad_planner_settings_raise(bad):
    with pytest.raises(ValueError):
        MPPIConfig(**bad)


def _tiny_model() -> WorldActionModel:
    torch.manual_seed(0)
    return WorldActionModel(WAMConfig.preset("tiny", spec=SPECS["state"], context=6, horizon=3, imag_starts=8)).eval()


def _act(model: WorldActionModel, planner: MPPIConfig | None, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    obs = {"state": torch.randn(2, 7, generator=torch.Generator().manual_seed(1))}
    state = model.init_act_state(2)
    action, state = model.act_step(obs, state, torch.ones(2, dtype=torch.bool), deterministic=True, planner=planner)
    action, _ = model.act_step(obs, state, torch.zeros(2, dtype=torch.bool), deterministic=True, planner=planner)
    return action


def test_planned_actions_are_box_actions_and_repeatable():
    model = _tiny_model()
    planner = MPPIConfig(horizon=3, samples=16, policy_samples=2, iterations=2, elites=4)
    planned = _act(model, planner, seed=3)
    assert planned.shape == (2, SPECS["state"].action_dim)
    assert planned.abs().max() <= 1.0
    torch.testing.assert_close(planned, _act(model, planner, seed=3))
    assert not torch.allclose(planned, _act(model, None, seed=3))  # the search, not the policy head, chose it


def test_planning_beyond_the_model_horizon_raises():
    with pytest.raises(ValueError, match="horizon"):
        _act(_tiny_model(), MPPIConfig(horizon=4, samples=8, elites=4), seed=0)
