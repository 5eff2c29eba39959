"""Resumable training checkpoints: model weights, optimiser, RNG states, counters and (optionally) replay.

A checkpoint is a folder written next to the live one and swapped in with renames, so a crash at any moment
leaves either the previous or the new checkpoint intact, never a mix.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wam.agents.base import Agent
from wam.data.replay import Replay
from wam.io.pretrained import CheckpointError, atomic_write_bytes
from wam.io.state import load_state, save_state

CHECKPOINT_DIR = "checkpoint"


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state()[1],
        "numpy_pos": int(np.random.get_state()[2]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"], state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, agent: Agent, counters: dict[str, Any], replay: Replay | None) -> Path:
    """Write ``run_dir/checkpoint`` atomically (see module docstring)."""
    final = Path(run_dir) / CHECKPOINT_DIR
    staging = final.with_name(CHECKPOINT_DIR + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    agent.save_pretrained(staging / "agent")
    save_state({"agent": agent.state_dict()}, staging / "agent_full")
    save_state(agent.optimizer_state(), staging / "optimizer")
    save_state(_rng_state(), staging / "rng")
    if replay is not None:
        replay.save(staging / "replay")
    atomic_write_bytes(staging / "counters.json", json.dumps(counters, indent=2).encode())
    atomic_write_bytes(staging / "COMPLETE", b"ok\n")
    old = final.with_name(CHECKPOINT_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run (recovering from a crash mid-swap), or None when the run has
    none yet. A ``checkpoint/`` folder is only ever put in place complete, so one without its marker is damaged:
    :class:`CheckpointError`, rather than a run that silently starts over."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old", CHECKPOINT_DIR + ".new"):
        path = Path(run_dir) / name
        if (path / "COMPLETE").is_file():
            return path
    if (Path(run_dir) / CHECKPOINT_DIR).is_dir():
        raise CheckpointError(
            f"{Path(run_dir) / CHECKPOINT_DIR} lacks its COMPLETE marker: the checkpoint is damaged; "
            "delete the folder to start the run over"
        )
    return None


def load_checkpoint(path: Path, agent: Agent, replay: Replay | None) -> dict[str, Any]:
    """Restore agent, optimiser, RNG and replay from ``path``; returns the counters."""
    if not (path / "COMPLETE").is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint; delete it to start over")
    agent.load_state_dict(load_state(path / "agent_full")["agent"])
    agent.load_optimizer_state(load_state(path / "optimizer"))
    _set_rng_state(load_state(path / "rng"))
    if replay is not None and (path / "replay" / "replay.json").is_file():
        replay.load(path / "replay")
    try:
        return json.loads((path / "counters.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path / 'counters.json'} ({e}); the checkpoint is corrupt") from e
