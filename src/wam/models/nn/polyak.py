"""Slow copies of networks: one Polyak (exponential moving average) step, shared by every target / averaged copy."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def polyak_(slow: nn.Module, fast: nn.Module, tau: float) -> None:
    """Move every parameter of ``slow`` a fraction ``tau`` towards its twin in ``fast`` (same architecture), in place."""
    for ps, pf in zip(slow.parameters(), fast.parameters()):
        ps.lerp_(pf, tau)
