"""Metrics sinks: JSONL always, TensorBoard when installed."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from wam.io.pretrained import atomic_write_bytes


class MetricsLogger:
    """Append ``{"step": ..., "time": ..., **metrics}`` lines to ``<run>/<name>.jsonl`` (and TensorBoard)."""

    def __init__(self, run_dir: str | Path, name: str = "metrics", tensorboard: bool = True):
        self.path = Path(run_dir) / f"{name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", buffering=1)
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional.
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Write one record; non-finite values are stored as null."""
        clean = {
            k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None) if not isinstance(v, str) else v
            for k, v in metrics.items()
        }
        self._file.write(json.dumps({"step": int(step), "time": time.time(), **clean}) + "\n")
        if self._tb is not None:
            for key, value in clean.items():
                if isinstance(value, float):
                    self._tb.add_scalar(key, value, step)

    def rewind(self, step: int) -> None:
        """Drop the records logged after ``step``: a run resumed from a checkpoint at ``step`` continues from there, and
        what it logged after that checkpoint describes training that the resumed run does not contain."""
        self._file.close()
        kept = [json.dumps(r) + "\n" for r in read_jsonl(self.path) if r.get("step", 0) <= step]
        atomic_write_bytes(self.path, "".join(kept).encode())
        self._file = self.path.open("a", buffering=1)

    def close(self) -> None:
        """Flush and close."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def last_row_per_step(rows: list[dict], key: str) -> list[dict]:
    """``rows`` sorted by the integer ``key``, one per value: the last one wins (a resumed run re-logs the steps after
    its last checkpoint, and the later rows are those it continued from). Rows without ``key`` are left out."""
    by_step = {int(r[key]): r for r in rows if r.get(key) is not None}
    return [by_step[k] for k in sorted(by_step)]


def read_jsonl(path: str | Path) -> list[dict]:
    """All records of a JSONL file (a truncated last line from a crash is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record to a JSONL file (created with its folder when missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
