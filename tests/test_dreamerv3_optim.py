"""LaProp with adaptive gradient clipping and warm-up (wam.agents.dreamerv3.optim)."""

from __future__ import annotations

import pytest
import torch

from wam.agents.dreamerv3.optim import LaProp


def _one_step(grad: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.nn.Parameter(torch.ones_like(grad))
    opt = LaProp([p], **kwargs)
    p.grad = grad.clone()
    norm = opt.step()
    return p.detach() - 1.0, norm


def test_first_step_moves_each_weight_by_lr_against_the_sign_of_its_gradient() -> None:
    grad = torch.tensor([3.0, -0.01, 200.0])
    delta, norm = _one_step(grad, lr=0.1, agc=0.0, warmup=0)
    torch.testing.assert_close(delta, -0.1 * grad.sign())
    torch.testing.assert_close(norm, torch.linalg.vector_norm(grad))  # reported before any clipping


def test_warmup_ramps_the_learning_rate_linearly() -> None:
    delta, _ = _one_step(torch.tensor([1.0]), lr=0.1, agc=0.0, warmup=4)
    torch.testing.assert_close(delta, torch.tensor([-0.025]))
    opt = LaProp([torch.nn.Parameter(torch.zeros(1))], lr=0.1, warmup=4)
    assert opt.current_lr() == pytest.approx(0.025)


def test_adaptive_clipping_bounds_a_huge_gradient_relative_to_the_weights() -> None:
    # Step 1 normalises any gradient to its sign; step 2 shows the clip: after a unit gradient, a 1e6 spike moves the
    # weight far less than without the clip, where the RMS normaliser barely sees it yet.
    def second_step(agc: float) -> float:
        p = torch.nn.Parameter(torch.ones(1))
        opt = LaProp([p], lr=0.1, agc=agc, warmup=0)
        for g in (1.0, 1e6):
            p.grad = torch.tensor([g])
            opt.step()
        return float(p.detach()) - 0.9  # the second step's move

    assert abs(second_step(agc=0.3)) < abs(second_step(agc=0.0))


def test_loss_falls_on_a_quadratic() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(8))
    target = torch.randn(8)
    opt = LaProp([w], lr=0.05, warmup=10)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((w - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(betas=(0.9, 1.0)), dict(agc=-1.0), dict(warmup=-1)])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LaProp([torch.nn.Parameter(torch.zeros(1))], **kwargs)
