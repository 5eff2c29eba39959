"""Replay of fixed-length sequences from N parallel environments, with bounded memory.

Each environment writes into its own ring buffer, so time is contiguous per environment. A sampled window
never crosses into another episode: steps from the next ``is_first`` on (and steps not yet written) are
masked out, which also serves episodes shorter than the window. Images stay uint8; depth is kept as
float16 metres (≈4 mm resolution at 10 m) to halve memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wam.envs.spec import EnvSpec
from wam.constants import ACTION, DEPTH, IS_FIRST, IS_LAST, IS_TERMINAL, MASK, REWARD, RGB, TASK
from wam.io.pretrained import CheckpointError, atomic_write_bytes

FLAGS = (IS_FIRST, IS_LAST, IS_TERMINAL)


def step_layout(spec: EnvSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Per-key (shape, storage dtype) of one stored step: observations, action, reward and flags."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for key, shape in spec.obs_shapes.items():
        dtype = {RGB: np.uint8, DEPTH: np.float16, TASK: np.int64}.get(key, np.float32)
        out[key] = (tuple(shape), np.dtype(dtype))
    out[ACTION] = ((), np.dtype(np.int64)) if spec.discrete else ((spec.action_dim,), np.dtype(np.float32))
    out[REWARD] = ((), np.dtype(np.float32))
    for flag in FLAGS:
        out[flag] = ((), np.dtype(bool))
    return out


def replay_row(
    obs: dict[str, np.ndarray],
    action: np.ndarray,
    reward: np.ndarray,
    is_first: np.ndarray,
    is_last: np.ndarray,
    is_terminal: np.ndarray,
) -> dict[str, np.ndarray]:
    """One step of every env as the replay stores it: the observation, the action taken from it (zero on an episode's
    last row, where no action follows), and the reward and flags of the step that led to it."""
    stored = np.where(is_last.reshape((len(is_last),) + (1,) * (action.ndim - 1)), 0, action)
    return {**obs, ACTION: stored, REWARD: reward, IS_FIRST: is_first, IS_LAST: is_last, IS_TERMINAL: is_terminal}


class Replay:
    """Ring buffers of ``capacity // num_envs`` rows per environment; :meth:`sample` gives (B, T, ...) windows.

    A row is one :meth:`add`: the online loop adds one per env step plus one per finished episode (the final
    observation, with ``is_last``), so the capacity counts rows, not env steps.
    """

    def __init__(self, spec: EnvSpec, capacity: int, num_envs: int, seed: int = 0):
        if capacity < num_envs:
            raise ValueError(f"replay capacity {capacity} is smaller than num_envs {num_envs}")
        self.spec, self.num_envs = spec, num_envs
        self.per_env = capacity // num_envs
        self.layout = step_layout(spec)
        self.data = {k: np.zeros((num_envs, self.per_env, *shape), dtype) for k, (shape, dtype) in self.layout.items()}
        self.head = np.zeros(num_envs, np.int64)  # next write index per env (mod per_env)
        self.count = np.zeros(num_envs, np.int64)  # steps written per env (saturates at per_env)
        self.rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        """Memory held by the buffers, in bytes (allocated up front)."""
        return sum(a.nbytes for a in self.data.values())

    def __len__(self) -> int:
        return int(self.count.sum())

    def add(self, step: dict[str, np.ndarray]) -> None:
        """Append one vector-env step: every layout key with leading dim N (see wam.agents.base)."""
        missing = [k for k in self.layout if k not in step]
        if missing:
            raise KeyError(f"replay step lacks {missing}")
        envs = np.arange(self.num_envs)
        for key, arr in self.data.items():
            value = np.asarray(step[key])
            if value.shape[0] != self.num_envs:
                raise ValueError(
                    f"replay step {key!r} has leading dim {value.shape[0]}, expected num_envs={self.num_envs}"
                )
            arr[envs, self.head] = value
        self.head = (self.head + 1) % self.per_env
        self.count = np.minimum(self.count + 1, self.per_env)

    def sample(self, batch_size: int, seq_len: int) -> dict[str, np.ndarray]:
        """``batch_size`` windows of ``seq_len`` steps plus ``mask`` (B, T); see module docstring."""
        if len(self) == 0:
            raise RuntimeError("cannot sample from an empty replay; add steps first (prefill)")
        weights = self.count / self.count.sum()
        env = self.rng.choice(self.num_envs, size=batch_size, p=weights)
        oldest = (self.head[env] - self.count[env]) % self.per_env
        offset = (self.rng.random(batch_size) * self.count[env]).astype(np.int64)  # steps after the oldest
        start = (oldest + offset) % self.per_env
        steps = (start[:, None] + np.arange(seq_len)[None]) % self.per_env  # (B, T)
        out = {k: arr[env[:, None], steps] for k, arr in self.data.items()}
        written = offset[:, None] + np.arange(seq_len)[None] < self.count[env][:, None]
        # Valid until (excluding) the first is_first after the window's start.
        new_episode = out[IS_FIRST].copy()
        new_episode[:, 0] = False
        out[MASK] = written & (np.cumsum(new_episode, 1) == 0)
        if DEPTH in out:
            out[DEPTH] = out[DEPTH].astype(np.float32)
        return out

    # ------------------------------------------------------------------ persistence (no pickle)
    def save(self, directory: str | Path) -> None:
        """Write buffers (safetensors) and pointers (JSON) into ``directory``.

        Only the rows written so far are stored (until the ring wraps, rows past the fullest env's count are still
        zeros), so a checkpoint early in a run with a large capacity stays small.
        """
        from safetensors.numpy import save

        directory = Path(directory)
        rows = int(self.count.max())
        arrays = {k: np.ascontiguousarray(v[:, :rows]) for k, v in self.data.items()}
        arrays = {k: (v.view(np.uint8) if v.dtype == bool else v) for k, v in arrays.items()}
        atomic_write_bytes(directory / "replay.safetensors", save(arrays))
        meta = {
            "head": self.head.tolist(),
            "count": self.count.tolist(),
            "per_env": self.per_env,
            "rng": self.rng.bit_generator.state,
        }
        atomic_write_bytes(directory / "replay.json", json.dumps(meta).encode())

    def load(self, directory: str | Path) -> None:
        """Restore what :meth:`save` wrote; the buffer must have been built with the same spec and capacity."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        try:
            arrays = load_file(str(directory / "replay.safetensors"))
            meta = json.loads((directory / "replay.json").read_text())
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(
                f"cannot read replay from {directory} ({e}); resume without it or start a new run"
            ) from e
        for key, arr in self.data.items():
            saved = arrays.get(key)
            # Rows [0, n) of each env's ring are stored, the rest were never written. Checkpoints written before the
            # ring's size was recorded stored every row, so their row count is the size.
            per_env = meta.get("per_env", None if saved is None else saved.shape[1])
            if (
                saved is None
                or saved.shape[:1] + saved.shape[2:] != arr.shape[:1] + arr.shape[2:]
                or per_env != self.per_env
            ):
                raise CheckpointError(f"replay in {directory} does not match this run's spec/capacity (key {key!r})")
            arr[:, : saved.shape[1]] = saved.view(bool) if arr.dtype == bool else saved
            arr[:, saved.shape[1] :] = 0
        head, count = np.asarray(meta["head"]), np.asarray(meta["count"])
        stored = min(a.shape[1] for a in arrays.values()) if arrays else 0
        if head.shape != (self.num_envs,) or count.shape != (self.num_envs,) or int(count.max()) > stored:
            raise CheckpointError(
                f"replay in {directory} is inconsistent (pointers {meta['count']} for {stored} stored rows)"
            )
        self.head, self.count = head, count
        self.rng.bit_generator.state = meta["rng"]
