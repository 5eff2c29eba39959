"""Agents by name. Each entry names a module exposing a config dataclass and an :class:`Agent` subclass.

Every agent is built as ``AgentClass(config, spec)`` and loaded with ``AgentClass.from_pretrained(dir)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from wam.agents.base import Agent
from wam.envs.registry import suggest
from wam.io.pretrained import read_config


@dataclass(frozen=True)
class AgentEntry:
    """Where to find one agent's config and class."""

    module: str
    config_cls: str
    agent_cls: str

    def load(self):
        """(config class, agent class), importing the module on first use."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config_cls), getattr(mod, self.agent_cls)


AGENTS: dict[str, AgentEntry] = {
    "wam": AgentEntry("wam.agents.wam_agent", "WAMAgentConfig", "WAMAgent"),
    "dreamerv3": AgentEntry("wam.agents.dreamerv3", "DreamerV3Config", "DreamerV3Agent"),
    "sac": AgentEntry("wam.agents.sac", "SACConfig", "SACAgent"),
    "wamq": AgentEntry("wam.agents.wamq", "WAMQConfig", "WAMQAgent"),
}


def get_agent(name: str):
    """(config class, agent class) for an agent name, with a helpful error for unknown names."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}{suggest(name, list(AGENTS))} Valid agents: {sorted(AGENTS)}")
    return AGENTS[name].load()


def load_agent(directory: str | Path, device: str | None = None) -> Agent:
    """Load any agent saved with ``save_pretrained`` (reads ``config.json`` to know which one)."""
    meta = read_config(directory)
    _, agent_cls = get_agent(meta["agent"])
    return agent_cls.from_pretrained(directory, device=device)
