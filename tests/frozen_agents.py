"""Frozen tiny checkpoints of every agent, with the actions and update metrics they produced when frozen.

``tests/test_frozen.py`` reloads each and checks that it still acts and updates the same, so a change to the numerics
of any agent (a refactor that was meant to change nothing) fails a test. After a deliberate change, regenerate with
``python tests/frozen_agents.py`` and say why in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from conftest import make_batch
from wam.agents.registry import AGENTS, get_agent
from wam.envs.spec import EnvSpec

ROOT = Path(__file__).resolve().parent / "data" / "frozen"
SPEC = EnvSpec({"state": [4]}, 2, False)
#: Settings small enough that each checkpoint stays under 100 KB.
CONFIGS = {
    "wam": dict(
        size="tiny",
        batch_size=2,
        seq_len=4,
        imag_starts=4,
        horizon=2,
        actor_warmup=0,
        extra={"num_bins": 21, "mlp_hidden": 16, "dim": 16},
    ),
    "dreamerv3": dict(batch_size=2, seq_len=4, deter=16, hidden=8, stoch=4, classes=4, blocks=2, units=8, warmup=0),
    "sac": dict(batch_size=4, seq_len=2, hidden=16),
    "wamq": dict(dim=16, heads=2, mlp_hidden=16, cnn_width=4, num_bins=21, batch_size=2, seq_len=4),
}


def observations() -> dict[str, np.ndarray]:
    """The fixed observations the frozen actions were computed on (3 environments)."""
    return {"state": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)}


def replay_batch() -> dict[str, torch.Tensor]:
    """The fixed replay batch the frozen update metrics were computed on."""
    return make_batch(SPEC, B=2, T=4, seed=0)


def behaviour(agent) -> dict[str, object]:
    """Deterministic actions on :func:`observations`, then the metrics of one update on :func:`replay_batch`."""
    actions, _ = agent.act(observations(), agent.init_state(3), np.ones(3, bool), deterministic=True)
    torch.manual_seed(0)
    metrics = agent.update(replay_batch())
    return {"actions": np.asarray(actions, np.float64).tolist(), "metrics": metrics}


def main() -> None:
    """Build, save and record every registered agent (see the module docstring)."""
    missing = set(AGENTS) - set(CONFIGS)
    if missing:
        raise SystemExit(f"add tiny settings for {sorted(missing)} to CONFIGS")
    for name, settings in CONFIGS.items():
        torch.manual_seed(0)
        config_cls, agent_cls = get_agent(name)
        agent = agent_cls(config_cls(**settings), SPEC)
        folder = ROOT / name
        agent.save_pretrained(folder)
        record = behaviour(agent_cls.from_pretrained(folder, device="cpu"))
        (folder / "expected.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1024
        print(f"{name}: {folder} ({size:.0f} KB)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
