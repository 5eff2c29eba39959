"""DreamerV3 networks: encoder, decoder, RSSM with a block-diagonal GRU, and the small MLP heads.

The networks know tensors only; losses and acting live in ``agent.py``. Shapes use B batch, T time, N flat batch,
D width, S latents, C classes, A action size, K bins. Images are (..., H, W, C) at the boundary, NCHW inside.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.constants import DEPTH, DEPTH_MAX_M, RGB, TASK
from wam.losses import symlog, unimix_logits

NORM_EPS = 1e-4  # the reference's RMSNorm epsilon


def init_(module: nn.Module, outscale: float = 1.0) -> nn.Module:
    """Truncated-normal fan-in init (std 1.1368/sqrt(fan_in), cut at ±2σ) times ``outscale``; zero bias."""
    weight = module.weight
    fan_in = weight[0].numel() if not isinstance(module, BlockLinear) else module.in_features
    with torch.no_grad():
        nn.init.trunc_normal_(weight, 0.0, 1.0, -2.0, 2.0)
        weight.mul_(1.1368 / math.sqrt(fan_in) * outscale)
        if module.bias is not None:
            module.bias.zero_()
    return module


def linear(i: int, o: int, outscale: float = 1.0) -> nn.Linear:
    """A Linear layer with DreamerV3's initialisation."""
    return init_(nn.Linear(i, o), outscale)


def mlp(i: int, units: int, layers: int) -> tuple[nn.Sequential, int]:
    """``layers`` × (Linear → RMSNorm → SiLU); returns the module and its output width."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [linear(i, units), nn.RMSNorm(units, eps=NORM_EPS), nn.SiLU()]
        i = units
    return nn.Sequential(*mods), i


class BlockLinear(nn.Module):
    """A linear map that is block-diagonal over ``blocks`` groups: (..., G·I) → (..., G·O)."""

    def __init__(self, in_features: int, out_features: int, blocks: int):
        super().__init__()
        assert in_features % blocks == 0 and out_features % blocks == 0, (in_features, out_features, blocks)
        self.in_features, self.blocks = in_features, blocks
        self.weight = nn.Parameter(torch.empty(blocks, in_features // blocks, out_features // blocks))
        self.bias = nn.Parameter(torch.zeros(out_features))
        # Fan-in over the whole input, as the reference does, so blocks start with small weights.
        init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the module (see the class docstring for shapes)."""
        x = x.reshape(*x.shape[:-1], self.blocks, -1)  # (..., G, I)
        x = torch.einsum("...gi,gio->...go", x, self.weight)  # (..., G, O)
        return x.flatten(-2) + self.bias


