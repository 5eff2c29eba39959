"""Output heads: policy distributions (tanh-Gaussian or bounded Normal for boxes, categorical for discrete) and two-hot scalars."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.losses import normal_entropy, normal_log_density, twohot_loss, twohot_mean
from wam.models.nn.tokenizers import mlp


class TanhGaussian:
    """Gaussian in pre-tanh space squashed into [-1, 1]. Keeps the pre-tanh sample to avoid atanh."""

    def __init__(self, mean: Tensor, std: Tensor):
        self.mean, self.std = mean, std

    def rsample(self) -> tuple[Tensor, Tensor]:
        """Reparameterised (action, pre-tanh sample)."""
        u = self.mean + self.std * torch.randn_like(self.mean)
        return torch.tanh(u), u

    def mode(self) -> Tensor:
        """Deterministic action tanh(mean)."""
        return torch.tanh(self.mean)

    def log_prob(self, u: Tensor) -> Tensor:
        """log π(tanh(u)) summed over action dims, with the tanh change-of-variables correction."""
        # log(1 - tanh(u)^2) written stably.
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        return (normal_log_density(u, self.mean, self.std) - log_det).sum(-1)

    def entropy(self, u: Tensor) -> Tensor:
        """Entropy estimate: Gaussian entropy plus E[log|d tanh/du|] at the sample ``u``."""
        return normal_entropy(self.std).sum(-1) + (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


class BoundedNormal:
    """Normal with mean ``tanh(μ)`` whose samples are clipped to [-1, 1] (DreamerV3's bounded-normal actor).

    Unlike :class:`TanhGaussian`, its entropy depends only on the standard deviation, so an entropy bonus widens the
    policy without pulling its mean towards 0. Clipping passes gradients straight through, for pathwise training.
    """

    def __init__(self, mean: Tensor, std: Tensor):
        self.mean, self.std = torch.tanh(mean), std

    def rsample(self) -> tuple[Tensor, Tensor]:
        """Reparameterised (clipped action, unclipped sample)."""
        u = self.mean + self.std * torch.randn_like(self.mean)
        return u + (u.clamp(-1.0, 1.0) - u).detach(), u

    def mode(self) -> Tensor:
        """Deterministic action: the mean."""
        return self.mean

    def log_prob(self, u: Tensor) -> Tensor:
        """Gaussian log-density of the unclipped sample ``u``, summed over action dims."""
        return normal_log_density(u, self.mean, self.std).sum(-1)

    def entropy(self, u: Tensor | None = None) -> Tensor:
        """Exact Gaussian entropy (``u`` is accepted for the same call as :class:`TanhGaussian` and ignored)."""
        return normal_entropy(self.std).sum(-1)


class Categorical:
    """Categorical over discrete actions (1% uniform mix, as in DreamerV3)."""

    def __init__(self, logits: Tensor, unimix: float = 0.01):
        probs = (1 - unimix) * logits.softmax(-1) + unimix / logits.shape[-1]
        self.logits = probs.log()

    def rsample(self) -> tuple[Tensor, Tensor]:
        """(action index, straight-through one-hot) — the one-hot carries pathwise gradients."""
        index = torch.distributions.Categorical(logits=self.logits).sample()
        probs = self.logits.exp()
        onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        return index, onehot + probs - probs.detach()

    def mode(self) -> Tensor:
        """Most likely action index."""
        return self.logits.argmax(-1)

    def log_prob(self, sample: Tensor) -> Tensor:
        """log π(a) of the one-hot / straight-through ``sample``."""
        return (self.logits * sample.detach()).sum(-1)

    def entropy(self, sample: Tensor | None = None) -> Tensor:
        """Exact entropy."""
        return -(self.logits.exp() * self.logits).sum(-1)


#: Distributions for Box actions, by the name used in configs.
BOX_POLICIES = {"tanh_normal": TanhGaussian, "bounded_normal": BoundedNormal}


class PolicyHead(nn.Module):
    """h (.., D) → action distribution (``box_dist`` names one of :data:`BOX_POLICIES` for Box actions)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        action_dim: int,
        discrete: bool,
        min_std: float,
        max_std: float,
        box_dist: str = "tanh_normal",
    ):
        super().__init__()
        if box_dist not in BOX_POLICIES:
            raise ValueError(f"unknown policy distribution {box_dist!r}; choose one of {list(BOX_POLICIES)}")
        self.discrete, self.min_std, self.max_std = discrete, min_std, max_std
        self.box_dist = BOX_POLICIES[box_dist]
        self.net = mlp(dim, hidden, action_dim if discrete else 2 * action_dim)
        # Small output layer (DreamerV3's actor outscale): the first policy is centred and as wide as allowed,
        # instead of a random, possibly saturated, direction per state.
        with torch.no_grad():
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()

    def forward(self, h: Tensor) -> TanhGaussian | BoundedNormal | Categorical:
        """The action distribution at state ``h`` (computed in float32, also under autocast)."""
        out = self.net(h).float()
        if self.discrete:
            return Categorical(out)
        mean, raw_std = out.chunk(2, -1)
        std = self.min_std + (self.max_std - self.min_std) * torch.sigmoid(raw_std + 2.0)
        return self.box_dist(mean, std)


class TwoHotHead(nn.Module):
    """x (.., D) → logits over symexp-spaced bins; zero-initialised so early predictions are 0."""

    def __init__(self, dim: int, hidden: int, bins: Tensor):
        super().__init__()
        self.net = mlp(dim, hidden, len(bins))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("bins", bins, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (.., K), float32 also under autocast (two-hot losses need the precision)."""
        return self.net(x).float()

    def mean(self, x: Tensor) -> Tensor:
        """Expected scalar (..)."""
        return twohot_mean(self(x), self.bins)

    def loss(self, x: Tensor, target: Tensor) -> Tensor:
        """Two-hot cross-entropy to ``target`` (..)."""
        return twohot_loss(self(x), target, self.bins)
