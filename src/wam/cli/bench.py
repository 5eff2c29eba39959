"""``wam bench SUITE``: run a pre-registered benchmark suite (resumably, several runs side by side) and write its report.

wam bench quick-state --dry-run                 # the grid, each run's status and command
wam bench quick-state --seeds 3 --jobs 2        # run what is not finished yet, then write benchmarks/RESULTS.md
wam bench quick-state --agents wam dreamerv3 --tasks metaworld-reach-v3
wam bench quick-state --report-only             # tables, plots and claims from the results on disk
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import rliable  # noqa: F401  (the bench extra; without it `wam` says how to install it)
import tyro

from wam.bench.suite import Suite, SuiteError, load_suite


@dataclass
class BenchArgs:
    """Run a benchmark suite from benchmarks/suites/ and write benchmarks/RESULTS.md. Example: wam bench quick-state --jobs 2"""

    suite: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SUITE")]
    """Suite name (``benchmarks/suites/<name>.toml``) or path to a suite file."""
    seeds: int | None = None
    """Seeds per (agent, task), ``0 .. seeds-1``; default: the suite's pre-registered count."""
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Runs trained side by side, each on one thread (default: the number of CPU cores)."""
    agents: tuple[str, ...] = ()
    """Only these agents of the suite (default: all)."""
    tasks: tuple[str, ...] = ()
    """Only these tasks of the suite, by their label (default: all)."""
    report_only: bool = False
    """Do not train; write the report from the results on disk."""
    dry_run: bool = False
    """Print the grid with each run's status and command, and exit."""
    runs_dir: str = "runs/bench"
    """Root of the run folders (checkpoints, logs; large, not committed)."""
    results_dir: str = "benchmarks/results"
    """Root of the evaluation curves and throughput records (small, committed)."""
    report: str = "benchmarks/RESULTS.md"
    """The results page to write."""
    suites_dir: str | None = None
    """Folder of suite files; default: ``benchmarks/suites``."""
    sync_every: float = 60.0
    """Seconds between copies of running runs' evaluation curves into the results folder."""
    latency_steps: int = 200
    """``act()`` calls timed after each finished run (0 skips the latency measurement)."""
    bootstrap_reps: int = 2000
    """Bootstrap resamples per confidence interval."""
    new_runs_for: float | None = None
    """Start new runs only during this many minutes (runs with a checkpoint still resume after): on a machine held
    for a limited time, a run that cannot finish there would only be lost (its replay stays on the machine)."""

    def __post_init__(self) -> None:
        for name in ("jobs", "bootstrap_reps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.sync_every <= 0 or self.latency_steps < 0:
            raise ValueError(
                f"need sync_every > 0 (got {self.sync_every}) and latency_steps >= 0 ({self.latency_steps})"
            )
        if self.new_runs_for is not None and self.new_runs_for < 0:
            raise ValueError(f"new_runs_for={self.new_runs_for} must be >= 0 minutes")


def _report_suites(current: Suite, args: BenchArgs) -> list[Suite]:
    """The current suite plus every other suite in its folder that already has results (``debug`` only when asked)."""
    folder = Path(current.path).parent if current.path else None
    suites = {current.name: current}
    for path in sorted(folder.glob("*.toml")) if folder else []:
        if path.stem in (current.name, "debug") or not (Path(args.results_dir) / path.stem).is_dir():
            continue
        try:
            other = load_suite(str(path))
        except SuiteError as e:
            print(f"warning: {e}; left out of the report")
            continue
        suites[other.name] = other
    return [suites[name] for name in sorted(suites)]


def _write_report(suite: Suite, args: BenchArgs) -> Path:
    from wam.bench.report import write_report

    return write_report(
        _report_suites(suite, args),
        args.results_dir,
        args.report,
        reps=args.bootstrap_reps,
        command=f"wam bench {suite.name} --report-only",
    )


def bench_cli(args: BenchArgs) -> dict[str, list[str]]:
    """Run (or only report on) a suite; returns the names of skipped, finished and failed runs."""
    from wam.bench.grid import BenchPaths, expand_grid
    from wam.bench.runner import BenchRunner

    suite = load_suite(args.suite, args.suites_dir)
    grid = expand_grid(suite, args.seeds, tuple(args.agents), tuple(args.tasks))
    runner = BenchRunner(
        suite,
        BenchPaths(Path(args.runs_dir), Path(args.results_dir)),
        jobs=args.jobs,
        sync_every=args.sync_every,
        latency_steps=args.latency_steps,
        new_runs_until=None if args.new_runs_for is None else time.time() + 60 * args.new_runs_for,
    )
    if args.dry_run:
        plan = runner.plan(grid)
        print(
            f"suite {suite.name} ({suite.path}): {len(plan)} runs, {suite.budget:,} env steps each, train ratio "
            f"{suite.train_ratio:g}, {runner.jobs} worker(s)"
        )
        for run, status, cmd in plan:
            print(f"{status:7s} {run.key}\n        {shlex.join(cmd)}")
        return {"skipped": [r.key for r, s, _ in plan if s == "done"], "finished": [], "failed": []}
    outcome = {"skipped": [], "finished": [], "failed": []}
    if not args.report_only:
        try:
            outcome = runner.run(grid, on_finished=lambda: _write_report(suite, args))
        except KeyboardInterrupt:
            _write_report(suite, args)
            raise SystemExit(
                f"wam bench: interrupted; the runs were stopped and resume from their last checkpoint when "
                f"you run the same command again (report: {args.report})"
            ) from None
    path = _write_report(suite, args)
    print(f"report: {path} (plots in {Path(args.results_dir) / suite.name})")
    if outcome.get("not started"):
        print(f"not started (--new-runs-for {args.new_runs_for:g} min had passed): {', '.join(outcome['not started'])}")
    if outcome["failed"]:
        raise SystemExit(
            f"wam bench: {len(outcome['failed'])} run(s) failed: {', '.join(outcome['failed'])}; "
            f"their logs are in {Path(args.runs_dir) / suite.name / 'logs'}; run the same command again to retry"
        )
    return outcome
