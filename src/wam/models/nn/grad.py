"""Gradient plumbing: pass a tensor through unchanged while scaling the gradient that flows back through it."""

from __future__ import annotations

import torch
from torch import Tensor


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the incoming gradient times ``scale`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        """Return ``x`` unchanged, remembering ``scale``."""
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        """Scale the incoming gradient."""
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """``x`` unchanged forward; its gradient multiplied by ``scale`` backward (``x`` itself when ``scale == 1``)."""
    return x if scale == 1.0 else _ScaleGrad.apply(x, scale)
