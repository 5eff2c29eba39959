"""Loss maths: symlog, two-hot, λ-returns, return normalisation, KL free bits, Normal log-density and entropy."""

import torch

from wam.losses import (
    ReturnNormalizer,
    kl_free_bits,
    lambda_returns,
    normal_entropy,
    normal_log_density,
    symexp,
    symexp_bins,
    symlog,
    twohot,
    twohot_loss,
    twohot_mean,
)


def test_symlog_symexp_are_inverse():
    x = torch.tensor([-1e4, -3.0, -1e-3, 0.0, 2.5, 1e5])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    assert symlog(torch.tensor(0.0)) == 0.0


def test_twohot_round_trip_and_weights():
    bins = symexp_bins(255)
    x = torch.tensor([-1234.5, -1.0, 0.0, 0.3, 77.0])
    enc = twohot(x, bins)
    assert torch.allclose(enc.sum(-1), torch.ones(5))
    assert ((enc > 0).sum(-1) <= 2).all()
    assert torch.allclose((enc * bins).sum(-1), x, rtol=1e-4, atol=1e-4)
    assert torch.allclose(twohot_mean(enc.clamp_min(1e-12).log(), bins), x, rtol=1e-3, atol=1e-3)


def test_twohot_loss_is_minimised_by_the_target():
    bins = symexp_bins(41, 5)
    target = torch.tensor([2.0])
    logits = torch.zeros(1, 41, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        twohot_loss(logits, target, bins).sum().backward()
        opt.step()
    assert abs(float(twohot_mean(logits.detach(), bins)) - 2.0) < 0.05


def test_lambda_returns_match_hand_computation():
    r = torch.tensor([[1.0, 2.0]])
    v = torch.tensor([[0.0, 10.0, 20.0]])
    c = torch.tensor([[1.0, 0.0]])
    g, lam = 0.9, 0.5
    ret1 = 2.0 + g * 0.0 * 20.0
    ret0 = 1.0 + g * 1.0 * ((1 - lam) * 10.0 + lam * ret1)
    assert torch.allclose(lambda_returns(r, v, c, g, lam), torch.tensor([[ret0, ret1]]))


def test_lambda_one_is_monte_carlo_and_zero_is_td():
    r, v, c = torch.rand(3, 5), torch.rand(3, 6), torch.ones(3, 5)
    td = lambda_returns(r, v, c, 0.99, 0.0)
    assert torch.allclose(td, r + 0.99 * v[:, 1:])
    mc = lambda_returns(r, v, c, 1.0, 1.0)
    assert torch.allclose(mc[:, 0], r.sum(1) + v[:, -1])


def test_return_normalizer_tracks_percentile_range_with_floor():
    norm = ReturnNormalizer(decay=0.0)
    norm.update(torch.linspace(0, 100, 1001))
    assert abs(float(norm.scale()) - 90.0) < 0.5
    norm.update(torch.zeros(100))
    assert float(norm.scale()) == 1.0  # never divides by less than the limit


def test_kl_free_bits_clips_and_stops_gradient_below_threshold():
    post = torch.zeros(2, 4, 5, requires_grad=True)
    prior = (torch.zeros(2, 4, 5) + 0.01 * torch.randn(2, 4, 5)).requires_grad_(True)
    dyn, rep = kl_free_bits(post, prior, free=1.0)
    assert torch.allclose(dyn, torch.ones(2)) and torch.allclose(rep, torch.ones(2))
    (dyn.sum() + rep.sum()).backward()
    assert post.grad.abs().max() == 0 and prior.grad.abs().max() == 0
    post2 = torch.randn(2, 4, 5).mul(5).requires_grad_(True)
    dyn2, rep2 = kl_free_bits(post2, prior.detach(), free=1.0)
    assert (dyn2 > 1).all()
    rep2.sum().backward()
    assert post2.grad.abs().max() > 0


def test_twohot_mean_of_uniform_logits_is_exactly_zero():
    bins = symexp_bins(255)
    assert bins[127] == 0 and torch.equal(bins, -bins.flip(0))
    assert twohot_mean(torch.zeros(3, 255), bins).abs().max() == 0


def test_normal_helpers_match_torch_distributions():
    mean, std = torch.tensor([0.0, 0.5, -1.0]), torch.tensor([1.0, 0.2, 0.05])
    x = torch.tensor([0.3, 0.4, -1.2])
    normal = torch.distributions.Normal(mean, std)
    assert torch.allclose(normal_log_density(x, mean, std), normal.log_prob(x))
    assert torch.allclose(normal_entropy(std), normal.entropy())
