"""`wam.bench.process` and the runner's use of it: stopping runs exactly once (so they checkpoint), time limits,
and the run locks that let two `wam bench` calls share a grid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wam.bench.process import claim_lock, run_to_end
from wam.bench.grid import BenchPaths, expand_grid
from wam.bench.runner import BenchRunner
from wam.bench.suite import load_suite

SUITES = Path(__file__).resolve().parents[1] / "benchmarks" / "suites"


def test_two_bench_calls_never_train_the_same_run(tmp_path: Path):
    """A run whose lock another live process holds is skipped untouched; a stale lock is taken over."""
    lock = tmp_path / "a" / "seed0.lock"
    assert claim_lock(lock) and lock.read_text() == f"{os.getpid()}\n"
    assert not claim_lock(lock)  # held by a live process (this one)
    lock.write_text("")  # created an instant ago by another process that has not written its PID yet
    assert not claim_lock(lock)
    lock.write_text("999999999\n")  # left by a process that died
    assert claim_lock(lock)

    suite = load_suite("debug", SUITES)
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    run = expand_grid(suite, seeds=1)[0]
    run_dir = paths.run_dir(suite, run)
    (run_dir / "checkpoint").mkdir(parents=True)  # no COMPLETE: execute() would delete it before training
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        paths.lock(suite, run).write_text(f"{other.pid}\n")
        assert BenchRunner(suite, paths).execute(run) is None
        assert (run_dir / "checkpoint").is_dir() and paths.lock(suite, run).read_text() == f"{other.pid}\n"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("on_sigterm, grace_s, returncode", [("exit(3)", 30.0, 3), ("None", 0.5, -9)])
def test_stop_lets_runs_checkpoint_then_kills_the_rest(on_sigterm: str, grace_s: float, returncode: int):
    """stop() sends SIGTERM (a run then checkpoints and exits); one still alive after the grace period is killed."""
    handler = "lambda *_: " + on_sigterm if on_sigterm != "None" else "signal.SIG_IGN"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import signal, sys, time; signal.signal(signal.SIGTERM, {handler}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    runner = BenchRunner(load_suite("debug", SUITES))
    runner._children["child"] = child
    runner.stop(grace_s=grace_s)
    assert child.wait(timeout=5) == returncode


# A stand-in for `wam train`: the first SIGTERM starts a one-second "checkpoint"; a second one kills it.
_CHECKPOINTING_CHILD = """
import signal, sys, time
log = open(sys.argv[1], "a")
def stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log.write("stop "); log.flush(); time.sleep(1.0); log.write("saved"); log.flush(); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_signal_to_the_whole_process_group_stops_a_run_once(tmp_path: Path):
    """`timeout` and a terminal's Ctrl-C signal the whole group; the run must get one SIGTERM (from its parent) and
    finish its checkpoint, not a second one that kills it halfway."""
    log = tmp_path / "child.log"
    parent_src = (
        "import signal, sys\nfrom wam.bench.process import raise_interrupt, run_to_end\n"
        "signal.signal(signal.SIGTERM, raise_interrupt)\n"
        f"try:\n    run_to_end([sys.executable, '-c', {_CHECKPOINTING_CHILD!r}, {str(log)!r}])\n"
        "except KeyboardInterrupt:\n    sys.exit(7)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_src], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout.readline().strip() == "ready"
    os.killpg(parent.pid, signal.SIGTERM)  # what `timeout -s TERM` does
    assert parent.wait(timeout=30) == 7
    assert log.read_text() == "stop saved"


def test_run_to_end_stops_a_run_at_its_time_limit(tmp_path: Path):
    log = tmp_path / "child.log"
    with pytest.raises(subprocess.TimeoutExpired):
        run_to_end([sys.executable, "-c", _CHECKPOINTING_CHILD, str(log)], timeout_s=3.0, stdout=subprocess.DEVNULL)
    assert log.read_text() == "stop saved"
    assert run_to_end([sys.executable, "-c", "raise SystemExit(4)"]) == 4
