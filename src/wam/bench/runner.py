"""Run a suite's grid (agent × task × seed; :mod:`wam.bench.grid`) as ``wam train`` subprocesses, resumably and side
by side.

* A run whose evaluation curve in the results folder reaches the budget is never run again; a killed run
  (one with a checkpoint) continues with ``wam train --resume``; one killed before its first checkpoint starts over.
* ``jobs`` runs share the machine, each single-threaded (``--threads 1``, ``OMP_NUM_THREADS=1``).
* Every run's ``eval.jsonl`` is copied to ``<results>/<suite>/<agent>/<task>/seed<k>.jsonl`` every
  ``sync_every`` seconds while it trains and when it ends, so reports can be written from partial data.
* A finished run also gets ``seed<k>.throughput.json``: env steps/s, updates/s, wall-clock per 100k env steps
  and ``act()`` latency (measured in a child process on the run's own environment).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable

from wam.bench.grid import (
    BenchPaths,
    RunSpec,
    check_protocol,
    collect_command,
    demos_needed,
    has_checkpoint,
    read_curve,
    reached,
    run_status,
    sync_curve,
    train_command,
)
from wam.bench.process import claim_lock, raise_interrupt, run_to_end, start_run
from wam.bench.suite import Suite, SuiteError
from wam.io.metrics import read_jsonl
from wam.io.pretrained import atomic_write_bytes


def progress_text(steps: dict[str, int | None], budget: int) -> str:
    """One line on the runs in training: ``wam/reach/seed0 12k/50k`` per run (``–`` before its first log row)."""

    def short(n: int) -> str:
        return f"{n / 1000:.0f}k" if n >= 10_000 else str(n)

    return ", ".join(f"{key} {'–' if n is None else short(n)}/{short(budget)}" for key, n in steps.items())


def logged_step(run_dir: Path) -> int | None:
    """The env steps of a run's last metrics row (``None`` before its first one)."""
    path = run_dir / "metrics.jsonl"
    rows = read_jsonl(path) if path.is_file() else []
    return int(rows[-1]["step"]) if rows else None


def throughput_record(run_dir: Path) -> dict[str, float]:
    """Env steps/s, updates/s and wall-clock per 100k env steps of a finished run (over its whole wall-clock)."""
    last = read_curve(run_dir / "eval.jsonl")[-1]
    steps, wall = float(last["env_steps"]), max(float(last["wall_time"]), 1e-9)
    record = {
        "env_steps": steps,
        "wall_clock_s": wall,
        "env_steps_per_s": steps / wall,
        "updates_per_s": float(last.get("updates", 0.0)) / wall,
        "wall_clock_per_100k_s": wall * 100_000 / max(steps, 1.0),
    }
    metrics = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    if metrics:
        record["peak_memory_mb"] = metrics[-1].get("charts/peak_memory_mb")
    return record


def measure_latency(run_dir: Path, steps: int = 200) -> dict[str, float]:
    """``act()`` latency (p50 / p95 ms, one thread, batch of one) of a run's final agent on its own environment."""
    from wam.agents.registry import load_agent
    from wam.envs import make_vector
    from wam.evaluation.latency import act_latency
    from wam.io.pretrained import config_from_dict
    from wam.training.config import TrainConfig

    cfg = config_from_dict(TrainConfig, json.loads((run_dir / "config.json").read_text())["train"])
    env = make_vector(cfg.env_config(), 1, asynchronous=False)
    try:
        return act_latency(load_agent(run_dir / "final", device="cpu"), env, steps=steps)
    finally:
        env.close()


class NotStarted(Exception):
    """A new run that :class:`BenchRunner` did not start because its window for new runs had closed."""


