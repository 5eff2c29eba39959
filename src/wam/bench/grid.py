"""A suite's grid (agent × task × seed): its runs, their folders, their ``wam train`` commands and their state on disk.

:class:`~wam.bench.runner.BenchRunner` trains the runs; :mod:`wam.bench.aggregate` reads the curves they leave.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from wam.bench.process import running_pid
from wam.bench.suite import DEMOS_PLACEHOLDER, Suite, SuiteError, TaskSpec
from wam.envs.registry import suggest
from wam.io.metrics import last_row_per_step, read_jsonl
from wam.io.pretrained import atomic_write_bytes


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: an agent on a task with a seed."""

    agent: str
    task: TaskSpec
    seed: int

    @property
    def key(self) -> str:
        """``agent/task/seed<k>``: the run's relative folder in the runs and results trees."""
        return f"{self.agent}/{self.task.name}/seed{self.seed}"


@dataclass(frozen=True)
class BenchPaths:
    """Where a suite's runs (large, not committed) and results (small, committed) live."""

    runs: Path = Path("runs/bench")
    """Root of the ``wam train`` run folders."""
    results: Path = Path("benchmarks/results")
    """Root of the committed evaluation curves and throughput files."""

    def run_dir(self, suite: Suite, run: RunSpec) -> Path:
        """The run's ``wam train --out`` folder."""
        return Path(self.runs) / suite.name / run.key

    def curve(self, suite: Suite, run: RunSpec) -> Path:
        """The run's committed evaluation curve."""
        return Path(self.results) / suite.name / f"{run.key}.jsonl"

    def throughput(self, suite: Suite, run: RunSpec) -> Path:
        """The run's committed throughput record."""
        return Path(self.results) / suite.name / f"{run.key}.throughput.json"

    def lock(self, suite: Suite, run: RunSpec) -> Path:
        """Holds the PID of the ``wam train`` process while the run trains (beside the run folder)."""
        return self.run_dir(suite, run).with_suffix(".lock")

    def demos(self, suite: Suite, task: TaskSpec) -> Path:
        """The task's demonstration dataset (collected once per suite and task; not committed)."""
        return Path(self.runs) / suite.name / "demos" / task.name

    def log(self, suite: Suite, run: RunSpec) -> Path:
        """The run's stdout / stderr (appended across attempts)."""
        return Path(self.runs) / suite.name / "logs" / f"{run.agent}__{run.task.name}__seed{run.seed}.log"


def expand_grid(
    suite: Suite, seeds: int | None = None, agents: tuple[str, ...] = (), tasks: tuple[str, ...] = ()
) -> list[RunSpec]:
    """The grid, seed-major (every cell gets seed 0 before any gets seed 1), optionally filtered."""
    for wanted, known, what in ((agents, list(suite.agents), "agent"), (tasks, [t.name for t in suite.tasks], "task")):
        for name in wanted:
            if name not in known:
                raise SuiteError(f"suite {suite.name!r} has no {what} {name!r}{suggest(name, known)} Valid: {known}")
    n = suite.seeds if seeds is None else seeds
    if n < 1:
        raise SuiteError(f"seeds={n} must be >= 1")
    return [
        RunSpec(agent, task, seed)
        for seed in range(n)
        for task in suite.tasks
        if not tasks or task.name in tasks
        for agent in suite.agents
        if (not agents or agent in agents) and suite.runs_on(agent, task.name)
    ]


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``wam train --resume`` can continue the run: a complete checkpoint, including one left by a crash in the
    middle of replacing the previous checkpoint (the trainer's own lookup, so the two never disagree)."""
    from wam.training.checkpoint import find_checkpoint  # here, not at the top: it imports torch

    return find_checkpoint(run_dir) is not None


def train_command(suite: Suite, run: RunSpec, run_dir: Path, demos: Path | None = None) -> list[str]:
    """The ``wam train`` command of a run: ``--resume`` when it has a checkpoint, else the full protocol (``demos``:
    the task's demonstration dataset, for agents that train with one)."""
    cmd = [sys.executable, "-m", "wam.cli.main", "train"]
    if has_checkpoint(run_dir):
        return cmd + ["--resume", str(run_dir)]
    flags = suite.agents[run.agent]
    if DEMOS_PLACEHOLDER in flags and demos is None:
        raise SuiteError(f"{run.key} trains with demonstrations; give the path of its task's dataset")
    return cmd + [
        *(str(demos) if flag == DEMOS_PLACEHOLDER else flag for flag in flags),
        "--env",
        run.task.env,
        "--obs",
        *run.task.obs,
        *run.task.flags,
        *suite.common_flags,
        "--steps",
        str(suite.budget),
        "--seed",
        str(run.seed),
        "--train-ratio",
        str(suite.train_ratio_of(run.agent)),
        "--eval-every",
        str(suite.eval_every),
        "--eval-episodes",
        str(suite.eval_episodes),
        "--threads",
        "1",
        "--out",
        str(run_dir),
        "--no-progress",
    ]


def read_curve(path: Path) -> list[dict]:
    """Evaluation rows sorted by env steps, one per env-step count (a resumed run's re-evaluation wins)."""
    if not Path(path).is_file():
        return []
    return last_row_per_step(read_jsonl(path), "env_steps")


def sync_curve(run_dir: Path, target: Path) -> list[dict]:
    """Copy a run's evaluation curve to ``target`` (atomically; only when it changed) and return it."""
    rows = read_curve(run_dir / "eval.jsonl")
    if rows:
        text = "".join(json.dumps(r) + "\n" for r in rows).encode()
        if not target.is_file() or target.read_bytes() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, text)
    return rows


