"""An append-only log of the replay rows added since the last checkpoint, so that a killed run loses no experience.

Checkpoints (``wam.training.checkpoint``) hold the replay as it was when they were written. Every row added after that
also goes to this log, one fixed-size record per :meth:`Replay.add` call (the rows of all environments, every key's
bytes, then a CRC-32 of them), written and flushed before the environments step on. After a ``kill -9`` the records
that reached the file are read back (:meth:`ReplayLog.recover`), up to the first one that is short or fails its
checksum (the one being written at the moment of the kill), and added to the checkpoint's replay.

The log lives in ``<run>/replay_log/``: one segment file per checkpoint interval, named by the number of replay adds
made before its first record. After a checkpoint the older segments are deleted (their rows are in the checkpoint).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

LOG_DIR = "replay_log"
_CRC = np.dtype("<u4")


class ReplayLog:
    """Append :meth:`Replay.add` rows to ``<run_dir>/replay_log/`` and read them back after a crash.

    ``layout`` is the replay's per-step (shape, dtype) per key (:func:`wam.data.replay.step_layout`); a record holds
    ``num_envs`` rows of every key in that order.
    """

    def __init__(self, run_dir: str | Path, layout: dict[str, tuple[tuple[int, ...], np.dtype]], num_envs: int):
        self.dir = Path(run_dir) / LOG_DIR
        self.keys = list(layout)
        self.shapes = {k: (num_envs, *shape) for k, (shape, _) in layout.items()}
        self.dtypes = {k: np.dtype(dtype) for k, (_, dtype) in layout.items()}
        self.sizes = {k: int(np.prod(self.shapes[k])) * self.dtypes[k].itemsize for k in self.keys}
        self.record_bytes = sum(self.sizes.values()) + _CRC.itemsize
        self._file = None

    def _segments(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        found = []
        for path in self.dir.glob("seg-*.bin"):
            try:
                found.append((int(path.stem.removeprefix("seg-")), path))
            except ValueError:
                continue
        return sorted(found)

    @property
    def is_open(self) -> bool:
        """Whether a segment is open for :meth:`append`."""
        return self._file is not None

    def start(self, first_add: int) -> None:
        """Begin a new segment whose first record will be add number ``first_add``; delete every older segment (call
        after a checkpoint that holds the replay up to that add)."""
        self.close()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"seg-{first_add:012d}.bin"
        self._file = path.open("wb")
        for _, old in self._segments():
            if old != path:
                old.unlink(missing_ok=True)

    def append(self, step: dict[str, np.ndarray]) -> None:
        """Write one :meth:`Replay.add` step (every key with leading dim ``num_envs``) and flush it to the OS."""
        if self._file is None:
            raise RuntimeError("ReplayLog.append before start(); start a segment after loading or writing a checkpoint")
        parts = [np.ascontiguousarray(step[k], dtype=self.dtypes[k]).tobytes() for k in self.keys]
        body = b"".join(parts)
        if len(body) != self.record_bytes - _CRC.itemsize:
            raise ValueError(
                f"replay log record of {len(body)} bytes; the layout needs {self.record_bytes - _CRC.itemsize}"
            )
        try:
            self._file.write(body + np.array([zlib.crc32(body)], _CRC).tobytes())
            self._file.flush()
        except OSError as e:  # e.g. a full disk: the records written so far stay readable
            raise OSError(e.errno, f"cannot append to {self._file.name}: {e.strerror}") from e

    def recover(self, since_add: int) -> list[dict[str, np.ndarray]]:
        """The logged steps from add number ``since_add`` on, oldest first, ending at the first record that is missing,
        short or corrupt (a record cut by a crash)."""
        steps: list[dict[str, np.ndarray]] = []
        expected = None
        for first, path in self._segments():
            data = path.read_bytes()
            count = len(data) // self.record_bytes
            if expected is not None and first != expected:
                break  # a gap between segments: later records would not follow the ones read
            for i in range(count):
                record = data[i * self.record_bytes : (i + 1) * self.record_bytes]
                body, crc = record[:-4], np.frombuffer(record[-4:], _CRC)[0]
                if zlib.crc32(body) != int(crc):
                    return steps
                if first + i >= since_add:
                    steps.append(self._decode(body))
            expected = first + count
            if len(data) % self.record_bytes:
                break  # the last record was cut: nothing after it was written
        return steps

    def _decode(self, body: bytes) -> dict[str, np.ndarray]:
        out, at = {}, 0
        for key in self.keys:
            size = self.sizes[key]
            out[key] = np.frombuffer(body[at : at + size], self.dtypes[key]).reshape(self.shapes[key]).copy()
            at += size
        return out

    def close(self) -> None:
        """Close the open segment (its records stay on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None
