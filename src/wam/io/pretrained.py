"""Hugging Face-style checkpoints without pickle: ``model.safetensors`` + ``config.json``.

``config.json`` holds ``{"agent": name, "config": <dataclass as dict>, "format_version": N}``; loading
rebuilds the dataclass, builds the module, and loads the weights strictly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

C = TypeVar("C")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A (nested) dataclass as JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild dataclass ``cls`` from :func:`config_to_dict` output, recursing into nested dataclasses.

    Unknown keys raise; missing keys take the field default (so older checkpoints keep loading).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise CheckpointError(
            f"config for {cls.__name__} has unknown fields {sorted(unknown)}; was it written by a newer wam?"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list) and "tuple" in str(hint):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # e.g. a full disk: say which file, and that what was there is intact
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}; the previous file is kept") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Atomically save a flat dict of tensors as safetensors (tensors are made contiguous, on CPU)."""
    from safetensors.torch import save

    data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(Path(path), save(data, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning any corruption into a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({e}); the checkpoint is corrupt, re-save or use an earlier one"
        ) from e


def save_pretrained(module: torch.nn.Module, agent: str, config: Any, directory: str | Path) -> Path:
    """Save ``module``'s weights and its ``config`` dataclass into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Shared tensors (tied weights) must be stored once; clone keeps the file valid.
    state = {k: v.clone() for k, v in module.state_dict().items()}
    save_tensors(state, directory / WEIGHTS_NAME, metadata={"agent": agent})
    meta = {"agent": agent, "format_version": FORMAT_VERSION, "config": config_to_dict(config)}
    atomic_write_bytes(directory / CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """Read and validate ``config.json`` of a pretrained directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"no {CONFIG_NAME} in {directory}; expected a folder written by save_pretrained")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); the checkpoint is corrupt") from e
    if not isinstance(meta, dict) or "agent" not in meta or "config" not in meta:
        raise CheckpointError(f"{path} lacks 'agent'/'config'; expected a folder written by save_pretrained")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {meta['format_version']}; this wam reads <= {FORMAT_VERSION}, upgrade wam"
        )
    return meta


def load_state_into(module: torch.nn.Module, directory: str | Path) -> None:
    """Load ``model.safetensors`` from ``directory`` into ``module`` strictly, with a readable mismatch error."""
    state = load_tensors(Path(directory) / WEIGHTS_NAME)
    missing, unexpected = [], []
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or bad_shape:
        raise CheckpointError(
            f"weights in {directory} do not match the model built from its config: missing={missing[:5]}, "
            f"unexpected={unexpected[:5]}, shape mismatches={bad_shape[:5]}"
        )
    module.load_state_dict(state, strict=True)


def load_pretrained_agent(
    agent_cls, checkpoint_cls: type, directory: str | Path, device: str | torch.device | None = None
):
    """Rebuild ``agent_cls`` (an agent with a ``name``, built as ``agent_cls(config, spec)``) from a folder written by
    :func:`save_pretrained` with a ``checkpoint_cls(config, spec)`` dataclass; CUDA when present unless ``device``."""
    meta = read_config(directory)
    if meta["agent"] != agent_cls.name:
        raise ValueError(
            f"{directory} holds a {meta['agent']!r} agent, not {agent_cls.name!r}; use wam.agents.registry.load_agent"
        )
    ckpt = config_from_dict(checkpoint_cls, meta["config"])
    agent = agent_cls(ckpt.config, ckpt.spec)
    load_state_into(agent, directory)
    return agent.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))


__all__ = [
    "CheckpointError",
    "save_pretrained",
    "read_config",
    "load_state_into",
    "load_pretrained_agent",
    "config_to_dict",
    "config_from_dict",
    "save_tensors",
    "load_tensors",
    "atomic_write_bytes",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
]
