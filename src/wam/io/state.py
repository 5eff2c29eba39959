"""Nested training state (optimiser dicts, RNG states) ↔ safetensors + JSON, so no pickle is ever needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wam.io.pretrained import CheckpointError, atomic_write_bytes, load_tensors, save_tensors

_TENSOR = "__tensor__"


def flatten_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON skeleton (tensors replaced by references) and a flat dict of tensors."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            tensors[path] = x
            return {_TENSOR: path}
        if isinstance(x, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(x))
            return {_TENSOR: path, "numpy": True}
        if isinstance(x, dict):
            return {
                "__dict__": [[walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")] for i, (k, v) in enumerate(x.items())]
            }
        if isinstance(x, (list, tuple)):
            return {
                "__list__" if isinstance(x, list) else "__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
            }
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, (np.integer, np.floating, np.bool_)):
            return x.item()
        raise TypeError(f"cannot serialise {type(x).__name__} at {path or 'root'} without pickle")

    return walk(obj, prefix or "s"), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            t = tensors[skeleton[_TENSOR]]
            return t.numpy() if skeleton.get("numpy") else t
        if "__dict__" in skeleton:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            return [unflatten_state(v, tensors) for v in skeleton["__list__"]]
        if "__tuple__" in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
    return skeleton


def save_state(obj: Any, path: str | Path) -> None:
    """Save nested state as ``<path>.safetensors`` + ``<path>.json`` (both written atomically)."""
    path = Path(path)
    skeleton, tensors = flatten_state(obj)
    save_tensors(tensors, path.with_suffix(".safetensors"))
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(skeleton).encode())


def load_state(path: str | Path) -> Any:
    """Load what :func:`save_state` wrote."""
    path = Path(path)
    try:
        skeleton = json.loads(path.with_suffix(".json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"cannot read {path.with_suffix('.json')} ({e}); the checkpoint is incomplete or corrupt"
        ) from e
    return unflatten_state(skeleton, load_tensors(path.with_suffix(".safetensors")))
