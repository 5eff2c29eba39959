"""Stopping a training run cleanly: signals are deferred until the loop has written a checkpoint; a diverged run stops
before it can checkpoint non-finite weights."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class TrainingStopped(Exception):
    """Training was stopped by a signal (Ctrl-C, SIGTERM) after writing a checkpoint; ``--resume`` continues it."""

    def __init__(self, signum: int, env_steps: int, run_dir: Path):
        self.signum, self.env_steps, self.run_dir = signum, env_steps, run_dir
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at {env_steps:,} env steps; checkpoint written, "
            f"continue with: wam train --resume {run_dir}"
        )


@contextmanager
def stop_requests() -> Iterator[dict[str, int]]:
    """While open, SIGINT and SIGTERM only record themselves in the yielded dict (key ``signum``), so the training
    loop can checkpoint before it stops. After the first, a Ctrl-C (SIGINT) acts as usual, so pressing it twice quits
    at once; further SIGTERMs stay deferred, since they often come in pairs (``pkill`` reaching a run whose parent
    ``wam bench`` forwards its own SIGTERM) and the second must not kill the checkpoint being written. A no-op
    outside the main thread."""
    request: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def record(signum, frame) -> None:
        request.setdefault("signum", signum)
        signal.signal(signal.SIGINT, previous[signal.SIGINT])  # the next Ctrl-C is not deferred

    for sig in previous:
        signal.signal(sig, record)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; training stopped without writing a checkpoint (the last good one is kept)."""
