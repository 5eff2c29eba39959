"""Soft Actor-Critic (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications"): the model-free
reference row of the benchmarks, from vector observations and box actions.

The usual continuous-control recipe (the settings Stable-Baselines3 defaults to): two Q networks with Polyak-averaged
targets, a tanh-Gaussian actor, the entropy temperature tuned towards ``-action_dim``, Adam at 3e-4 for all three,
two hidden layers of 256 units. It trains on the same replay as every other agent: a batch of
``batch_size`` sequences of ``seq_len=2`` steps is ``batch_size`` transitions (s_t, a_t, r_{t+1}, s_{t+1}). With
``--train-ratio 512`` it makes one update of 256 transitions per environment step, the usual SAC setting.
Vector observations are concatenated and symlog-squashed (MetaWorld's 39-d state mixes metres and zero padding).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.agents.base import Agent
from wam.envs.spec import EnvSpec
from wam.constants import ACTION, IS_TERMINAL, MASK, REWARD
from wam.io.pretrained import load_pretrained_agent, save_pretrained
from wam.losses import symlog
from wam.models.nn.heads import TanhGaussian
from wam.models.nn.polyak import polyak_

LOG_STD_RANGE = (-5.0, 2.0)


@dataclass
class SACConfig:
    """Hyper-parameters of the SAC reference agent."""

    batch_size: int = 256
    """Transitions per update."""
    seq_len: int = 2
    """Steps per sampled sequence; 2 = one transition (longer sequences are split into consecutive transitions)."""
    hidden: int = 256
    """Units of each hidden layer (actor and critics)."""
    layers: int = 2
    """Hidden layers (actor and critics)."""
    lr: float = 3e-4
    """Adam learning rate of actor, critics and temperature."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    init_alpha: float = 1.0
    """Initial entropy temperature."""
    target_entropy: float | None = None
    """Entropy the temperature aims for (``None``: ``-action_dim``)."""
    eval_tau: float = 0.0
    """Polyak rate of a slow copy of the actor that deterministic acting (evaluation) uses; 0: the online actor (the
    SAC reference's setting). The WAM's ``eval_tau``, offered here so the two can be compared alike."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.seq_len < 2 or self.hidden < 1 or self.layers < 1:
            raise ValueError(
                f"batch_size, hidden, layers must be >= 1 and seq_len >= 2 (got {self.batch_size}, "
                f"{self.hidden}, {self.layers}, {self.seq_len})"
            )
        if not (0 < self.gamma <= 1 and 0 < self.tau <= 1 and self.lr > 0 and self.init_alpha > 0):
            raise ValueError("SAC needs 0 < gamma <= 1, 0 < tau <= 1, lr > 0 and init_alpha > 0")
        if not 0.0 <= self.eval_tau <= 1.0:
            raise ValueError(f"eval_tau={self.eval_tau} must be in [0, 1] (0: no slow copy)")


@dataclass
class SACCheckpoint:
    """What ``config.json`` of a saved SAC agent holds."""

    config: SACConfig = field(default_factory=SACConfig)
    """Agent hyper-parameters."""
    spec: EnvSpec = field(default_factory=EnvSpec)
    """Observation shapes and action space."""


def _mlp(inp: int, out: int, cfg: SACConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(cfg.layers):
        layers += [nn.Linear(inp, cfg.hidden), nn.ReLU()]
        inp = cfg.hidden
    return nn.Sequential(*layers, nn.Linear(inp, out))


class SACAgent(Agent):
    """SAC from vector observations with box actions (see the module docstring)."""

    name = "sac"

    def __init__(self, config: SACConfig, spec: EnvSpec):
        super().__init__()
        if spec.discrete:
            raise ValueError(
                "the SAC reference supports box actions only; use --agent wam or dreamerv3 for discrete ones"
            )
        if spec.image_keys or not spec.vector_keys:
            raise ValueError(
                f"the SAC reference reads vector observations only (state, proprio), got {sorted(spec.obs_shapes)}; "
                "use --obs state or --obs proprio"
            )
        self.config, self._spec = config, spec
        self.keys = list(spec.vector_keys)
        obs_dim = sum(int(np.prod(spec.obs_shapes[k])) for k in self.keys)
        act_dim = spec.action_dim
        self.actor = _mlp(obs_dim, 2 * act_dim, config)
        self.eval_actor = copy.deepcopy(self.actor).requires_grad_(False) if config.eval_tau > 0 else None
        self.critics = nn.ModuleList([_mlp(obs_dim + act_dim, 1, config) for _ in range(2)])
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(config.init_alpha))))
        self.target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=config.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.lr)

    @property
    def spec(self) -> EnvSpec:
        """Environment spec the agent was built for."""
        return self._spec

    def _features(self, obs: dict[str, Tensor]) -> Tensor:
        return symlog(torch.cat([obs[k].float() for k in self.keys], -1))

    def _policy(self, x: Tensor, actor: nn.Module | None = None) -> TanhGaussian:
        mean, log_std = (self.actor if actor is None else actor)(x).chunk(2, -1)
        return TanhGaussian(mean, log_std.clamp(*LOG_STD_RANGE).exp())

    def _q(self, critics: nn.ModuleList, x: Tensor, action: Tensor) -> Tensor:
        xa = torch.cat([x, action], -1)
        return torch.min(critics[0](xa), critics[1](xa)).squeeze(-1)

    def init_state(self, batch_size: int) -> None:
        """SAC is memoryless: no acting state."""
        return None

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: Any, is_first: np.ndarray, deterministic: bool = False):
        """Actions for a batch of observations (see :class:`~wam.agents.base.Agent`)."""
        self._spec.check_obs(obs, batch_dims=1)
        x = self._features({k: torch.as_tensor(np.asarray(obs[k]), device=self.device) for k in self.keys})
        dist = self._policy(x, self.eval_actor if deterministic else None)
        action = dist.mode() if deterministic else dist.rsample()[0]
        return action.cpu().numpy().astype(np.float32), None

    def update(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One critic, actor and temperature step on the batch's transitions (t → t+1 where step t+1 is real)."""
        self._spec.check_obs(batch, batch_dims=2)
        x = self._features(batch)
        valid = batch[MASK][:, 1:].bool().flatten()
        obs, next_obs = x[:, :-1].flatten(0, 1)[valid], x[:, 1:].flatten(0, 1)[valid]
        action = batch[ACTION][:, :-1].float().flatten(0, 1)[valid]
        reward = batch[REWARD][:, 1:].float().flatten()[valid]
        not_done = 1.0 - batch[IS_TERMINAL][:, 1:].float().flatten()[valid]
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_dist = self._policy(next_obs)
            next_action, next_u = next_dist.rsample()
            next_logp = next_dist.log_prob(next_u)
            target = reward + self.config.gamma * not_done * (
                self._q(self.target_critics, next_obs, next_action) - alpha * next_logp
            )
        xa = torch.cat([obs, action], -1)
        critic_loss = sum(F.mse_loss(q(xa).squeeze(-1), target) for q in self.critics)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.sync_gradients()
        self.critic_opt.step()

        dist = self._policy(obs)
        new_action, u = dist.rsample()
        logp = dist.log_prob(u)
        actor_loss = (alpha * logp - self._q(self.critics, obs, new_action)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.sync_gradients()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.sync_gradients()
        self.alpha_opt.step()
        with torch.no_grad():
            polyak_(self.target_critics, self.critics, self.config.tau)
            if self.eval_actor is not None:
                polyak_(self.eval_actor, self.actor, self.config.eval_tau)
        return {
            "loss/critic": float(critic_loss.detach()),
            "loss/actor": float(actor_loss.detach()),
            "loss/alpha": float(alpha_loss.detach()),
            "sac/alpha": float(alpha),
            "sac/entropy": float(-logp.detach().mean()),
            "sac/q": float(target.mean()),
        }

    def optimizer_state(self) -> dict[str, Any]:
        """Adam moments of actor, critics and temperature."""
        return {
            "actor": self.actor_opt.state_dict(),
            "critic": self.critic_opt.state_dict(),
            "alpha": self.alpha_opt.state_dict(),
        }

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`optimizer_state` output."""
        self.actor_opt.load_state_dict(state["actor"])
        self.critic_opt.load_state_dict(state["critic"])
        self.alpha_opt.load_state_dict(state["alpha"])

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` (config + env spec) and ``model.safetensors``."""
        return save_pretrained(self, self.name, SACCheckpoint(self.config, self._spec), directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> "SACAgent":
        """Rebuild an agent saved with :meth:`save_pretrained` (CUDA when present unless ``device`` is given)."""
        return load_pretrained_agent(cls, SACCheckpoint, directory, device)


__all__ = ["SACAgent", "SACConfig"]
