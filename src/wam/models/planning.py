"""Planning at act time: MPPI over action sequences in the World Action Model's imagination (DESIGN.md §1.5).

Each candidate sequence of ``horizon`` actions is rolled forward from the current context with the trunk's KV
cache and scored by its imagined discounted reward plus the discounted value of where it ends (continuation
probabilities multiply in). The search keeps a Gaussian over sequences per environment, samples ``samples``
sequences from it plus ``policy_samples`` proposed by the policy head, refits the Gaussian to the ``elites`` best
weighted by ``exp(temperature · (score − best))``, and repeats ``iterations`` times (the recipe of TD-MPC2,
Hansen et al. 2024, written here from its paper). The first action of the final mean is executed; nothing is
carried over between steps.

Box action spaces only: a discrete policy is used as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class MPPIConfig:
    """Settings of the MPPI planner (``horizon`` must not exceed the model's imagination horizon)."""

    horizon: int = 8
    """Imagined steps per candidate sequence."""
    samples: int = 64
    """Sequences drawn from the search Gaussian per iteration (per environment)."""
    policy_samples: int = 8
    """Sequences proposed by rolling the policy head forward (per environment, drawn once)."""
    iterations: int = 3
    """Refits of the search Gaussian."""
    elites: int = 8
    """Best sequences the Gaussian is refitted to."""
    temperature: float = 0.5
    """Sharpness of the elite weights ``exp(temperature · (score − best))`` (scores are in reward units)."""
    init_std: float = 1.0
    """Standard deviation of the first search Gaussian (actions live in [-1, 1])."""
    min_std: float = 0.05
    """Floor of the search Gaussian's standard deviation."""
    terminal_value: bool = True
    """Add the critic's discounted value of each sequence's last imagined state (off: imagined reward only)."""

    def __post_init__(self) -> None:
        positive = {
            "horizon": self.horizon,
            "samples": self.samples,
            "iterations": self.iterations,
            "elites": self.elites,
        }
        bad = {k: v for k, v in positive.items() if v < 1}
        if bad or self.policy_samples < 0:
            raise ValueError(
                f"MPPI needs horizon, samples, iterations, elites >= 1 and policy_samples >= 0; got {bad or self.policy_samples}"
            )
        if self.elites > self.samples + self.policy_samples:
            raise ValueError(
                f"elites={self.elites} exceeds the {self.samples + self.policy_samples} sequences per iteration"
            )
        if not (self.temperature > 0 and 0 < self.min_std <= self.init_std):
            raise ValueError(
                f"need temperature > 0 and 0 < min_std <= init_std; got {self.temperature}, {self.min_std}, {self.init_std}"
            )


def mppi(
    score: Callable[[Tensor], Tensor],
    batch: int,
    action_dim: int,
    config: MPPIConfig,
    proposals: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Search action sequences in [-1, 1] maximising ``score``.

    ``score`` maps candidates (batch, S, H, A) to scores (batch, S); ``proposals`` (batch, P, H, A) are scored
    with every iteration's samples. Returns the final mean (batch, H, A) and standard deviation (batch, H, A).
    """
    shape = (batch, config.horizon, action_dim)
    mean = torch.zeros(shape, device=device)
    std = torch.full(shape, config.init_std, device=device)
    for _ in range(config.iterations):
        noise = torch.randn((batch, config.samples, *shape[1:]), generator=generator, device=device)
        candidates = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1.0, 1.0)
        if proposals is not None:
            candidates = torch.cat([candidates, proposals], 1)
        scores = score(candidates)  # (batch, S)
        top, index = scores.topk(config.elites, dim=1)
        elites = candidates.gather(1, index[..., None, None].expand(-1, -1, *shape[1:]))  # (batch, E, H, A)
        weights = torch.softmax(config.temperature * (top - top[:, :1]), dim=1)[..., None, None]
        mean = (weights * elites).sum(1)
        std = (weights * (elites - mean.unsqueeze(1)).square()).sum(1).sqrt().clamp(config.min_std, config.init_std)
    return mean, std


def plan_action(
    model,
    cache,
    h0: Tensor,
    z0: Tensor,
    pos0: Tensor,
    config: MPPIConfig,
    deterministic: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """MPPI action (N, A) for N environments whose context the trunk has read (``cache``, last state ``h0`` at
    latent ``z0``, position ``pos0``)."""
    if config.horizon > model.config.horizon:
        raise ValueError(
            f"MPPI horizon {config.horizon} exceeds the model's imagination horizon {model.config.horizon}"
        )
    N, A, gamma = h0.shape[0], model.spec.action_dim, model.config.gamma
    discount = gamma ** torch.arange(config.horizon, device=h0.device, dtype=torch.float32)

    def fan_out(n: int) -> tuple:
        rows = torch.arange(N, device=h0.device).repeat_interleave(n)
        return cache.select(rows), h0[rows], z0[rows], pos0[rows]

    def score(candidates: Tensor) -> Tensor:
        S = candidates.shape[1]
        roll = model.rollout(*fan_out(S), config.horizon, actions=candidates.flatten(0, 1))
        alive = torch.cumprod(torch.cat([torch.ones_like(roll["cont"][:, :1]), roll["cont"]], 1), 1)  # (NS, H+1)
        total = (discount * alive[:, :-1] * roll["reward"]).sum(1)
        if config.terminal_value:
            total = total + gamma**config.horizon * alive[:, -1] * model.value.mean(roll["h"][:, -1])
        return total.view(N, S)

    proposals = None
    if config.policy_samples:
        roll = model.rollout(*fan_out(config.policy_samples), config.horizon)
        proposals = roll["action"].view(N, config.policy_samples, config.horizon, A)
    mean, std = mppi(score, N, A, config, proposals=proposals, generator=generator, device=h0.device)
    first = mean[:, 0]
    if not deterministic:
        first = (first + std[:, 0] * torch.randn(first.shape, generator=generator, device=first.device)).clamp(
            -1.0, 1.0
        )
    return first
