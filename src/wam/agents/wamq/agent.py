"""The agent around :class:`~wam.agents.wamq.model.WAMQNet`: acting for the loop, one Adam step per update."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wam.agents.base import Agent
from wam.envs.spec import EnvSpec
from wam.agents.wamq.config import WAMQCheckpoint, WAMQConfig
from wam.agents.wamq.loss import wamq_loss
from wam.agents.wamq.model import ActState, WAMQNet
from wam.io.pretrained import load_pretrained_agent, save_pretrained
from wam.models.nn.polyak import polyak_


class WAMQAgent(Agent):
    """World Action Model trained by TD on real transitions and the policy gradient through Q (see the package)."""

    name = "wamq"

    def __init__(self, config: WAMQConfig, spec: EnvSpec):
        super().__init__()
        self.config, self._spec = config, spec
        self.net = WAMQNet(config, spec)
        # A Polyak-averaged copy for deterministic acting (``eval_tau``); saved with the agent, never trained.
        self.eval_net = copy.deepcopy(self.net).requires_grad_(False) if config.eval_tau > 0 else None
        params = [p for p in self.net.parameters() if p.requires_grad]
        # One fused kernel per step on CPU and CUDA (torch >= 2.4): ~10% of an update at the CPU default size.
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)

    @property
    def spec(self) -> EnvSpec:
        """Environment spec the agent was built for."""
        return self._spec

    def init_state(self, batch_size: int) -> ActState:
        """Empty acting history for ``batch_size`` environments."""
        return self.net.init_act_state(batch_size)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], state: ActState, is_first: np.ndarray, deterministic: bool = False):
        """Actions for a batch of observations (see :class:`~wam.agents.base.Agent`)."""
        tensors, first = self.acting_inputs(obs, is_first)
        net = self.eval_net if deterministic and self.eval_net is not None else self.net
        action, state = net.act_step(tensors, state, first, deterministic)
        return action.cpu().numpy(), state

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One Adam step on every loss of a (B, T, ...) batch of windows, then a Polyak step of the target Q heads (and
        of the acting copy with ``eval_tau``)."""
        loss, metrics = wamq_loss(self.net, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.sync_gradients()
        metrics["opt/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip))
        self.optimizer.step()
        self.net.update_targets()
        if self.eval_net is not None:
            polyak_(self.eval_net, self.net, self.config.eval_tau)
        return metrics

    def optimizer_state(self) -> dict[str, Any]:
        """Adam state."""
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`optimizer_state` output."""
        self.optimizer.load_state_dict(state)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` (settings + env spec) and ``model.safetensors``."""
        return save_pretrained(self, self.name, WAMQCheckpoint(self.config, self._spec), directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> "WAMQAgent":
        """Rebuild an agent saved with :meth:`save_pretrained` (CUDA when present unless ``device`` is given)."""
        return load_pretrained_agent(cls, WAMQCheckpoint, directory, device)
