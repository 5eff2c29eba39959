"""The contract between an agent and the training loop.

The loop knows environments, replay and schedules; the agent knows acting and losses. Any agent that
implements :class:`Agent` trains, evaluates, checkpoints and benchmarks through the same code.

Batch convention (DreamerV3's), every tensor (B, T, ...), sampled within one episode:

* observation keys (``rgb`` uint8 (B,T,H,W,3), ``depth`` float (B,T,H,W,1), ``proprio``, ``state``, ``task``);
* ``action``: the action taken *at* step t (zeros on an episode's last step); float (B,T,A) or int64 (B,T);
* ``reward``: reward received on arriving at step t (0 on the first step);
* ``is_first`` / ``is_last`` / ``is_terminal``: bool (B,T); terminal means the MDP ended (no bootstrap);
* ``mask``: bool (B,T), false on padding after a short episode's end.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class Agent(nn.Module, abc.ABC):
    """An acting + learning agent. Subclasses are ``nn.Module`` so ``.to(device)`` and ``state_dict`` work.

    Besides these methods the loop reads ``batch_size`` and ``seq_len`` from the agent's config dataclass: the shape of
    the replay batches :meth:`update` receives. ``docs/extending.md`` shows how to add an agent.
    """

    #: Name used on the command line (``wam train --agent NAME``).
    name: str = ""

    @abc.abstractmethod
    def init_state(self, batch_size: int) -> Any:
        """Recurrent acting state for ``batch_size`` parallel environments (anything the agent likes)."""

    @abc.abstractmethod
    def act(
        self, obs: dict[str, np.ndarray], state: Any, is_first: np.ndarray, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]:
        """Choose actions for a batch of N observations; ``is_first`` (N,) marks envs that just reset.

        Returns (actions (N, A) float32 or (N,) int64, new state).
        """

    @abc.abstractmethod
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step on a replay batch; returns scalar metrics named ``<group>/<name>``."""

    @abc.abstractmethod
    def optimizer_state(self) -> dict[str, Any]:
        """Optimiser (and any other non-parameter training) state, for resumable checkpoints."""

    @abc.abstractmethod
    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`optimizer_state` returned."""

    @abc.abstractmethod
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the agent for inference into ``directory`` (``config.json`` naming the agent + ``model.safetensors``).

        The training loop calls it at the end of a run (``<run>/final``); :func:`wam.io.pretrained.save_pretrained`
        does the writing for an agent whose config and env spec form a dataclass.
        """

    @classmethod
    @abc.abstractmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> "Agent":
        """Rebuild an agent written by :meth:`save_pretrained` (what ``wam eval`` and ``load_agent`` call)."""

    def acting_inputs(
        self, obs: dict[str, np.ndarray], is_first: np.ndarray
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Check a batch of observations against the agent's ``spec`` (an :class:`~wam.envs.spec.EnvSpec` attribute or
        property, which every built-in agent has) and move it, and ``is_first``, to the agent's device."""
        spec = self.spec
        spec.check_obs(obs, batch_dims=1)
        tensors = {k: torch.as_tensor(np.asarray(obs[k]), device=self.device) for k in spec.obs_shapes}
        return tensors, torch.as_tensor(np.asarray(is_first, dtype=bool), device=self.device)

    @property
    def device(self) -> torch.device:
        """Device of the agent's parameters."""
        return next(self.parameters()).device

    def sync_gradients(self) -> None:
        """Average the gradients over data-parallel processes (``torchrun``); a no-op in a single process.

        :meth:`update` calls it after ``backward()`` and before gradient clipping and the optimiser step, so every
        process takes the same step (see :mod:`wam.training.distributed`).
        """
        reducer = getattr(self, "_gradient_reducer", None)
        if reducer is not None:
            reducer(self.parameters())

    def set_gradient_reducer(self, reducer: Callable[[Iterator[nn.Parameter]], None] | None) -> None:
        """Install what :meth:`sync_gradients` calls on the parameters (the training loop does, for ``torchrun``)."""
        self._gradient_reducer = reducer
