"""The World Action Model: one causal transformer whose shared state feeds both a world model and a policy.

Sequence layout (DESIGN.md §1): tokens ``z_1, a_1, z_2, a_2, ...``. The trunk output at ``z_t`` is ``h_t``
(policy and value read it); the output at ``a_t`` is ``g_t`` (next latent, reward and continuation read it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from wam.envs.spec import EnvSpec
from wam.io.pretrained import config_from_dict, load_state_into, read_config, save_pretrained
from wam.losses import ReturnNormalizer, symexp_bins
from wam.models.config import WAMConfig
from wam.models.nn.heads import PolicyHead, TwoHotHead
from wam.models.nn.grad import scale_grad
from wam.models.nn.tokenizers import ObservationDecoder, ObservationEncoder, action_features, mlp, prepare_obs
from wam.models.nn.transformer import KVCache, Transformer
from wam.models.planning import MPPIConfig, plan_action
from wam.models.nn.polyak import polyak_


@dataclass
class ActState:
    """Per-environment history used by :meth:`WorldActionModel.act_step`: the last steps' latents and actions."""

    z: Tensor  # (N, C, D) right-aligned
    a: Tensor  # (N, C, A)
    length: Tensor  # (N,) number of real past steps


class WorldActionModel(nn.Module):
    """World model + policy from one transformer state. ``loss, metrics = model(batch)`` trains everything."""

    def __init__(self, config: WAMConfig):
        super().__init__()
        self.config = c = config
        spec = c.spec
        if not spec.obs_shapes or spec.action_dim < 1:
            raise ValueError(
                "WAMConfig.spec is empty; build it with EnvSpec.from_spaces(env.observation_space, env.action_space)"
            )
        D = c.dim
        self.encoder = ObservationEncoder(spec, D, c.mlp_hidden, c.cnn_width, c.fusion_layers, c.heads)
        self.decoder = ObservationDecoder(spec, D, c.mlp_hidden, c.cnn_width)
        self.z_in = nn.Linear(D, D)
        self.action_in = nn.Linear(spec.action_dim, D)
        self.token_type = nn.Parameter(torch.randn(2, D) * 0.02)
        self.pos = nn.Embedding(2 * (c.context + c.horizon) + 2, D)
        self.trunk = Transformer(D, c.trunk_layers, c.heads, dropout=c.dropout)
        self.dynamics = mlp(D, c.mlp_hidden, D)
        self.dynamics_norm = nn.LayerNorm(D, elementwise_affine=False)
        bins = symexp_bins(c.num_bins)
        self.reward = TwoHotHead(D, c.mlp_hidden, bins)
        self.cont = mlp(D, c.mlp_hidden, 1)
        self.policy = PolicyHead(D, c.mlp_hidden, spec.action_dim, spec.discrete, c.min_std, c.max_std, c.policy_dist)
        self.value = TwoHotHead(D, c.mlp_hidden, bins)
        self.slow_value = copy.deepcopy(self.value).requires_grad_(False)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if c.dyn_target == "ema" else None
        self.return_norm = ReturnNormalizer()
        self._act_state: ActState | None = None

    # ----------------------------------------------------------------- small verbs
    @property
    def spec(self) -> EnvSpec:
        """The environment spec the model was built for."""
        return self.config.spec

    def encode(self, obs: dict[str, Tensor]) -> Tensor:
        """Raw observations (*L, ...) → latent z (*L, D)."""
        return self.encoder(prepare_obs(obs, self.spec))

    def action_features(self, action: Tensor) -> Tensor:
        """Env actions → float features (*L, A): one-hot for discrete indices, as they are for boxes."""
        return action_features(action, self.spec)

    def _z_token(self, z: Tensor, pos: Tensor) -> Tensor:
        return self.z_in(z) + self.token_type[0] + self.pos(pos)

    def _a_token(self, a: Tensor, pos: Tensor) -> Tensor:
        return self.action_in(a) + self.token_type[1] + self.pos(pos)

    def _policy_input(self, h: Tensor) -> Tensor:
        """What the policy / value read: h with α_pg-scaled gradient (coupled) or a stopped copy (decoupled)."""
        if self.config.coupling == "decoupled":
            return h.detach()
        return scale_grad(h, self.config.alpha_pg)

    def observe(self, z: Tensor, a: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, KVCache]:
        """Run the trunk over a real sequence. z (B,T,D), a (B,T,A), mask (B,T) → h, g (B,T,D) and the cache."""
        B, T, D = z.shape
        assert a.shape[:2] == (B, T) and mask.shape == (B, T), (
            f"z {tuple(z.shape)}, a {tuple(a.shape)}, mask {tuple(mask.shape)}"
        )
        pos = torch.arange(2 * T, device=z.device)
        tokens = torch.stack([self._z_token(z, pos[0::2]), self._a_token(a, pos[1::2])], 2).view(B, 2 * T, D)
        valid = mask.repeat_interleave(2, dim=1)  # (B, 2T)
        out, cache = self.trunk.forward_cached(tokens, valid, None)
        out = out.view(B, T, 2, D)
        return out[:, :, 0], out[:, :, 1], cache

    def next_latent(self, g: Tensor, z: Tensor) -> Tensor:
        """Predicted z_{t+1} from the action-token state g_t and the current latent z_t.

        With ``residual_dynamics`` the head predicts a change added to (a stopped copy of) z_t, so "nothing
        moves" is the starting point instead of something to learn; otherwise it predicts z_{t+1} from g_t alone.
        """
        delta = self.dynamics(g)
        return self.dynamics_norm(delta + z.detach() if self.config.residual_dynamics else delta)

    def predict(self, g: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """From an action-token state g_t and latent z_t: (next latent, expected reward, continuation probability)."""
        return self.next_latent(g, z), self.reward.mean(g), torch.sigmoid(self.cont(g).squeeze(-1))

    # ----------------------------------------------------------------- imagination
    def rollout(
        self,
        cache: KVCache,
        h0: Tensor,
        z0: Tensor,
        pos0: Tensor,
        horizon: int,
        actions: Tensor | None = None,
        detach_inputs: bool = True,
        deterministic: bool = False,
        policy_h0: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Roll the trunk forward on its own predictions, one step at a time, reusing ``cache``.

        h0 (N, D) is the state at a real z token z0 (N, D) at position ``pos0`` (N,). If ``actions`` (N, H, A) are given
        they are used instead of the policy; ``policy_h0`` (default ``h0``) is what the policy reads at the first step and
        the returned ``h[:, 0]`` (the same values, possibly with another autograd history). Returns h (N,H+1,D), g (N,H,D) (action-token states), actions, action features, pre-tanh samples,
        z (N,H,D), reward (N,H), cont (N,H); reward/cont/z index k is the transition after action k.
        """
        h, z = (h0 if policy_h0 is None else policy_h0), z0
        hs, gs, acts, feats, raws, zs, rewards, conts = [h], [], [], [], [], [], [], []
        ones = torch.ones(h0.shape[0], 1, dtype=torch.bool, device=h0.device)
        for k in range(horizon):
            if actions is not None:
                act = actions[:, k]
                feat = raw = self.action_features(act)
            elif deterministic:
                act = self.policy(self._policy_input(h)).mode()
                feat = raw = self.action_features(act)
            else:
                # Boxes: raw is the pre-tanh sample; discrete: raw is a straight-through one-hot.
                act, raw = self.policy(self._policy_input(h)).rsample()
                feat = raw if self.spec.discrete else act
            fed = feat.detach() if detach_inputs else feat
            g, cache = self.trunk.forward_cached(self._a_token(fed, pos0 + 2 * k + 1).unsqueeze(1), ones, cache)
            z_next, r, c = self.predict(g[:, 0], z)
            fed_z = z = z_next.detach() if detach_inputs else z_next
            out, cache = self.trunk.forward_cached(self._z_token(fed_z, pos0 + 2 * k + 2).unsqueeze(1), ones, cache)
            h = out[:, 0]
            hs.append(h)
            gs.append(g[:, 0])
            acts.append(act)
            feats.append(feat)
            raws.append(raw)
            zs.append(z_next)
            rewards.append(r)
            conts.append(c)
        return dict(
            h=torch.stack(hs, 1),
            g=torch.stack(gs, 1),
            action=torch.stack(acts, 1),
            feat=torch.stack(feats, 1),
            raw=torch.stack(raws, 1),
            z=torch.stack(zs, 1),
            reward=torch.stack(rewards, 1),
            cont=torch.stack(conts, 1),
        )

    @torch.no_grad()
    def imagine(
        self, context: dict[str, Tensor], actions: Tensor | None = None, horizon: int = 15, decode: bool = True
    ) -> dict[str, Tensor]:
        """Imagine ``horizon`` steps after a real context (B,T,...) of observations and ``action`` (B,T,A or B,T).

        The action at the context's last step is ignored: imagination starts from its latent. Returns latents,
        actions, rewards, continuation, values and (``decode``) decoded observations of every imagined step.
        """
        self.spec.check_obs(context, batch_dims=2)
        z = self.encode(context)
        B, T, _ = z.shape
        a = (
            self.action_features(context["action"])
            if "action" in context
            else torch.zeros(B, T, self.spec.action_dim, device=z.device)
        )
        mask = torch.ones(B, T, dtype=torch.bool, device=z.device)
        if T > 1:
            h, _, cache = self.observe(z[:, :-1], a[:, :-1], mask[:, :-1])
            out, cache = self.trunk.forward_cached(
                self._z_token(z[:, -1], torch.full((B,), 2 * T - 2, device=z.device)).unsqueeze(1), mask[:, :1], cache
            )
        else:
            out, cache = self.trunk.forward_cached(
                self._z_token(z[:, -1], torch.zeros(B, dtype=torch.long, device=z.device)).unsqueeze(1),
                mask[:, :1],
                None,
            )
        pos0 = torch.full((B,), 2 * T - 2, device=z.device, dtype=torch.long)
        roll = self.rollout(cache, out[:, 0], z[:, -1], pos0, horizon, actions=actions)
        result = dict(
            latent=roll["z"],
            action=roll["action"],
            reward=roll["reward"],
            cont=roll["cont"],
            value=self.value.mean(roll["h"]),
        )
        if decode:
            result["decoded"] = self.decoder(roll["z"])
        return result

    # ----------------------------------------------------------------- training
    def forward(self, batch: dict[str, Tensor], actor_critic: bool = True) -> tuple[Tensor, dict[str, float]]:
        """All losses of DESIGN.md on a replay batch (B, T, ...): returns (total loss, metrics).

        ``actor_critic=False``: world-model losses only (no imagination).
        """
        from wam.models.objective import wam_loss

        return wam_loss(self, batch, actor_critic=actor_critic)

    @torch.no_grad()
    def update_slow_networks(self) -> None:
        """EMA step of the slow critic (and of the target encoder when ``dyn_target='ema'``)."""
        tau = 1.0 - self.config.ema_decay
        pairs = [(self.slow_value, self.value)] + (
            [(self.target_encoder, self.encoder)] if self.target_encoder is not None else []
        )
        for slow, fast in pairs:
            polyak_(slow, fast, tau)

    # ----------------------------------------------------------------- acting
    def init_act_state(self, n: int) -> ActState:
        """Empty history for ``n`` environments."""
        C, dev = self.config.context - 1, self.pos.weight.device
        return ActState(
            torch.zeros(n, C, self.config.dim, device=dev),
            torch.zeros(n, C, self.spec.action_dim, device=dev),
            torch.zeros(n, dtype=torch.long, device=dev),
        )

    @torch.no_grad()
    def act_step(
        self,
        obs: dict[str, Tensor],
        state: ActState,
        is_first: Tensor,
        deterministic: bool,
        planner: MPPIConfig | None = None,
    ) -> tuple[Tensor, ActState]:
        """One action per environment from its history plus the new observation (N, ...); with ``planner`` (box
        actions only) the action comes from MPPI in imagination instead of the policy head alone."""
        z = self.encode(obs)  # (N, D)
        N, C = z.shape[0], self.config.context - 1
        length = torch.where(is_first, torch.zeros_like(state.length), state.length)
        # Tokens: C past (z, a) pairs right-aligned, then the new z; padding sits on the left.
        L = 2 * C + 1
        slot = torch.arange(L, device=z.device)
        first_real = L - (2 * length + 1)  # (N,)
        pos = (slot.unsqueeze(0) - first_real.unsqueeze(1)).clamp(min=0)  # (N, L)
        tokens = torch.stack(
            [self._z_token(state.z, pos[:, 0 : 2 * C : 2]), self._a_token(state.a, pos[:, 1 : 2 * C : 2])], 2
        ).view(N, 2 * C, -1)
        tokens = torch.cat([tokens, self._z_token(z, pos[:, -1]).unsqueeze(1)], 1)  # (N, L, D)
        valid = slot.unsqueeze(0) >= first_real.unsqueeze(1)
        out, cache = self.trunk.forward_cached(tokens, valid, None)
        if planner is not None and not self.spec.discrete:
            action = plan_action(self, cache, out[:, -1], z, pos[:, -1], planner, deterministic)
        else:
            dist = self.policy(out[:, -1])
            action = dist.mode() if deterministic else dist.rsample()[0]
        feat = self.action_features(action)
        new = ActState(
            torch.cat([state.z, z.unsqueeze(1)], 1)[:, 1:],
            torch.cat([state.a, feat.unsqueeze(1)], 1)[:, 1:],
            (length + 1).clamp(max=C),
        )
        return action, new

    def reset(self) -> None:
        """Forget the history used by :meth:`act` (call at the start of every episode)."""
        self._act_state = None

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> np.ndarray:
        """Action for one observation dict (unbatched) or a batch (N, ...); keeps history until :meth:`reset`."""
        first_key = next(iter(self.spec.obs_shapes))
        batched = np.asarray(obs[first_key]).ndim > len(self.spec.obs_shapes[first_key])
        arrays = {
            k: np.asarray(obs[k]) if batched else np.asarray(obs[k])[None] for k in self.spec.obs_shapes if k in obs
        }
        self.spec.check_obs(arrays, batch_dims=1)
        n = arrays[first_key].shape[0]
        fresh = self._act_state is None or self._act_state.z.shape[0] != n
        if fresh:
            self._act_state = self.init_act_state(n)
        device = self.pos.weight.device
        tensors = {k: torch.as_tensor(v, device=device) for k, v in arrays.items()}
        is_first = torch.full((n,), fresh, dtype=torch.bool, device=device)
        action, self._act_state = self.act_step(tensors, self._act_state, is_first, deterministic)
        action = action.cpu().numpy()
        return action if batched else action[0]

    # ----------------------------------------------------------------- checkpoints
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (no pickle)."""
        return save_pretrained(self, "wam", self.config, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> "WorldActionModel":
        """Rebuild a model saved with :meth:`save_pretrained` (or a training run's ``final`` folder)."""
        meta = read_config(directory)
        if meta["agent"] != "wam":
            raise ValueError(
                f"{directory} holds a {meta['agent']!r} checkpoint; load it with wam.agents.registry.load_agent"
            )
        model = cls(config_from_dict(WAMConfig, meta["config"]))
        load_state_into(model, directory)
        return model.to(device) if device is not None else model
