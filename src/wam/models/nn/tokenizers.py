"""Per-modality tokenizers, decoders back to each modality, and the per-step fusion into z_t.

Input transforms (shared by encoder inputs and reconstruction targets, see :func:`prepare_obs`):
rgb → [−0.5, 0.5]; depth (metres) → symlog(depth); vectors → symlog(x); task → index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.envs.spec import EnvSpec
from wam.constants import DEPTH, RGB, TASK
from wam.losses import symlog
from wam.models.nn.transformer import Transformer


def prepare_obs(obs: dict[str, Tensor], spec: EnvSpec) -> dict[str, Tensor]:
    """Turn raw observations (any leading dims) into network inputs; images become channels-first."""
    out = {}
    for key in spec.obs_shapes:
        x = obs[key]
        if key == RGB:
            out[key] = x.float().movedim(-1, -3) / 255.0 - 0.5
        elif key == DEPTH:
            out[key] = symlog(x.float()).movedim(-1, -3)
        elif key == TASK:
            out[key] = x.long()
        else:
            out[key] = symlog(x.float())
    return out


def action_features(action: Tensor, spec: EnvSpec) -> Tensor:
    """Env actions → float features (*L, A): one-hot for discrete indices, as they are for boxes."""
    if spec.discrete:
        return F.one_hot(action.long(), spec.action_dim).float()
    return action.float()


class ConvStem(nn.Module):
    """Four stride-2 convolutions: (B, C, S, S) → one token (B, D)."""

    def __init__(self, channels: int, size: int, width: int, dim: int):
        super().__init__()
        chans = [channels, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(1, cout), nn.SiLU()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(chans[-1] * (size // 16) ** 2, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C, S, S) → (B, D)."""
        return self.out(self.net(x).flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvStem`: a latent (B, D) → an image (B, C, S, S)."""

    def __init__(self, channels: int, size: int, width: int, dim: int):
        super().__init__()
        self.base, self.start = 8 * width, size // 16
        self.inp = nn.Linear(dim, self.base * self.start**2)
        chans = [8 * width, 4 * width, 2 * width, width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.GroupNorm(1, cout), nn.SiLU()]
        layers.append(nn.ConvTranspose2d(width, channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """z (B, D) → (B, C, S, S)."""
        return self.net(self.inp(z).view(-1, self.base, self.start, self.start))


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    """Two-layer MLP with LayerNorm and SiLU."""
    return nn.Sequential(nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out))


class ObservationEncoder(nn.Module):
    """Tokenize every present modality and fuse one step's tokens into the latent z_t (LayerNorm-ed, width D).

    A learned query token attends to the modality tokens; missing modalities are simply absent tokens. With
    ``fusion_layers=0`` there is no query and no attention: z_t is the LayerNorm of the sum of the modality tokens
    (for a single modality, e.g. state, the tokenizer's output itself; the cheap choice for state-only agents).
    """

    def __init__(self, spec: EnvSpec, dim: int, hidden: int, cnn_width: int, fusion_layers: int, heads: int):
        super().__init__()
        self.spec = spec
        self.keys = list(spec.obs_shapes)
        self.tokenizers = nn.ModuleDict()
        for key, shape in spec.obs_shapes.items():
            if key in (RGB, DEPTH):
                self.tokenizers[key] = ConvStem(shape[-1], shape[0], cnn_width, dim)
            elif key == TASK:
                self.tokenizers[key] = nn.Embedding(spec.num_tasks, dim)
            else:
                self.tokenizers[key] = mlp(shape[0], hidden, dim)
        if fusion_layers < 0:
            raise ValueError(f"fusion_layers={fusion_layers} must be >= 0 (0: sum the modality tokens)")
        self.modality = nn.Parameter(torch.randn(len(self.keys), dim) * 0.02)
        self.query = nn.Parameter(torch.randn(dim) * 0.02) if fusion_layers else None
        self.fusion = Transformer(dim, fusion_layers, heads) if fusion_layers else None
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        """Prepared inputs with leading dims (*L) → z (*L, D)."""
        first = inputs[self.keys[0]]
        trailing = {RGB: 3, DEPTH: 3, TASK: 0}.get(self.keys[0], 1)
        lead = first.shape[: first.dim() - trailing]
        tokens = []
        for i, key in enumerate(self.keys):
            x = inputs[key]
            if key in (RGB, DEPTH):
                tok = self.tokenizers[key](x.reshape(-1, *x.shape[-3:]))
            elif key == TASK:
                tok = self.tokenizers[key](x.reshape(-1))
            else:
                tok = self.tokenizers[key](x.reshape(-1, x.shape[-1]))
            tokens.append(tok + self.modality[i])
        if self.fusion is None:
            return self.norm(torch.stack(tokens).sum(0)).view(*lead, -1)
        n = tokens[0].shape[0]
        seq = torch.stack([self.query.expand(n, -1)] + tokens, 1)  # (B*, 1 + N, D)
        return self.norm(self.fusion(seq)[:, 0]).view(*lead, -1)


class ObservationDecoder(nn.Module):
    """Decode a latent back into every modality, in the prepared (network-input) space."""

    def __init__(self, spec: EnvSpec, dim: int, hidden: int, cnn_width: int):
        super().__init__()
        self.heads = nn.ModuleDict()
        for key, shape in spec.obs_shapes.items():
            if key in (RGB, DEPTH):
                self.heads[key] = ConvDecoder(shape[-1], shape[0], cnn_width, dim)
            elif key != TASK:
                self.heads[key] = mlp(dim, hidden, shape[0])

    def forward(self, z: Tensor) -> dict[str, Tensor]:
        """z (*L, D) → {key: (*L, ...)} (images channels-first)."""
        lead, flat = z.shape[:-1], z.reshape(-1, z.shape[-1])
        return {k: _unflatten(head(flat), lead) for k, head in self.heads.items()}

    def loss(self, z: Tensor, target: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality reconstruction error (*L) (mean squared error in the prepared space)."""
        pred = self(z)
        out = {}
        for key, p in pred.items():
            dims = tuple(range(len(z.shape) - 1, p.dim()))
            out[key] = F.mse_loss(p, target[key], reduction="none").mean(dims)
        return out


def _unflatten(x: Tensor, lead: torch.Size) -> Tensor:
    """(prod(lead), ...) → (*lead, ...)."""
    return x.view(*lead, *x.shape[1:])
