"""LaProp with adaptive gradient clipping and linear warm-up: the optimiser of DreamerV3 (2025).

Per parameter tensor, in this order:

1. AGC: scale the gradient so that ||g|| <= agc · max(pmin, ||w||);
2. RMS-normalise it by a bias-corrected EMA of its square (β2, ε);
3. momentum on the *normalised* gradient (β1, bias-corrected) — LaProp's order, which stays stable with tiny ε;
4. step by the learning rate, ramped linearly from 0 over ``warmup`` updates.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class LaProp(torch.optim.Optimizer):
    """LaProp (Ziyin et al. 2020) + adaptive gradient clipping (Brock et al. 2021), as DreamerV3 uses them."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 4e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-20,
        agc: float = 0.3,
        agc_pmin: float = 1e-3,
        warmup: int = 1000,
    ):
        if lr <= 0:
            raise ValueError(f"lr={lr} must be > 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas={betas} must lie in [0, 1)")
        if agc < 0 or warmup < 0 or eps < 0:
            raise ValueError(f"agc={agc}, warmup={warmup}, eps={eps} must be >= 0")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, agc=agc, agc_pmin=agc_pmin, warmup=warmup))

    def current_lr(self) -> float:
        """Learning rate of the next step (after warm-up scaling)."""
        group = self.param_groups[0]
        step = self._step_count(group) + 1
        return group["lr"] * (min(1.0, step / group["warmup"]) if group["warmup"] else 1.0)

    def _step_count(self, group) -> int:
        for p in group["params"]:
            if p in self.state and "step" in self.state[p]:
                return int(self.state[p]["step"])
        return 0

    @torch.no_grad()
    def step(self, closure=None) -> Tensor:
        """Apply one update; returns the global gradient norm *before* clipping (a 0-d tensor)."""
        assert closure is None, "LaProp does not take a closure"
        norms = []
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["nu"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["mu"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                gnorm = torch.linalg.vector_norm(grad)
                norms.append(gnorm)
                if group["agc"]:
                    upper = group["agc"] * torch.linalg.vector_norm(p).clamp(min=group["agc_pmin"])
                    grad = grad * (upper / gnorm.clamp(min=1e-30)).clamp(max=1.0)
                state["step"] += 1
                t = state["step"]
                nu, mu = state["nu"], state["mu"]
                nu.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (nu / (1 - beta2**t)).sqrt_().add_(group["eps"])
                mu.mul_(beta1).add_(grad / denom, alpha=1 - beta1)
                lr = group["lr"] * (min(1.0, t / group["warmup"]) if group["warmup"] else 1.0)
                p.add_(mu, alpha=-lr / (1 - beta1**t))
        if not norms:
            return torch.zeros(())
        return torch.linalg.vector_norm(torch.stack(norms))
