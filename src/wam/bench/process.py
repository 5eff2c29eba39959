"""Training runs as child processes that are stopped exactly once, so they can checkpoint.

``wam train`` treats its first SIGINT / SIGTERM as "checkpoint, then exit" and a second one as "exit now"
(:func:`wam.training.online.stop_requests`). A terminal's Ctrl-C and ``timeout`` signal a whole process group, so a
child in its parent's group would receive the group's signal *and* the one its parent forwards, and die in the middle
of its checkpoint. Children started here get their own process group: every stop reaches them through their parent,
once.

A run being trained is marked by a lock file holding a PID (:func:`claim_lock`), so that two callers on one machine
(two ``wam bench`` calls, or a benchmark script beside them) never train the same run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def raise_interrupt(signum, frame) -> None:
    """Signal handler that stops the program like Ctrl-C (a ``KeyboardInterrupt``)."""
    raise KeyboardInterrupt(f"signal {signum}")


def start_run(cmd: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (see the module docstring); ``popen_kwargs`` go to ``Popen``."""
    return subprocess.Popen(list(cmd), start_new_session=True, **popen_kwargs)


def stop_run(proc: subprocess.Popen, grace_s: float = 300.0) -> int:
    """Send ``proc`` one SIGTERM (a training run then checkpoints and exits), kill it if it is still alive after
    ``grace_s`` seconds, and return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def run_to_end(cmd: Sequence[str], timeout_s: float | None = None, grace_s: float = 300.0, **popen_kwargs) -> int:
    """Run ``cmd`` (via :func:`start_run`) and return its exit code.

    On Ctrl-C (or SIGTERM turned into ``KeyboardInterrupt`` by :func:`raise_interrupt`) the child is stopped with
    :func:`stop_run` and the ``KeyboardInterrupt`` is raised again; after ``timeout_s`` seconds it is stopped the same
    way and ``subprocess.TimeoutExpired`` is raised.
    """
    proc = start_run(cmd, **popen_kwargs)
    try:
        return proc.wait(timeout=timeout_s)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        stop_run(proc, grace_s)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(lock: Path) -> int | None:
    """PID of the live process that holds ``lock``, or None (no lock, or a stale one)."""
    try:
        pid = int(lock.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def claim_lock(lock: Path, fresh_s: float = 10.0) -> bool:
    """Atomically make ``lock`` this process's (its PID inside); False when another live process holds it.

    A lock left by a dead process is taken over. An empty lock younger than ``fresh_s`` seconds counts as held: its
    owner has created it and is about to write its PID.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                text, age = lock.read_text().strip(), time.time() - lock.stat().st_mtime
            except FileNotFoundError:  # its owner just released it
                continue
            if running_pid(lock) is not None or (not text and age < fresh_s):
                return False
            lock.unlink(missing_ok=True)  # stale
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True
    return False
