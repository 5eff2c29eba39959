"""Training runs as child processes that are stopped exactly once, so they can checkpoint.

``wam train`` treats its first SIGINT / SIGTERM as "checkpoint, then exit" and a second one as "exit now"
(:func:`wam.training.online.stop_requests`). A terminal's Ctrl-C and ``timeout`` signal a whole process group, so a
child in its parent's group would receive the group's signal *and* the one its parent forwards, and die in the middle
of its checkpoint. Children started here get their own process group: every stop reaches them through their parent,
once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


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
