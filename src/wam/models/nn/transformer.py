"""A small pre-norm transformer (nanoGPT-style) with an explicit attention mask and a KV cache.

The mask is explicit rather than "causal by position" because one cache is shared by many imagined
rollouts that start at different points of the same real sequence: each row sees its own prefix only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class KVCache:
    """Keys and values of every layer for the tokens seen so far, plus which of them each row may attend to."""

    keys: list[Tensor]  # per layer (B, nh, L, hs)
    values: list[Tensor]  # per layer (B, nh, L, hs)
    valid: Tensor  # (B, L) bool: key j may be attended to by this row's future tokens

    @property
    def length(self) -> int:
        """Number of cached tokens."""
        return self.valid.shape[1]

    def select(self, index: Tensor) -> "KVCache":
        """Rows ``index`` of the cache (e.g. to fan one real sequence out into many imagined rollouts)."""
        return KVCache([k[index] for k in self.keys], [v[index] for v in self.values], self.valid[index])

    def detach(self) -> "KVCache":
        """The same cache cut from the graph that computed it."""
        return KVCache([k.detach() for k in self.keys], [v.detach() for v in self.values], self.valid)


class SelfAttention(nn.Module):
    """Multi-head self-attention over new tokens, optionally appending to / reading from a cache."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor, past: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N, D), mask (B, N, L_past + N) bool → (out (B, N, D), keys, values (B, nh, L_past + N, hs))."""
        B, N, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, N, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, N, hs)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), dropout_p=drop)  # (B, nh, N, hs)
        return self.proj(out.transpose(1, 2).reshape(B, N, D)), k, v


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor, mask: Tensor, past: tuple[Tensor, Tensor] | None):
        """See :class:`SelfAttention`; returns (x, keys, values)."""
        a, k, v = self.attn(self.ln1(x), mask, past)
        x = x + a
        return x + self.mlp(self.ln2(x)), k, v


class Transformer(nn.Module):
    """Stack of blocks with a final LayerNorm. Bidirectional or causal is decided by the caller's mask."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: int = 4, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Full attention (or ``mask`` (B, N, N)) over x (B, N, D) without a cache."""
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[1], x.shape[1], dtype=torch.bool, device=x.device)
        for block in self.blocks:
            x, _, _ = block(x, mask, None)
        return self.ln_f(x)

    def forward_cached(self, x: Tensor, valid: Tensor, cache: KVCache | None) -> tuple[Tensor, KVCache]:
        """Causal step: new tokens x (B, N, D) with ``valid`` (B, N) attend to the cache's valid keys and to
        earlier valid new tokens. Returns (out (B, N, D), extended cache)."""
        B, N, _ = x.shape
        causal = torch.ones(N, N, dtype=torch.bool, device=x.device).tril()
        new_mask = causal.unsqueeze(0) & valid.unsqueeze(1)  # (B, N, N)
        if cache is not None:
            mask = torch.cat([cache.valid.unsqueeze(1).expand(B, N, cache.length), new_mask], 2)
        else:
            mask = new_mask
        # A padded query row with no visible key would give NaN; let it see itself (its output is ignored).
        eye = torch.zeros_like(mask)
        eye[:, :, mask.shape[2] - N :] = torch.eye(N, dtype=torch.bool, device=x.device)
        mask = mask | eye
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            past = (cache.keys[i], cache.values[i]) if cache is not None else None
            x, k, v = block(x, mask, past)
            keys.append(k)
            values.append(v)
        all_valid = valid if cache is None else torch.cat([cache.valid, valid], 1)
        return self.ln_f(x), KVCache(keys, values, all_valid)