def reached(rows: list[dict], budget: int) -> bool:
    """Whether an evaluation curve got to the end of the budget."""
    return bool(rows) and int(rows[-1]["env_steps"]) >= budget


def run_status(suite: Suite, run: RunSpec, paths: BenchPaths) -> str:
    """``done`` (curve complete), ``running`` (by another ``wam bench``), ``resume`` (has a checkpoint) or ``new``."""
    if reached(read_curve(paths.curve(suite, run)), suite.budget):
        return "done"
    if running_pid(paths.lock(suite, run)) is not None:
        return "running"
    run_dir = paths.run_dir(suite, run)
    if (run_dir / "final").is_dir() and reached(sync_curve(run_dir, paths.curve(suite, run)), suite.budget):
        return "done"
    return "resume" if has_checkpoint(run_dir) else "new"


def check_protocol(suite: Suite, run: RunSpec, run_dir: Path) -> None:
    """Refuse to resume a run made under another protocol (the suite file changed after it started)."""
    saved = json.loads((run_dir / "config.json").read_text())["train"]
    expected = {
        "steps": suite.budget,
        "seed": run.seed,
        "train_ratio": suite.train_ratio_of(run.agent),
        "eval_every": suite.eval_every,
        "eval_episodes": suite.eval_episodes,
        "env": run.task.env,
        "obs": list(run.task.obs),
    }
    wrong = [f"{k}: run {saved.get(k)!r} vs suite {v!r}" for k, v in expected.items() if saved.get(k) != v]
    if wrong:
        raise SuiteError(
            f"{run_dir} was started with another protocol ({', '.join(wrong)}); a pre-registered suite "
            "must not change — restore it, or delete the run folder and its results"
        )


def demos_needed(suite: Suite, runs: list[RunSpec]) -> list[TaskSpec]:
    """The tasks whose demonstration dataset some of ``runs`` train with."""
    tasks = {run.task.name: run.task for run in runs if DEMOS_PLACEHOLDER in suite.agents[run.agent]}
    return list(tasks.values())


def collect_command(suite: Suite, task: TaskSpec, out: Path) -> list[str]:
    """The ``wam data collect`` command of a task's demonstrations (the suite's ``[demos]``, the task's episode length)."""
    if suite.demos is None:
        raise SuiteError(f"suite {suite.name!r} has no [demos] table")
    flags, length = list(task.flags), []
    if "--max-episode-steps" in flags:
        at = flags.index("--max-episode-steps")
        length = flags[at : at + 2]
    return [
        sys.executable,
        "-m",
        "wam.cli.main",
        "data",
        "collect",
        "--env",
        task.env,
        "--obs",
        ",".join(task.obs),
        "--episodes",
        str(suite.demos.episodes),
        "--seed",
        str(suite.demos.seed),
        "--noise",
        str(suite.demos.noise),
        *length,
        "--out",
        str(out),
        "--quiet",
    ]
