"""Loss maths shared by every agent: symlog, two-hot, λ-returns, return normalisation, KL with free bits.

Pure functions (plus one small stateful normaliser); every agent imports them from here, never re-implements.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    """sign(x)·log(1+|x|): compresses large magnitudes, identity near zero."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    """Inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(x.abs())


def symexp_bins(num_bins: int = 255, limit: float = 20.0) -> Tensor:
    """Bin centres equally spaced in symlog space over [−limit, limit] (DreamerV3's reward / value support),
    exactly symmetric around 0."""
    if num_bins < 2:
        raise ValueError(f"num_bins={num_bins} must be >= 2")
    grid = torch.linspace(-limit, limit, num_bins)
    grid = (grid - grid.flip(0)) / 2  # remove float asymmetry so the centre bin is exactly 0
    return symexp(grid)


def twohot(x: Tensor, bins: Tensor) -> Tensor:
    """Encode scalars ``x`` (any shape) as two-hot weights over sorted ``bins``: (..., K)."""
    x = x.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, x.contiguous(), right=True).clamp(1, len(bins) - 1)
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = ((x - lo) / (hi - lo)).clamp(0, 1)
    out = torch.zeros(*x.shape, len(bins), device=x.device, dtype=x.dtype)
    out.scatter_(-1, below.unsqueeze(-1), (1 - w_hi).unsqueeze(-1))
    out.scatter_add_(-1, above.unsqueeze(-1), w_hi.unsqueeze(-1))
    return out


def twohot_mean(logits: Tensor, bins: Tensor) -> Tensor:
    """Expected value of a categorical over ``bins`` symmetric around 0 (as :func:`symexp_bins`): (..., K) → (...).

    Sums (p(+b) − p(−b))·b over pairs: a plain sum over bins as large as 5e8 leaves a float32 residue of about
    −0.3 for a uniform distribution, so a zero-initialised head would not predict 0.
    """
    if not torch.allclose(bins, -bins.flip(0)):
        raise ValueError("twohot_mean needs bins symmetric around 0, e.g. symexp_bins(...)")
    probs = logits.softmax(-1)
    k = bins.shape[0]
    half = k // 2
    out = (probs[..., k - half :] - probs[..., :half].flip(-1)) @ bins[k - half :]
    if k % 2:
        out = out + probs[..., half] * bins[half]
    return out


def twohot_loss(logits: Tensor, target: Tensor, bins: Tensor) -> Tensor:
    """Cross-entropy between ``logits`` (..., K) and the two-hot encoding of ``target`` (...): per element."""
    return -(twohot(target.detach(), bins) * logits.log_softmax(-1)).sum(-1)


def lambda_returns(reward: Tensor, value: Tensor, cont: Tensor, gamma: float, lam: float) -> Tensor:
    """TD(λ) returns along time (dim 1).

    Shapes: ``reward``, ``cont`` (B, H) are the reward / continuation on the transition *into* step t+1;
    ``value`` (B, H+1) is V(s_0..s_H). Returns (B, H): R_t = r_t + γ c_t ((1-λ) V_{t+1} + λ R_{t+1}), R_H = V_H.
    """
    assert reward.shape == cont.shape and value.shape[1] == reward.shape[1] + 1, (reward.shape, cont.shape, value.shape)
    out = []
    ret = value[:, -1]
    for t in reversed(range(reward.shape[1])):
        ret = reward[:, t] + gamma * cont[:, t] * ((1 - lam) * value[:, t + 1] + lam * ret)
        out.append(ret)
    return torch.stack(out[::-1], 1)


class ReturnNormalizer(torch.nn.Module):
    """Scale returns by an EMA of their 5th–95th percentile range, never dividing by less than ``limit``.

    DreamerV3: advantages are divided by max(limit, P95 - P5), so small returns are not amplified.
    """

    def __init__(self, decay: float = 0.99, limit: float = 1.0, low: float = 0.05, high: float = 0.95):
        super().__init__()
        self.decay, self.limit, self.low, self.high = decay, limit, low, high
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, returns: Tensor) -> None:
        """Fold a batch of returns into the running percentiles."""
        flat = returns.detach().float().flatten()
        lo, hi = torch.quantile(flat, self.low), torch.quantile(flat, self.high)
        if not bool(self.initialised):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.initialised.fill_(True)
        else:
            self.lo.mul_(self.decay).add_((1 - self.decay) * lo)
            self.hi.mul_(self.decay).add_((1 - self.decay) * hi)

    def scale(self) -> Tensor:
        """Current divisor max(limit, P95 - P5)."""
        return torch.clamp(self.hi - self.lo, min=self.limit)


def kl_categorical(post_logits: Tensor, prior_logits: Tensor) -> Tensor:
    """KL(post || prior) for factorised categoricals (..., S, C), summed over S → (...)."""
    post_logp, prior_logp = post_logits.log_softmax(-1), prior_logits.log_softmax(-1)
    return (post_logp.exp() * (post_logp - prior_logp)).sum((-2, -1))


def kl_free_bits(post_logits: Tensor, prior_logits: Tensor, free: float = 1.0) -> tuple[Tensor, Tensor]:
    """DreamerV3's split KL: (dynamics loss, representation loss), each clipped below at ``free`` nats.

    The dynamics term trains the prior towards a stopped posterior; the representation term trains the
    posterior towards a stopped prior. Both are per element (...).
    """
    dyn = kl_categorical(post_logits.detach(), prior_logits)
    rep = kl_categorical(post_logits, prior_logits.detach())
    return dyn.clamp(min=free), rep.clamp(min=free)


def unimix_logits(logits: Tensor, unimix: float = 0.01) -> Tensor:
    """Mix a categorical with ``unimix`` of uniform and return its log-probabilities (avoids zero probabilities)."""
    probs = logits.softmax(-1)
    probs = (1 - unimix) * probs + unimix / probs.shape[-1]
    return probs.log()


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``x`` over entries where ``mask`` is true (all entries when ``mask`` is None)."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Element-wise binary cross-entropy from logits."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")


def normal_log_density(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Element-wise log-density of ``x`` under Normal(mean, std) (not summed over dims)."""
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)


def normal_entropy(std: Tensor) -> Tensor:
    """Element-wise entropy of a Normal with standard deviation ``std`` (not summed over dims)."""
    return 0.5 + 0.5 * math.log(2 * math.pi) + std.log()
