"""The network of the Q-learning World Action Model: one causal transformer, one shared latent, two jobs.

Tokens ``z_1, a_1, z_2, a_2, …`` (one fused observation latent and one action per step). The trunk output at
``z_t`` is ``h_t``: the policy ``π(a | h_t)`` and the Q ensemble ``Q(h_t, a)`` read it. The output at ``a_t`` is
``g_t``: it has seen the history and the action, and predicts the next latent, the reward and the continuation.

Why Q reads ``(h_t, a)`` and not the action token ``g_t`` (DESIGN.md §1 allows either): scoring the policy's own
action at ``g_t`` needs a second, counterfactual trunk pass whose parameters must be frozen for the actor loss; a Q
head on ``(h_t, a)`` gets the same quantity from the one pass the world model needs, and its action gradient goes
through a small MLP (SAC / TD-MPC2), not through attention. The trunk is shared either way: the critic's TD loss
trains it, as do the world-model losses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from wam.envs.spec import EnvSpec
from wam.agents.wamq.config import WAMQConfig
from wam.losses import symexp_bins, twohot_loss, twohot_mean
from wam.models.nn.heads import PolicyHead, TwoHotHead
from wam.models.nn.grad import scale_grad
from wam.models.nn.tokenizers import ObservationEncoder, action_features, mlp, prepare_obs
from wam.models.nn.transformer import Transformer
from wam.models.nn.polyak import polyak_


class QEnsemble(nn.Module):
    """``n`` independent Q heads over ``[h, action]``: two hidden layers with LayerNorm (as TD-MPC2's)."""

    def __init__(self, inp: int, hidden: int, n: int, bins: Tensor | None):
        super().__init__()
        out = 1 if bins is None else len(bins)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Linear(inp, hidden),
                nn.LayerNorm(hidden),
                nn.SiLU(),
                nn.Linear(hidden, hidden),
                nn.LayerNorm(hidden),
                nn.SiLU(),
                nn.Linear(hidden, out),
            )
            for _ in range(n)
        )
        if bins is not None:  # two-hot heads start at Q = 0
            for head in self.heads:
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)
            self.register_buffer("bins", bins, persistent=False)
        else:
            self.bins = None

    def forward(self, h: Tensor, action: Tensor) -> Tensor:
        """Raw outputs (n, *L, K): logits over bins (two-hot) or K = 1 values (scalar)."""
        x = torch.cat([h, action], -1)
        return torch.stack([head(x).float() for head in self.heads])

    def value(self, out: Tensor) -> Tensor:
        """Q values (n, *L) from :meth:`forward`'s output."""
        return out.squeeze(-1) if self.bins is None else twohot_mean(out, self.bins)

    def td_loss(self, out: Tensor, target: Tensor) -> Tensor:
        """Per-head, per-step loss (n, *L) against a target (*L)."""
        if self.bins is None:
            return (out.squeeze(-1) - target).pow(2)
        return twohot_loss(out, target.expand(out.shape[:-1]), self.bins)

    def frozen_value(self, h: Tensor, action: Tensor) -> Tensor:
        """Q values (n, *L) with the heads' parameters held fixed: gradients reach ``h`` and ``action`` only."""
        params = {name: p.detach() for name, p in self.named_parameters()}
        return self.value(functional_call(self, params, (h, action)))


@dataclass
class ActState:
    """Per-environment acting history: the last :attr:`WAMQNet.context` latents and actions, right-aligned."""

    z: Tensor  # (N, C, D)
    a: Tensor  # (N, C, A)
    length: Tensor  # (N,) real past steps held