class ChannelRMSNorm(nn.Module):
    """RMSNorm over the channel dimension of an NCHW feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        """Apply the module (see the class docstring for shapes)."""
        x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + NORM_EPS)
        return x * self.scale[:, None, None]


def image_channels(spec_shapes: dict[str, list[int]]) -> dict[str, int]:
    """Channels of each image key, in canonical order (rgb, then depth): one CNN sees them stacked."""
    return {k: spec_shapes[k][-1] for k in (RGB, DEPTH) if k in spec_shapes}


def depth_to_unit(depth: Tensor) -> Tensor:
    """Metric depth → [0, 1] by log1p(d) / log1p(DEPTH_MAX_M): more resolution near the camera."""
    return torch.log1p(depth.clamp(0.0, DEPTH_MAX_M)) / math.log1p(DEPTH_MAX_M)


def images_to_unit(obs: dict[str, Tensor], keys: list[str]) -> Tensor:
    """Stack the image observations into (..., H, W, C) floats in [0, 1] (rgb /255, depth via :func:`depth_to_unit`)."""
    parts = [obs[k].float() / 255.0 if k == RGB else depth_to_unit(obs[k].float()) for k in keys]
    return torch.cat(parts, -1)


class Encoder(nn.Module):
    """Observation dict → one token vector per step: symlog-MLP for vectors (+ one-hot task), CNN for images."""

    def __init__(self, obs_shapes: dict[str, list[int]], num_tasks: int, cfg):
        super().__init__()
        self.vec_keys = sorted(k for k in obs_shapes if k not in (RGB, DEPTH, TASK))
        self.img_keys = list(image_channels(obs_shapes))
        self.num_tasks = num_tasks if TASK in obs_shapes else 0
        self.out_dim = 0
        vec_in = sum(obs_shapes[k][0] for k in self.vec_keys) + self.num_tasks
        if vec_in:
            self.mlp, width = mlp(vec_in, cfg.units, cfg.enc_layers)
            self.out_dim += width
        if self.img_keys:
            h, w = obs_shapes[self.img_keys[0]][:2]
            chans = sum(image_channels(obs_shapes).values())
            layers: list[nn.Module] = []
            for mult in cfg.cnn_mults:
                depth = cfg.cnn_depth * mult
                layers += [
                    init_(nn.Conv2d(chans, depth, cfg.kernel, padding=cfg.kernel // 2)),
                    nn.MaxPool2d(2),
                    ChannelRMSNorm(depth),
                    nn.SiLU(),
                ]
                chans = depth
            self.cnn = nn.Sequential(*layers)
            factor = 2 ** len(cfg.cnn_mults)
            self.out_dim += chans * (h // factor) * (w // factor)

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        """obs values (*batch, ...) → tokens (*batch, E)."""
        outs = []
        if hasattr(self, "mlp"):
            parts = [symlog(obs[k].float()) for k in self.vec_keys]
            if self.num_tasks:
                parts.append(F.one_hot(obs[TASK].long(), self.num_tasks).float())
            outs.append(self.mlp(torch.cat(parts, -1)))
        if self.img_keys:
            x = images_to_unit(obs, self.img_keys) - 0.5  # (*batch, H, W, C)
            batch = x.shape[:-3]
            x = self.cnn(x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2))  # (N, C', h, w)
            outs.append(x.reshape(*batch, -1))
        return torch.cat(outs, -1)


class Decoder(nn.Module):
    """Latent features → per-key reconstructions: symlog vectors, task logits, images in [0, 1] (sigmoid)."""

    def __init__(self, obs_shapes: dict[str, list[int]], num_tasks: int, cfg):
        super().__init__()
        self.vec_keys = sorted(k for k in obs_shapes if k not in (RGB, DEPTH, TASK))
        self.img_chans = image_channels(obs_shapes)
        self.num_tasks = num_tasks if TASK in obs_shapes else 0
        self.deter, self.stoch_dim = cfg.deter, cfg.stoch * cfg.classes
        feat = self.deter + self.stoch_dim
        if self.vec_keys or self.num_tasks:
            self.mlp, width = mlp(feat, cfg.units, cfg.dec_layers)
            self.vec_heads = nn.ModuleDict({k: linear(width, obs_shapes[k][0]) for k in self.vec_keys})
            if self.num_tasks:
                self.task_head = linear(width, self.num_tasks)
        if self.img_chans:
            h, w = obs_shapes[next(iter(self.img_chans))][:2]
            depths = [cfg.cnn_depth * m for m in cfg.cnn_mults]
            factor = 2 ** len(depths)
            self.min_hw, self.top = (h // factor, w // factor), depths[-1]
            units = self.min_hw[0] * self.min_hw[1] * self.top
            # Block-linear projection of h_t into the first feature map (keeps the layer small for big h_t).
            self.bspace = cfg.bspace
            self.space_deter = BlockLinear(self.deter, units, cfg.bspace)
            self.space_stoch = nn.Sequential(
                linear(self.stoch_dim, 2 * cfg.units),
                nn.RMSNorm(2 * cfg.units, eps=NORM_EPS),
                nn.SiLU(),
                linear(2 * cfg.units, units),
            )
            self.space_norm = nn.RMSNorm(self.top, eps=NORM_EPS)
            layers: list[nn.Module] = []
            chans = depths[-1]
            for depth in reversed(depths[:-1]):
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    init_(nn.Conv2d(chans, depth, cfg.kernel, padding=cfg.kernel // 2)),
                    ChannelRMSNorm(depth),
                    nn.SiLU(),
                ]
                chans = depth
            out_chans = sum(self.img_chans.values())
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                init_(nn.Conv2d(chans, out_chans, cfg.kernel, padding=cfg.kernel // 2)),
            ]
            self.cnn = nn.Sequential(*layers)

    def forward(self, deter: Tensor, stoch: Tensor) -> dict[str, Tensor]:
        """deter (*batch, D), stoch (*batch, S, C) → {key: prediction} (vectors in symlog space; task logits)."""
        batch = deter.shape[:-1]
        stoch = stoch.flatten(-2)
        out: dict[str, Tensor] = {}
        if hasattr(self, "mlp"):
            x = self.mlp(torch.cat([deter, stoch], -1))
            out.update({k: head(x) for k, head in self.vec_heads.items()})
            if self.num_tasks:
                out[TASK] = self.task_head(x)
        if self.img_chans:
            (h, w), g = self.min_hw, self.bspace
            x0 = self.space_deter(deter.reshape(-1, self.deter))  # (N, G·h·w·c)
            x0 = (
                x0.reshape(-1, g, h, w, self.top // g).permute(0, 2, 3, 1, 4).reshape(-1, h, w, self.top)
            )  # (N, h, w, C)
            x1 = self.space_stoch(stoch.reshape(-1, self.stoch_dim)).reshape(-1, h, w, self.top)
            x = F.silu(self.space_norm(x0 + x1)).permute(0, 3, 1, 2)  # (N, C, h, w)
            x = torch.sigmoid(self.cnn(x)).permute(0, 2, 3, 1)  # (N, H, W, C)
            x = x.reshape(*batch, *x.shape[1:])
            for key, part in zip(self.img_chans, x.split(list(self.img_chans.values()), -1)):
                out[key] = part
        return out


class RSSM(nn.Module):
    """Recurrent state-space model: block-GRU deterministic state h and categorical stochastic state z.

    Logits returned by this module already include the 1% uniform mix (they are normalised log-probabilities).
    """

    def __init__(self, cfg, token_dim: int, action_dim: int):
        super().__init__()
        self.deter, self.stoch, self.classes, self.blocks = cfg.deter, cfg.stoch, cfg.classes, cfg.blocks
        self.unimix = cfg.unimix
        H, G = cfg.hidden, cfg.blocks
        self.in_deter, _ = mlp(self.deter, H, 1)
        self.in_stoch, _ = mlp(self.stoch * self.classes, H, 1)
        # with RMSNorm a 1-d action's embedding is sign(a)·w/rms(w) until the bias grows (docs/dreamerv3.md)
        if cfg.action_norm:
            self.in_action = mlp(action_dim, H, 1)[0]
        else:
            self.in_action = nn.Sequential(linear(action_dim, H), nn.SiLU())
        layers: list[nn.Module] = []
        width = self.deter + 3 * H * G  # each block sees its slice of h plus all three input embeddings
        for _ in range(cfg.dyn_layers):
            layers += [BlockLinear(width, self.deter, G), nn.RMSNorm(self.deter, eps=NORM_EPS), nn.SiLU()]
            width = self.deter
        self.dyn_hidden = nn.Sequential(*layers)
        self.gru = BlockLinear(width, 3 * self.deter, G)
        self.post_net, w = mlp(self.deter + token_dim, H, cfg.post_layers)
        self.post_out = linear(w, self.stoch * self.classes)
        self.prior_net, w = mlp(self.deter, H, cfg.prior_layers)
        self.prior_out = linear(w, self.stoch * self.classes)

    @property
    def feat_dim(self) -> int:
        """Width of the model state [h, flat z] that heads read."""
        return self.deter + self.stoch * self.classes

    def initial(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Zero state (the 2025 reference starts every episode from zeros): deter (N, D), stoch (N, S, C)."""
        return torch.zeros(n, self.deter, device=device), torch.zeros(n, self.stoch, self.classes, device=device)

    @staticmethod
    def feat(deter: Tensor, stoch: Tensor) -> Tensor:
        """(*batch, D), (*batch, S, C) → (*batch, D + S·C)."""
        return torch.cat([deter, stoch.flatten(-2)], -1)

    def _logits(self, x: Tensor) -> Tensor:
        return unimix_logits(x.reshape(*x.shape[:-1], self.stoch, self.classes), self.unimix)

    def embed_action(self, action: Tensor) -> Tensor:
        """Action → the GRU's action input (*batch, H); done for a whole sequence at once when filtering."""
        action = action / action.abs().clamp(min=1.0).detach()  # keep unclipped imagined actions in range
        return self.in_action(action)

    def core(self, deter: Tensor, stoch: Tensor, action_emb: Tensor) -> Tensor:
        """One block-GRU step: h_t = f(h_{t-1}, z_{t-1}, a_{t-1}); (N, D), (N, S, C), (N, H) → (N, D)."""
        x = torch.cat([self.in_deter(deter), self.in_stoch(stoch.flatten(-2)), action_emb], -1)  # (N, 3H)
        G = self.blocks
        x = torch.cat([deter.reshape(-1, G, self.deter // G), x[:, None].expand(-1, G, -1)], -1).flatten(
            1
        )  # (N, G·(D/G+3H))
        x = self.gru(self.dyn_hidden(x)).reshape(-1, G, 3, self.deter // G)  # (N, G, 3, D/G)
        reset, cand, update = (x[:, :, i].flatten(1) for i in range(3))
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)  # bias towards keeping the old state
        return update * cand + (1 - update) * deter

    def prior(self, deter: Tensor) -> Tensor:
        """Prior logits p(z | h): (*batch, D) → (*batch, S, C)."""
        return self._logits(self.prior_out(self.prior_net(deter)))

    def posterior(self, deter: Tensor, token: Tensor) -> Tensor:
        """Posterior logits q(z | h, x): → (*batch, S, C)."""
        return self._logits(self.post_out(self.post_net(torch.cat([deter, token], -1))))

    @staticmethod
    def sample(logits: Tensor, mode: bool = False) -> Tensor:
        """One-hot sample (or mode) with straight-through gradients: (..., C) → (..., C)."""
        if mode:
            index = logits.argmax(-1)
        else:  # Gumbel-max = exact categorical sample
            u = torch.rand_like(logits).clamp_(min=1e-20)
            index = (logits - torch.log(-torch.log(u))).argmax(-1)
        hard = F.one_hot(index, logits.shape[-1]).to(logits.dtype)
        probs = logits.softmax(-1)
        return hard + (probs - probs.detach())  # bracketed: the forward value stays exactly one-hot

    def obs_step(
        self,
        deter: Tensor,
        stoch: Tensor,
        action: Tensor,
        token: Tensor,
        reset: Tensor | None,
        mode: bool = False,
        action_emb: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Filter one real step; ``reset`` (N,) zeroes the state and previous action first. → deter, stoch, post logits.

        ``action_emb`` may carry a precomputed :meth:`embed_action` of ``action``; ``reset=None`` means no resets.
        """
        if reset is not None:
            keep = (~reset).to(deter.dtype)[:, None]
            deter, stoch, action = deter * keep, stoch * keep[:, :, None], action * keep
            action_emb = None  # the precomputed embedding was of the unmasked action
        if action_emb is None:
            action_emb = self.embed_action(action)
        deter = self.core(deter, stoch, action_emb)
        logits = self.posterior(deter, token)
        return deter, self.sample(logits, mode), logits

    def img_step(self, deter: Tensor, stoch: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Predict one step without an observation: → deter, stoch (sampled from the prior)."""
        deter = self.core(deter, stoch, self.embed_action(action))
        return deter, self.sample(self.prior(deter))

    def observe(self, tokens: Tensor, prev_action: Tensor, reset: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Filter a sequence: tokens (B, T, E), prev_action (B, T, A), reset (B, T) → deter (B,T,D), stoch (B,T,S,C), post logits."""
        B, T = reset.shape
        assert tokens.shape[:2] == (B, T) and prev_action.shape[:2] == (B, T), (
            tokens.shape,
            prev_action.shape,
            reset.shape,
        )
        deter, stoch = self.initial(B, tokens.device)
        action_emb = self.embed_action(prev_action)  # (B, T, H), one call instead of T
        any_reset = reset.any(0).tolist()  # one host sync; steps without resets skip the masking
        deters, stochs, logits = [], [], []
        for t in range(T):
            deter, stoch, logit = self.obs_step(
                deter,
                stoch,
                prev_action[:, t],
                tokens[:, t],
                reset[:, t] if any_reset[t] else None,
                action_emb=action_emb[:, t],
            )
            deters.append(deter)
            stochs.append(stoch)
            logits.append(logit)
        return torch.stack(deters, 1), torch.stack(stochs, 1), torch.stack(logits, 1)


class TwoHotHead(nn.Module):
    """MLP → logits over two-hot bins (reward, critic). Output layer zero-initialised: predicts 0 at the start."""

    def __init__(self, feat: int, units: int, layers: int, bins: int):
        super().__init__()
        self.mlp, width = mlp(feat, units, layers)
        self.out = linear(width, bins, outscale=0.0)

    def forward(self, feat: Tensor) -> Tensor:
        """Apply the module (see the class docstring for shapes)."""
        return self.out(self.mlp(feat))


class ContHead(nn.Module):
    """MLP → one Bernoulli logit of the episode continuing."""

    def __init__(self, feat: int, units: int, layers: int):
        super().__init__()
        self.mlp, width = mlp(feat, units, layers)
        self.out = linear(width, 1)

    def forward(self, feat: Tensor) -> Tensor:
        """Apply the module (see the class docstring for shapes)."""
        return self.out(self.mlp(feat)).squeeze(-1)


class ActorHead(nn.Module):
    """MLP → policy parameters: (mean, std) of a bounded-std normal, or unimixed categorical logits."""

    def __init__(self, feat: int, cfg, action_dim: int, discrete: bool):
        super().__init__()
        self.discrete, self.action_dim = discrete, action_dim
        self.min_std, self.max_std, self.unimix = cfg.actor_min_std, cfg.actor_max_std, cfg.actor_unimix
        self.mlp, width = mlp(feat, cfg.units, cfg.actor_layers)
        self.out = linear(width, action_dim if discrete else 2 * action_dim, outscale=cfg.actor_outscale)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor | None]:
        """(*batch, F) → (log-probs (*batch, A), None) for discrete, (mean, std) each (*batch, A) for continuous."""
        x = self.out(self.mlp(feat))
        if self.discrete:
            return unimix_logits(x, self.unimix), None
        mean, std = x.chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(std + 2.0) + self.min_std
        return torch.tanh(mean), std