class BenchRunner:
    """Schedules the not-yet-finished runs of a grid on ``jobs`` worker slots."""

    def __init__(
        self,
        suite: Suite,
        paths: BenchPaths = BenchPaths(),
        jobs: int | None = None,
        sync_every: float = 60.0,
        latency_steps: int = 200,
        log: Callable[[str], None] = print,
        new_runs_until: float | None = None,
    ):
        self.suite, self.paths = suite, paths
        self.new_runs_until = new_runs_until  # time.time() after which only runs with a checkpoint are started
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.sync_every, self.latency_steps, self.log = sync_every, latency_steps, log
        self._children: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def command(self, run: RunSpec) -> list[str]:
        """The ``wam train`` command of ``run`` now (``--resume`` once it has a checkpoint)."""
        run_dir, demos = self.paths.run_dir(self.suite, run), self.paths.demos(self.suite, run.task)
        return train_command(self.suite, run, run_dir, demos)

    def plan(self, grid: list[RunSpec]) -> list[tuple[RunSpec, str, list[str]]]:
        """(run, status, command) for every run of the grid."""
        return [(run, run_status(self.suite, run, self.paths), self.command(run)) for run in grid]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        env.setdefault("MUJOCO_GL", "egl")
        # Mesa's software renderer otherwise starts a thread per core in every run: with runs side by side, rendering
        # in the calling thread is ~30% faster and gives the same frames (benchmarks/results/render_threads.md).
        env.setdefault("LP_NUM_THREADS", "0")
        return env

    def execute(self, run: RunSpec) -> bool | None:
        """Train (or resume) one run, sync its curve and record its throughput; returns whether it succeeded, or None
        when another process trains (or has just finished) it: two ``wam bench`` calls on one suite share the work."""
        run_dir, log_path = self.paths.run_dir(self.suite, run), self.paths.log(self.suite, run)
        lock = self.paths.lock(self.suite, run)
        if not claim_lock(lock):
            return None
        try:
            if reached(read_curve(self.paths.curve(self.suite, run)), self.suite.budget):
                return None
            fresh = not has_checkpoint(run_dir)
            if fresh and self.new_runs_until is not None and time.time() > self.new_runs_until:
                raise NotStarted(f"{run.key}: not started, too late for a new run (--new-runs-for)")
            return self._train(run, run_dir, log_path, lock)
        finally:
            lock.unlink(missing_ok=True)

    def _train(self, run: RunSpec, run_dir: Path, log_path: Path, lock: Path) -> bool:
        """The body of :meth:`execute`, with ``lock`` held."""
        if has_checkpoint(run_dir):
            check_protocol(self.suite, run, run_dir)
        elif run_dir.exists():
            shutil.rmtree(run_dir)  # killed before its first checkpoint: its partial logs would mix with the new run's
        cmd = self.command(run)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            with self._lock:  # no new child once stop() has begun
                if self._stopping:
                    return False
                proc = start_run(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env())
                self._children[run.key] = proc
            lock.write_text(f"{proc.pid}\n")
            try:
                code = proc.wait()
            finally:
                with self._lock:
                    self._children.pop(run.key, None)
        rows = sync_curve(run_dir, self.paths.curve(self.suite, run))
        if code != 0 or not reached(rows, self.suite.budget):
            if not self._stopping:
                self.log(f"FAILED {run.key} (exit {code}); see {log_path}")
            return False
        self.record_throughput(run, run_dir, log_path)
        return True

    def record_throughput(self, run: RunSpec, run_dir: Path, log_path: Path) -> None:
        """Write the run's throughput record, with ``act()`` latency measured in a child process."""
        record = throughput_record(run_dir)
        if self.latency_steps > 0:
            out = run_dir / "latency.json"
            cmd = [sys.executable, "-m", "wam.bench.runner", "latency", str(run_dir), str(out), str(self.latency_steps)]
            with log_path.open("a") as log:
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env()).returncode
            if code == 0 and out.is_file():
                record.update(json.loads(out.read_text()))
            else:
                self.log(f"warning: act() latency of {run.key} could not be measured; see {log_path}")
        target = self.paths.throughput(self.suite, run)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, (json.dumps(record, indent=2) + "\n").encode())

    def stop(self, grace_s: float = 300.0) -> None:
        """Send SIGTERM to the training processes this runner started: each writes a checkpoint at its next env step
        (after an evaluation in progress) and exits; one still running after ``grace_s`` seconds is killed."""
        with self._lock:
            self._stopping = True
            children = list(self._children.values())
        for proc in children:
            proc.terminate()  # once: a second SIGTERM would stop a run in the middle of its checkpoint
        deadline = time.time() + grace_s
        for proc in children:
            try:
                proc.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()

    def run(self, grid: list[RunSpec], on_finished: Callable[[], None] | None = None) -> dict[str, list[str]]:
        """Run every unfinished run of ``grid``; ``on_finished`` is called after each one (e.g. to refresh the report).

        Ctrl-C or SIGTERM stops the runs it started; the next call resumes them from their last checkpoints.
        """
        plan = self.plan(grid)
        todo = [run for run, status, _ in plan if status in ("new", "resume")]
        done = [run.key for run, status, _ in plan if status == "done"]
        elsewhere = [run.key for run, status, _ in plan if status == "running"]
        outcome: dict[str, list[str]] = {"skipped": done, "finished": [], "failed": [], "running elsewhere": elsewhere}
        self.log(
            f"suite {self.suite.name}: {len(grid)} runs, {len(done)} already finished, {len(todo)} to run on {self.jobs} worker(s)"
            + (f"; {len(elsewhere)} running in another process: {', '.join(elsewhere)}" if elsewhere else "")
        )
        for run, status, _ in plan:  # a finished run whose throughput was never recorded (e.g. results copied by hand)
            run_dir = self.paths.run_dir(self.suite, run)
            if (
                status == "done"
                and not self.paths.throughput(self.suite, run).is_file()
                and (run_dir / "final").is_dir()
            ):
                self.record_throughput(run, run_dir, self.paths.log(self.suite, run))
        if not todo:
            return outcome
        previous_handler = signal.signal(signal.SIGTERM, raise_interrupt)
        try:
            self.collect_demos(todo)
            self._schedule(todo, len(grid), len(done), outcome, on_finished)
        except KeyboardInterrupt:
            self.log("interrupted: each run writes a checkpoint and stops (the next call resumes them from there)")
            self.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
        return outcome

    def collect_demos(self, runs: list[RunSpec]) -> None:
        """Collect the demonstration datasets that ``runs`` train with and that do not exist yet (one process at a
        time per dataset: a lock beside it)."""
        for task in demos_needed(self.suite, runs):
            out = self.paths.demos(self.suite, task)
            lock = out.with_suffix(".lock")
            while not (out / "meta" / "info.json").is_file():
                if claim_lock(lock):
                    try:
                        if not (out / "meta" / "info.json").is_file():
                            self.log(f"collecting demonstrations of {task.name} into {out}")
                            shutil.rmtree(out, ignore_errors=True)
                            if run_to_end(collect_command(self.suite, task, out), env=self._env()):
                                raise SuiteError(f"collecting the demonstrations of {task.name} failed")
                    finally:
                        lock.unlink(missing_ok=True)
                else:
                    time.sleep(1.0)  # another wam bench collects them

    def _schedule(
        self,
        todo: list[RunSpec],
        total: int,
        done: int,
        outcome: dict[str, list[str]],
        on_finished: Callable[[], None] | None,
    ) -> None:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done, desc=f"bench {self.suite.name}", unit="run")
        previous_log, self.log = self.log, bar.write
        pool = ThreadPoolExecutor(self.jobs)
        try:
            futures = {pool.submit(self.execute, run): run for run in todo}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=self.sync_every, return_when=FIRST_COMPLETED)
                for future in finished:
                    run = futures[future]
                    try:
                        ok = future.result()
                    except NotStarted as e:
                        self.log(str(e))
                        outcome.setdefault("not started", []).append(run.key)
                        bar.update(1)
                        continue
                    except Exception as e:  # one broken run must not stop the others
                        self.log(f"FAILED {run.key}: {e}")
                        ok = False
                    if ok is None:
                        self.log(f"skipped {run.key}: another process trains it (or has just finished it)")
                    outcome["running elsewhere" if ok is None else "finished" if ok else "failed"].append(run.key)
                    bar.update(1)
                    if ok:
                        self.log(f"finished {run.key}")
                    if on_finished is not None:
                        try:
                            on_finished()
                        except Exception as e:  # a failed report must not stop the training
                            self.log(f"warning: refreshing the report failed: {e!r}")
                for run in todo:  # copy the curves of runs still training
                    run_dir = self.paths.run_dir(self.suite, run)
                    if (run_dir / "eval.jsonl").is_file():
                        sync_curve(run_dir, self.paths.curve(self.suite, run))
                training = {
                    futures[f].key: logged_step(self.paths.run_dir(self.suite, futures[f]))
                    for f in pending
                    if f.running()
                }
                bar.set_postfix_str(progress_text(training, self.suite.budget))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
            self.log = previous_log


def _latency_main(argv: list[str]) -> None:
    """``python -m wam.bench.runner latency RUN_DIR OUT_JSON [STEPS]`` (used by :meth:`BenchRunner.record_throughput`)."""
    run_dir, out = Path(argv[0]), Path(argv[1])
    steps = int(argv[2]) if len(argv) > 2 else 200
    out.write_text(json.dumps(measure_latency(run_dir, steps)) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] != ["latency"] or len(sys.argv) < 4:
        raise SystemExit("usage: python -m wam.bench.runner latency RUN_DIR OUT_JSON [STEPS]")
    os.environ.setdefault("MUJOCO_GL", "egl")
    _latency_main(sys.argv[2:])