class WAMQNet(nn.Module):
    """Encoder, causal trunk, world-model heads (next latent, reward, continuation), policy and Q ensemble."""

    def __init__(self, config: WAMQConfig, spec: EnvSpec):
        super().__init__()
        if not spec.obs_shapes or spec.action_dim < 1:
            raise ValueError(
                "the spec is empty; build it with EnvSpec.from_spaces(env.observation_space, env.action_space)"
            )
        self.config, self.spec = config, spec
        c = config
        D, A = c.dim, spec.action_dim
        self.encoder = ObservationEncoder(spec, D, c.mlp_hidden, c.cnn_width, c.fusion_layers, c.heads)
        self.z_in = nn.Linear(D, D)
        self.action_in = nn.Linear(A, D)
        self.token_type = nn.Parameter(torch.randn(2, D) * 0.02)
        self.pos = nn.Embedding(2 * c.seq_len, D)
        self.trunk = Transformer(D, c.trunk_layers, c.heads)
        self.dynamics = mlp(D, c.mlp_hidden, D)
        self.dynamics_norm = nn.LayerNorm(D, elementwise_affine=False)
        bins = symexp_bins(c.num_bins)
        self.reward = TwoHotHead(D, c.mlp_hidden, bins)
        self.cont = mlp(D, c.mlp_hidden, 1)
        self.policy = PolicyHead(D, c.mlp_hidden, A, spec.discrete, c.min_std, c.max_std)
        self.q = QEnsemble(D + A, c.mlp_hidden, c.num_q, bins if c.q_kind == "twohot" else None)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if c.dyn_target == "ema" else None
        self.log_alpha = nn.Parameter(torch.tensor(float(c.init_alpha)).log())

    # ------------------------------------------------------------------ pieces
    def encode(self, obs: dict[str, Tensor]) -> Tensor:
        """Raw observations (*L, ...) → latent z (*L, D)."""
        return self.encoder(prepare_obs(obs, self.spec))

    def action_features(self, action: Tensor) -> Tensor:
        """Env actions → float features (*L, A): one-hot for discrete indices, as they are for boxes."""
        return action_features(action, self.spec)

    def _tokens(self, z: Tensor, a: Tensor, pos: Tensor) -> Tensor:
        """Interleave ``z`` (N, C, D) and ``a`` (N, C, A) into (N, 2C, D) tokens at positions ``pos`` (N, 2C)."""
        N, C, D = z.shape
        zt = self.z_in(z) + self.token_type[0] + self.pos(pos[:, 0::2])
        at = self.action_in(a) + self.token_type[1] + self.pos(pos[:, 1::2])
        return torch.stack([zt, at], 2).view(N, 2 * C, D)

    def observe(self, z: Tensor, a: Tensor, mask: Tensor, last_action: bool = True) -> tuple[Tensor, Tensor]:
        """Trunk over real windows: z (B, T, D), action features a (B, T, A), mask (B, T) → h, g (B, T, D).

        ``last_action=False`` leaves the last action token out: g then holds T - 1 steps, and h is unchanged (the
        trunk is causal), for less work when only the states h are needed (the TD target's pass).
        """
        B, T, D = z.shape
        if T > self.config.seq_len:
            raise ValueError(
                f"a window of {T} steps is longer than the model's seq_len={self.config.seq_len}; "
                "sample windows of at most seq_len steps"
            )
        pos = torch.arange(2 * T, device=z.device).expand(B, -1)
        tokens, valid = self._tokens(z, a, pos), mask.repeat_interleave(2, dim=1)
        if not last_action:
            tokens, valid = tokens[:, :-1], valid[:, :-1]
        out, _ = self.trunk.forward_cached(tokens, valid, None)
        return out[:, 0::2], out[:, 1::2]

    def next_latent(self, g: Tensor) -> Tensor:
        """Predicted z_{t+1} from the action-token state g_t."""
        return self.dynamics_norm(self.dynamics(g))

    def head_input(self, h: Tensor) -> Tensor:
        """What the critic reads: h with α_pg-scaled gradient (coupled) or a stopped copy (decoupled)."""
        if self.config.coupling == "decoupled":
            return h.detach()
        return scale_grad(h, self.config.alpha_pg)

    def actor_input(self, h: Tensor) -> Tensor:
        """What the policy reads during training: :meth:`head_input` with ``actor_trunk_grad``, else a stopped copy."""
        return self.head_input(h) if self.config.actor_trunk_grad else h.detach()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak step of the target Q heads (and of the slow encoder when ``dyn_target='ema'``)."""
        polyak_(self.q_target, self.q, self.config.tau)
        if self.target_encoder is not None:
            polyak_(self.target_encoder, self.encoder, self.config.target_tau)

    # ------------------------------------------------------------------ acting
    @property
    def context(self) -> int:
        """Past steps the policy sees when acting: ``seq_len - 2``, so that it acts from trunk positions at which the
        critic is trained (the last step of a training window has no next step to fit Q on)."""
        return self.config.seq_len - 2

    def init_act_state(self, n: int) -> ActState:
        """Empty history for ``n`` environments."""
        C, dev = self.context, self.token_type.device
        return ActState(
            torch.zeros(n, C, self.config.dim, device=dev),
            torch.zeros(n, C, self.spec.action_dim, device=dev),
            torch.zeros(n, dtype=torch.long, device=dev),
        )

    @torch.no_grad()
    def act_step(
        self, obs: dict[str, Tensor], state: ActState, is_first: Tensor, deterministic: bool
    ) -> tuple[Tensor, ActState]:
        """One action per environment from its history and the new observation (N, ...); returns the new history."""
        z = self.encode(obs)  # (N, D)
        N, C = z.shape[0], self.context
        length = torch.where(is_first, torch.zeros_like(state.length), state.length)
        L = 2 * C + 1  # C past (z, a) pairs, then the new z; padding on the left
        slot = torch.arange(L, device=z.device)
        first_real = L - (2 * length + 1)
        pos = (slot.unsqueeze(0) - first_real.unsqueeze(1)).clamp(min=0)
        past = self._tokens(state.z, state.a, pos[:, :-1]) if C else z.new_zeros(N, 0, z.shape[-1])
        new = self.z_in(z) + self.token_type[0] + self.pos(pos[:, -1])
        tokens = torch.cat([past, new.unsqueeze(1)], 1)
        out, _ = self.trunk.forward_cached(tokens, slot.unsqueeze(0) >= first_real.unsqueeze(1), None)
        dist = self.policy(out[:, -1])
        action = dist.mode() if deterministic else dist.rsample()[0]
        if C:
            state = ActState(
                torch.cat([state.z, z.unsqueeze(1)], 1)[:, 1:],
                torch.cat([state.a, self.action_features(action).unsqueeze(1)], 1)[:, 1:],
                (length + 1).clamp(max=C),
            )
        return action, state
