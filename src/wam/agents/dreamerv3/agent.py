"""DreamerV3 as a wam :class:`~wam.agents.base.Agent`: acting with the RSSM filter and one update that trains the
world model, the actor (REINFORCE in imagination, or backprop through it) and the critic (imagined + replayed
λ-returns) together.

Losses are a named dict of scalars, scaled by ``DreamerV3Config.loss_scales`` and summed in :meth:`update` only.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from wam.agents.base import Agent
from wam.agents.dreamerv3.config import DreamerV3Checkpoint, DreamerV3Config
from wam.agents.dreamerv3.networks import RSSM, ActorHead, ContHead, Decoder, Encoder, TwoHotHead, depth_to_unit
from wam.agents.dreamerv3.optim import LaProp
from wam.envs.spec import EnvSpec
from wam.constants import ACTION, DEPTH, IS_FIRST, IS_LAST, IS_TERMINAL, MASK, REWARD, RGB, TASK
from wam.io.pretrained import load_pretrained_agent, save_pretrained
from wam.losses import (
    ReturnNormalizer,
    bce_with_logits,
    kl_categorical,
    kl_free_bits,
    lambda_returns,
    masked_mean,
    normal_entropy,
    normal_log_density,
    symexp_bins,
    symlog,
    twohot,
    twohot_loss,
    twohot_mean,
)
from wam.models.nn.polyak import polyak_


def _check_spec(cfg: DreamerV3Config, spec: EnvSpec) -> None:
    """Raise a clear error when the environment cannot be modelled with this config."""
    if not spec.obs_shapes:
        raise ValueError(
            "EnvSpec has no observation keys; DreamerV3 needs at least one of rgb, depth, proprio, state, task"
        )
    if spec.action_dim < 1:
        raise ValueError(f"EnvSpec.action_dim={spec.action_dim} must be >= 1")
    sizes = {k: tuple(spec.obs_shapes[k][:2]) for k in spec.image_keys}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"image keys must share one resolution (one CNN sees them stacked), got {sizes}")
    factor = 2 ** len(cfg.cnn_mults)
    for key, (h, w) in sizes.items():
        if h % factor or w % factor:
            raise ValueError(
                f"{key} images are {h}x{w} but {len(cfg.cnn_mults)} CNN stages need sides divisible by {factor}; "
                f"use image_size 64 or change cnn_mults"
            )


class DreamerV3Agent(Agent):
    """DreamerV3 (Hafner et al. 2023 / 2025): RSSM world model + actor-critic trained in imagination."""

    name = "dreamerv3"

    def __init__(self, config: DreamerV3Config, spec: EnvSpec):
        super().__init__()
        _check_spec(config, spec)
        self.config, self.spec = config, spec
        cfg = config
        self.encoder = Encoder(spec.obs_shapes, spec.num_tasks, cfg)
        self.rssm = RSSM(cfg, self.encoder.out_dim, spec.action_dim)
        feat = self.rssm.feat_dim
        self.decoder = Decoder(spec.obs_shapes, spec.num_tasks, cfg)
        self.reward_head = TwoHotHead(feat, cfg.units, cfg.reward_layers, cfg.bins)
        self.cont_head = ContHead(feat, cfg.units, cfg.cont_layers)
        self.actor = ActorHead(feat, cfg, spec.action_dim, spec.discrete)
        self.critic = TwoHotHead(feat, cfg.units, cfg.critic_layers, cfg.bins)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.retnorm = ReturnNormalizer(cfg.retnorm_decay, cfg.retnorm_limit, cfg.retnorm_low, cfg.retnorm_high)
        self.register_buffer("bins", symexp_bins(cfg.bins), persistent=False)
        # One optimiser for every module, as in the 2025 reference.
        self.optimizer = LaProp(
            [p for p in self.parameters() if p.requires_grad],
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            eps=cfg.eps,
            agc=cfg.agc,
            warmup=cfg.warmup,
        )

    # ------------------------------------------------------------------ acting

    def init_state(self, batch_size: int) -> dict[str, Tensor]:
        """Zero latent state and previous action for ``batch_size`` environments."""
        deter, stoch = self.rssm.initial(batch_size, self.device)
        return {
            "deter": deter,
            "stoch": stoch,
            "action": torch.zeros(batch_size, self.spec.action_dim, device=self.device),
        }

    @torch.no_grad()
    def act(
        self,
        obs: dict[str, np.ndarray],
        state: dict[str, Tensor] | None,
        is_first: np.ndarray,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, dict[str, Tensor]]:
        """Filter one step and pick actions. ``deterministic`` uses the latent and policy modes (evaluation)."""
        self.spec.check_obs(obs, batch_dims=1)
        is_first = np.asarray(is_first, dtype=bool).reshape(-1)
        n = is_first.shape[0]
        bad = {k: obs[k].shape[0] for k in self.spec.obs_shapes if obs[k].shape[0] != n}
        if bad:
            raise ValueError(f"observation batch sizes {bad} differ from is_first's {n}")
        state = self.init_state(n) if state is None else state
        dev = self.device
        x = {k: torch.as_tensor(np.asarray(obs[k]), device=dev) for k in self.spec.obs_shapes}
        reset = torch.as_tensor(is_first, device=dev)
        deter, stoch, _ = self.rssm.obs_step(
            state["deter"], state["stoch"], state["action"], self.encoder(x), reset, mode=deterministic
        )
        action = self._sample_action(self.rssm.feat(deter, stoch), mode=deterministic)  # (N, A)
        if self.spec.discrete:
            out = action.argmax(-1).cpu().numpy().astype(np.int64)
        else:
            action = action.clamp(-1.0, 1.0)  # the env's box; the RSSM then sees what the env executed
            out = action.cpu().numpy().astype(np.float32)
        return out, {"deter": deter, "stoch": stoch, "action": action}

    # ------------------------------------------------------------------ policy helpers

    def _sample_action(self, feat: Tensor, mode: bool = False) -> Tensor:
        """Action as the RSSM sees it: one-hot (N, A) for discrete, raw normal sample (N, A) for continuous."""
        first, std = self.actor(feat)  # (log-probs, None) or (mean, std)
        if self.spec.discrete:
            index = first.argmax(-1) if mode else torch.distributions.Categorical(logits=first).sample()
            return F.one_hot(index, first.shape[-1]).float()
        return first if mode else first + std * torch.randn_like(first)

    def _log_prob_entropy(self, feat: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π(a | s) and H(π(· | s)) for actions in :meth:`_sample_action`'s format: each (...)."""
        first, std = self.actor(feat)
        if self.spec.discrete:
            logp = first
            return (logp * action).sum(-1), -(logp.exp() * logp).sum(-1)
        return normal_log_density(action, first, std).sum(-1), normal_entropy(std).sum(-1)

    def _value(self, head: torch.nn.Module, feat: Tensor) -> Tensor:
        return twohot_mean(head(feat), self.bins)

    def _critic_loss(self, logits: Tensor, ret: Tensor, slow: Tensor) -> Tensor:
        """twohot_loss(logits, ret) + slowreg · twohot_loss(logits, slow), sharing one log-softmax: (...)."""
        target = twohot(ret.detach(), self.bins) + self.config.slowreg * twohot(slow.detach(), self.bins)
        return -(target * logits.log_softmax(-1)).sum(-1)

    # ------------------------------------------------------------------ learning

    def _action_embedding(self, action: Tensor) -> Tensor:
        """Replay actions → RSSM input: int (B, T) → one-hot (B, T, A); float (B, T, A) unchanged."""
        if self.spec.discrete:
            return F.one_hot(action.long(), self.spec.action_dim).float()
        return action.float()

    def world_model_losses(
        self, batch: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        """World-model losses on a replay batch. → (losses, metrics, posterior states {deter, stoch, feat})."""
        cfg, spec = self.config, self.spec
        spec.check_obs(batch, batch_dims=2)
        reward = batch[REWARD].float()
        B, T = reward.shape
        mask = batch[MASK].bool() if MASK in batch else torch.ones(B, T, dtype=torch.bool, device=reward.device)
        obs = {k: batch[k] for k in spec.obs_shapes}
        tokens = self.encoder(obs)  # (B, T, E)
        act = self._action_embedding(batch[ACTION])
        prev_action = torch.cat([torch.zeros_like(act[:, :1]), act[:, :-1]], 1)  # a_{t-1}, (B, T, A)
        # Each sequence starts from the zero state: without stored replay latents, step 0 is always a reset.
        reset = batch[IS_FIRST].bool().clone()
        reset[:, 0] = True
        deter, stoch, post = self.rssm.observe(tokens, prev_action, reset)
        prior = self.rssm.prior(deter)
        dyn, rep = kl_free_bits(post, prior, cfg.free_bits)  # (B, T) each
        feat = self.rssm.feat(deter, stoch)  # (B, T, F)

        losses = {"dyn": masked_mean(dyn, mask), "rep": masked_mean(rep, mask)}
        metrics: dict[str, Tensor] = {}
        recon = self.decoder(deter, stoch)
        rec = {}
        for key, pred in recon.items():
            if key == TASK:
                rec[key] = F.cross_entropy(pred.flatten(0, 1), batch[TASK].long().flatten(), reduction="none").view(
                    B, T
                )
            elif key in (RGB, DEPTH):
                target = batch[key].float() / 255.0 if key == RGB else depth_to_unit(batch[key].float())
                rec[key] = (pred - target).square().sum((-3, -2, -1))  # summed over pixels, as the paper
            else:
                rec[key] = (pred - symlog(batch[key].float())).square().sum(-1)  # symlog MSE
        for key, value in rec.items():
            metrics[f"rec/{key}"] = masked_mean(value.detach(), mask)
        losses["rec"] = masked_mean(sum(rec.values()), mask)
        losses["reward"] = masked_mean(twohot_loss(self.reward_head(feat), reward, self.bins), mask)
        cont_target = 1.0 - batch[IS_TERMINAL].float()
        cont_logit = self.cont_head(feat)
        losses["cont"] = masked_mean(bce_with_logits(cont_logit, cont_target), mask)

        with torch.no_grad():
            metrics["wm/kl"] = masked_mean(kl_categorical(post, prior), mask)
            metrics["wm/prior_entropy"] = masked_mean(-(prior.exp() * prior).sum((-2, -1)), mask)
            metrics["wm/post_entropy"] = masked_mean(-(post.exp() * post).sum((-2, -1)), mask)
            metrics["wm/reward_mae"] = masked_mean((self._value(self.reward_head, feat) - reward).abs(), mask)
            metrics["wm/cont_acc"] = masked_mean(((cont_logit > 0).float() == cont_target).float(), mask)
        return losses, metrics, {"deter": deter, "stoch": stoch, "feat": feat, "mask": mask}

    def imagine(self, deter: Tensor, stoch: Tensor, horizon: int, grad: bool = False) -> tuple[Tensor, Tensor]:
        """Roll the prior forward with the actor from N start states. → feats (N, H+1, F), actions (N, H, A).

        ``grad=True`` keeps the graph from each (reparameterised) action through the dynamics to later states, for the
        ``backprop`` actor; the actor reads stopped states, as in the 2023 reference. Otherwise nothing is tracked.
        """
        with torch.set_grad_enabled(grad):
            feats, actions = [self.rssm.feat(deter, stoch)], []
            for _ in range(horizon):
                action = self._sample_action(feats[-1].detach())
                deter, stoch = self.rssm.img_step(deter, stoch, action)
                feats.append(self.rssm.feat(deter, stoch))
                actions.append(action)
            return torch.stack(feats, 1), torch.stack(actions, 1)

    @property
    def backprop_actor(self) -> bool:
        """Whether the actor learns by differentiating imagined returns (``actor_grad="backprop"``, continuous only)."""
        return self.config.actor_grad == "backprop" and not self.spec.discrete

    def actor_critic_losses(
        self, batch: dict[str, Tensor], post: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Actor, critic and replay-critic losses, imagining from every posterior state of the batch."""
        cfg = self.config
        H, gamma = cfg.imag_horizon, cfg.gamma
        K = min(cfg.imag_last or batch[REWARD].shape[1], batch[REWARD].shape[1])
        # Imagine from (and fit replay values on) the last K steps of each sequence; K = T in the paper.
        post = {k: v[:, -K:] for k, v in post.items()}
        mask, terminal = post["mask"], batch[IS_TERMINAL].bool()[:, -K:]
        B, T = mask.shape

        # --- imagination from stopped starts. With the backprop actor the rollout keeps its graph, and the return
        # (through dynamics, reward head and critic) trains the actor; `update` routes that gradient to the actor only.
        backprop = self.backprop_actor
        graph, actions = self.imagine(
            post["deter"].detach().flatten(0, 1), post["stoch"].detach().flatten(0, 1), H, grad=backprop
        )
        feats = graph.detach()
        with torch.set_grad_enabled(backprop):
            reward = self._value(self.reward_head, graph[:, 1:])  # (N, H): reward on arriving at step t+1
        with torch.no_grad():
            cont = torch.sigmoid(self.cont_head(feats[:, 1:]))  # (N, H)
            slow = self._value(self.slow_critic, feats)  # (N, H+1)
            # A start that is padding or terminal has nothing to learn from.
            cont0 = (mask & ~terminal).flatten().float()
            weight = torch.cumprod(torch.cat([cont0[:, None], gamma * cont[:, :-1]], 1), 1)  # (N, H)
        value_logits = self.critic(feats)  # (N, H+1, K): trains the critic
        value = self._value(self.critic, graph) if backprop else twohot_mean(value_logits, self.bins).detach()
        ret = lambda_returns(reward, value, cont, gamma, cfg.lam)  # (N, H)
        valid = cont0 > 0
        ret_sg = ret.detach()
        self.retnorm.update(ret_sg[valid] if bool(valid.any()) else ret_sg)  # percentiles of real starts only
        scale = self.retnorm.scale()
        adv = (ret - value[:, :-1]) / scale
        logp, entropy = self._log_prob_entropy(feats[:, :-1], actions.detach())  # (N, H) each
        objective = adv if backprop else logp * adv.detach()
        losses = {"actor": (weight * -(objective + cfg.actor_entropy * entropy)).mean()}
        losses["critic"] = (weight * self._critic_loss(value_logits[:, :-1], ret_sg, slow[:, :-1])).mean()

        # --- replay value loss: λ-returns along the real sequence, bootstrapped with each step's imagined return
        boot = ret_sg[:, 0].reshape(B, T)
        rep_feat = post["feat"] if cfg.repval_grad else post["feat"].detach()
        rep_logits = self.critic(rep_feat)  # (B, T, K)
        with torch.no_grad():
            rep_slow = self._value(self.slow_critic, post["feat"])
            # At an episode's last step the return is just its bootstrap: feed it as a "reward" with no continuation.
            # The same where the window runs past the replay's write head (the next step is padding, not data).
            last = batch[IS_LAST].bool()[:, -K:][:, :-1] | ~mask[:, 1:]
            r_in = torch.where(last, boot[:, :-1], batch[REWARD].float()[:, -K:][:, 1:])
            c_in = torch.where(last, torch.zeros_like(r_in), 1.0 - terminal[:, 1:].float())
            rep_ret = lambda_returns(r_in, boot, c_in, gamma, cfg.lam)  # (B, T-1)
        rep_loss = self._critic_loss(rep_logits[:, :-1], rep_ret, rep_slow[:, :-1])
        losses["repval"] = masked_mean(rep_loss, mask[:, :-1] & ~last)

        metrics = {
            "actor/entropy": entropy.detach().mean(),
            "actor/return_scale": scale.detach(),
            "actor/adv_abs": adv.detach().abs().mean(),
            "imag/return": ret_sg.mean(),
            "imag/reward": reward.detach().mean(),
            "imag/cont": cont.mean(),
            "critic/value": value.detach().mean(),
            "critic/slow_value": slow.mean(),
            "critic/replay_return": masked_mean(rep_ret, mask[:, :-1]),
        }
        return losses, metrics

    def loss_scales(self) -> dict[str, float]:
        """Scale of each loss name (the reconstruction keys share ``loss_rec``)."""
        return {**self.config.loss_scales(), "rec": self.config.loss_rec}

    def update(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One LaProp step on world model, actor and critic together; returns scalar metrics."""
        self.train()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        wm_losses, metrics, post = self.world_model_losses(batch)
        ac_losses, ac_metrics = self.actor_critic_losses(batch, post)
        losses = {**wm_losses, **ac_losses}
        scales = self.loss_scales()
        assert set(losses) == set(scales), (sorted(losses), sorted(scales))
        total = sum(scales[k] * v for k, v in losses.items())
        self.optimizer.zero_grad(set_to_none=True)
        if self.backprop_actor:
            # The actor loss's graph runs through the RSSM, reward head and critic; as in the reference (one optimiser
            # per module there), only the actor may learn from it.
            rest = sum(scales[k] * v for k, v in losses.items() if k != "actor")
            rest.backward()
            (scales["actor"] * losses["actor"]).backward(inputs=list(self.actor.parameters()))
        else:
            total.backward()
        self.sync_gradients()
        metrics["opt/lr"] = torch.tensor(self.optimizer.current_lr())
        metrics["opt/grad_norm"] = self.optimizer.step()
        self._update_slow_critic()
        metrics.update(ac_metrics)
        metrics.update({f"loss/{k}": v.detach() for k, v in losses.items()})
        metrics["loss/total"] = total.detach()
        return {k: float(v) for k, v in metrics.items()}

    @torch.no_grad()
    def _update_slow_critic(self) -> None:
        polyak_(self.slow_critic, self.critic, 1.0 - self.config.slow_critic_decay)

    # ------------------------------------------------------------------ state

    def optimizer_state(self) -> dict[str, Any]:
        """LaProp moments and step counts (the slow critic and return normaliser live in ``state_dict``)."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`optimizer_state` output."""
        self.optimizer.load_state_dict(state["optimizer"])

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` (config + env spec) and ``model.safetensors``."""
        return save_pretrained(self, self.name, DreamerV3Checkpoint(self.config, self.spec), directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> "DreamerV3Agent":
        """Rebuild an agent saved with :meth:`save_pretrained` (CUDA when present unless ``device`` is given)."""
        return load_pretrained_agent(cls, DreamerV3Checkpoint, directory, device)
