"""The WAM agent: a :class:`~wam.models.WorldActionModel` plus its optimiser, acting and updating for the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wam.agents.base import Agent
from wam.envs.spec import EnvSpec
from wam.models.config import ACTOR_GRADS, COUPLINGS, DYN_TARGETS, POLICY_DISTS, SIZES, WAMConfig
from wam.models.planning import MPPIConfig
from wam.models.world_action_model import ActState, WorldActionModel

AUTOCAST_MODES = ("auto", "bf16", "off")


@dataclass
class WAMAgentConfig:
    """User-facing settings of the WAM agent (the model's own config is derived from these and the env)."""

    size: str = "small"
    """Model size preset: tiny, small (~1M parameters, CPU default), base, large."""
    coupling: str = "coupled"
    """``coupled`` (policy/value share the trunk's gradient) or ``decoupled`` (stop-gradient ablation)."""
    actor_grad: str = "reinforce"
    """Policy-gradient estimator: ``reinforce`` (default) or ``pathwise``."""
    policy_dist: str = "tanh_normal"
    """Box-action policy: ``tanh_normal`` (tanh-squashed Gaussian) or ``bounded_normal`` (DreamerV3's clipped Normal
    with mean tanh(μ), whose entropy does not depend on the mean)."""
    alpha_pg: float = 1.0
    """How strongly actor/critic gradients reach the shared trunk (coupled mode)."""
    dyn_target: str = "sg"
    """Next-latent target: ``sg`` (stop-gradient online encoder) or ``ema`` (slow encoder)."""
    beta_rec: float = 1.0
    """Weight of the reconstruction loss."""
    beta_dyn: float = 1.0
    """Weight of the next-latent (dynamics) loss."""
    beta_repval: float = 0.0
    """Weight of the critic loss on replayed real sequences (DreamerV3 2025 uses 0.3); 0 = imagined returns only."""
    seq_len: int = 16
    """Training sequence length T (= the trunk's context)."""
    batch_size: int = 16
    """Sequences per update B."""
    horizon: int = 15
    """Imagination horizon."""
    imag_starts: int = 32
    """Imagined rollouts per update (each costs 2·horizon trunk steps; the CPU budget's main knob)."""
    entropy: float = 3e-4
    """Entropy bonus weight."""
    lr: float = 3e-4
    """AdamW learning rate of the world model (encoder, trunk, model heads, decoders)."""
    actor_lr: float | None = None
    """Learning rate of the policy and value heads (``None``: ``lr``). The 2023 DreamerV3 paper trains actor and
    critic at 3e-5 against 1e-4 for the world model; a fast actor can lock onto early model errors."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 100.0
    """Global gradient-norm clip."""
    actor_warmup: int = 500
    """First updates with world-model losses only: the actor and critic start learning once imagination has
    been trained a little (TD-MPC2 likewise pretrains its model on the seed data). The policy still acts."""
    autocast: str = "auto"
    """Mixed precision of the forward pass: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``bf16`` (bfloat16 on any
    device) or ``off`` (float32). Parameters, optimiser state and the loss sum stay float32."""
    extra: dict[str, float] = field(default_factory=dict)
    """Further :class:`WAMConfig` overrides by name (e.g. ``{"gamma": 0.99}``)."""

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; choose one of {list(SIZES)}")
        for name, value, valid in (
            ("coupling", self.coupling, COUPLINGS),
            ("actor_grad", self.actor_grad, ACTOR_GRADS),
            ("dyn_target", self.dyn_target, DYN_TARGETS),
            ("policy_dist", self.policy_dist, POLICY_DISTS),
        ):
            if value not in valid:
                raise ValueError(f"{name}={value!r}; choose one of {valid}")
        if self.batch_size < 1 or self.seq_len < 2:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1 and seq_len={self.seq_len} >= 2")
        if self.lr <= 0 or (self.actor_lr is not None and self.actor_lr <= 0):
            raise ValueError(f"lr={self.lr} and actor_lr={self.actor_lr} must be > 0")
        if self.actor_warmup < 0:
            raise ValueError(f"actor_warmup={self.actor_warmup} must be >= 0")
        if self.autocast not in AUTOCAST_MODES:
            raise ValueError(f"autocast={self.autocast!r}; choose one of {AUTOCAST_MODES}")

    def model_config(self, spec: EnvSpec) -> WAMConfig:
        """The :class:`WAMConfig` these settings describe for an environment ``spec``."""
        scales = dict(
            dyn=self.beta_dyn,
            rec=self.beta_rec,
            reward=1.0,
            cont=1.0,
            actor=1.0,
            critic=1.0,
            slow_critic=1.0,
            repval=self.beta_repval,
        )
        return WAMConfig.preset(
            self.size,
            spec=spec,
            coupling=self.coupling,
            actor_grad=self.actor_grad,
            alpha_pg=self.alpha_pg,
            policy_dist=self.policy_dist,
            dyn_target=self.dyn_target,
            context=self.seq_len,
            horizon=self.horizon,
            imag_starts=self.imag_starts,
            entropy=self.entropy,
            loss_scales=scales,
            **self.extra,
        )


class WAMAgent(Agent):
    """Acts with the model's policy head; one :meth:`update` = one AdamW step on the whole objective."""

    name = "wam"

    def __init__(self, config: WAMAgentConfig, spec: EnvSpec, model: WorldActionModel | None = None):
        super().__init__()
        self.config = config
        self.model = model or WorldActionModel(config.model_config(spec))
        heads = {id(p) for module in (self.model.policy, self.model.value) for p in module.parameters()}
        groups = [
            {"params": [p for p in self.model.parameters() if p.requires_grad and id(p) not in heads], "lr": config.lr},
            {
                "params": [p for p in self.model.parameters() if p.requires_grad and id(p) in heads],
                "lr": config.lr if config.actor_lr is None else config.actor_lr,
            },
        ]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay, eps=1e-6)
        # Counts updates (a buffer, so it travels with training checkpoints) for the actor warm-up.
        self.register_buffer("updates_done", torch.zeros((), dtype=torch.long))
        #: MPPI settings to plan every action with (``None``: the policy head acts alone). A run-time choice of
        #: how to act, not part of the saved agent: set it after loading (``wam eval RUN --plan``).
        self.planner: MPPIConfig | None = None

    @property
    def spec(self) -> EnvSpec:
        """Environment spec of the model."""
        return self.model.spec

    def init_state(self, batch_size: int) -> ActState:
        """Empty acting history for ``batch_size`` environments."""
        return self.model.init_act_state(batch_size)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: ActState, is_first: np.ndarray, deterministic: bool = False):
        """Actions for a batch of observations (see :class:`~wam.agents.base.Agent`)."""
        tensors, first = self.acting_inputs(obs, is_first)
        was_training = self.model.training
        self.model.eval()
        action, state = self.model.act_step(tensors, state, first, deterministic, planner=self.planner)
        self.model.train(was_training)
        return action.cpu().numpy(), state

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on a (B, T, ...) batch; returns metrics."""
        self.model.train()
        with self._autocast():
            loss, metrics = self.model(batch, actor_critic=int(self.updates_done) >= self.config.actor_warmup)
        loss = loss.float()
        self.updates_done += 1
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.sync_gradients()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.model.update_slow_networks()
        metrics["opt/grad_norm"] = float(grad_norm)
        return metrics

    def _autocast(self) -> torch.autocast:
        """The mixed-precision context of :attr:`WAMAgentConfig.autocast` for this agent's device."""
        device = self.device.type
        enabled = self.config.autocast == "bf16" or (self.config.autocast == "auto" and device == "cuda")
        return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=enabled)

    def optimizer_state(self) -> dict[str, Any]:
        """AdamW state (tensors + JSON-able skeleton)."""
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Restore AdamW state."""
        self.optimizer.load_state_dict(state)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save the model (``model.safetensors`` + ``config.json``); loadable with ``WorldActionModel.from_pretrained``."""
        return self.model.save_pretrained(directory)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | None = None, config: WAMAgentConfig | None = None
    ) -> "WAMAgent":
        """An agent around a saved model (optimiser fresh; training state lives in run checkpoints)."""
        model = WorldActionModel.from_pretrained(directory, device=device)
        return cls(config or WAMAgentConfig(), model.spec, model=model)


__all__ = ["WAMAgent", "WAMAgentConfig"]
