"""Statistics of a suite's results: IQM with stratified-bootstrap CIs, probability of improvement, steps to threshold.

Follows Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice") and uses ``rliable.metrics``
for the interquartile mean and the probability of improvement. The stratified bootstrap (resample runs with
replacement within each task, percentile 95% interval) is written here rather than taken from
``rliable.library``, because that module needs ``arch``, whose releases either fail to import beside pandas 3
(arch 7.2) or reject the ``random_state`` argument rliable 1.2 passes (arch 8). Resampling whole runs also keeps
each run's learning curve intact, which steps-to-threshold needs.

Scores are arrays ``(runs, tasks)`` or, for curves, ``(runs, tasks, milestones)``. While a suite is incomplete its
tasks can have different numbers of seeds: the missing runs are NaN (after the present ones), the bootstrap
resamples each task among its own runs, and the IQM pools the runs that exist (each run weighs the same). With
equal seeds per task — a finished suite — this is exactly rliable's stratified bootstrap and IQM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.stats
from rliable import metrics as rl_metrics

from wam.bench.grid import read_curve, reached
from wam.bench.suite import Suite

#: Minimum seeds per cell before a claim can be anything but "inconclusive".
MIN_SEEDS = 3
#: Evaluation-row keys of the success rate (what claims and thresholds use) and of the mean episode return.
SUCCESS, RETURN = "eval/success", "eval/return"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% bootstrap interval and the data it came from."""

    point: float
    lo: float
    hi: float
    seeds: int
    """Seeds per task used (the smallest count when tasks differ)."""
    tasks: int = 1
    """Tasks used."""
    censored: bool = False
    """Steps-to-threshold only: the threshold was not reached within the budget (``point`` is then budget + eval_every)."""

    max_seeds: int | None = None
    """The largest seed count of a task, when tasks differ."""

    @property
    def n(self) -> str:
        """Seeds per task as printed: ``3``, or ``1–3`` when tasks differ."""
        return (
            f"{self.seeds}" if not self.max_seeds or self.max_seeds == self.seeds else f"{self.seeds}–{self.max_seeds}"
        )

    def overlaps(self, other: "Estimate") -> bool:
        """Whether the two intervals overlap."""
        return self.lo <= other.hi and other.lo <= self.hi


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all runs and tasks (rliable's ``aggregate_iqm``)."""
    return float(rl_metrics.aggregate_iqm(scores))


def iqm_batched(scores: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each resample ``scores[r]`` over its non-NaN entries (rliable's trimmed mean): ``(R, ...)`` → ``(R,)``.

    Missing runs sit at the same places in every resample (see :func:`stratified_bootstrap`).
    """
    flat = scores.reshape(scores.shape[0], -1)
    return scipy.stats.trim_mean(flat[:, ~np.isnan(flat[0])], proportiontocut=0.25, axis=1)


def improvement_batched(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's probability of improvement of each resample: mean over tasks of P(x > y) + ½ P(x = y).

    ``x (R, Nx, K)``, ``y (R, Ny, K)`` → ``(R,)``; this is the Mann-Whitney U / (Nx·Ny) that
    ``rliable.metrics.probability_of_improvement`` computes task by task, without a Python loop per resample.
    """
    xi, yj = x[:, :, None, :], y[:, None, :, :]  # (R, Nx, 1, K), (R, 1, Ny, K)
    pairs = (~np.isnan(xi) & ~np.isnan(yj)).sum(axis=(1, 2))  # (R, K): pairs of present runs
    wins = (xi > yj).sum(axis=(1, 2)) + 0.5 * (xi == yj).sum(axis=(1, 2))  # NaN compares False
    return (wins / pairs).mean(axis=1)


def stratified_bootstrap(
    arrays: list[np.ndarray], func: Callable[..., np.ndarray], reps: int = 2000, seed: int = 0, size: float = 0.95
) -> tuple[float, float, float]:
    """Point estimate and percentile interval of a statistic, resampling runs (axis 0) within each task (axis 1).

    ``func`` takes each array with a leading resample axis, ``(R, N, K, ...)``, and returns ``(R,)``; the point
    estimate is ``func`` of the data itself (R = 1). Each array is resampled independently (different agents).
    Task ``k`` has ``c_k`` runs in rows ``0 .. c_k-1`` (NaN below): those are resampled, the NaN rows stay put.
    """
    rng = np.random.default_rng(seed)
    point = float(func(*[a[None] for a in arrays])[0])
    resampled = []
    for a in arrays:
        runs, tasks = a.shape[:2]
        counts = (~np.isnan(a.reshape(runs, tasks, -1)[:, :, 0])).sum(axis=0)  # (K,) runs present per task
        rows = np.arange(runs)[None, :, None]
        drawn = np.floor(rng.random((reps, runs, tasks)) * counts).astype(
            int
        )  # (R, N, K): run standing in for run n of task k
        idx = np.where(rows < counts, drawn, rows)
        resampled.append(a[idx, np.arange(tasks)[None, None, :]])  # (R, N, K, ...)
    stats = func(*resampled)
    alpha = (1.0 - size) / 2.0
    lo, hi = np.percentile(stats, [100 * alpha, 100 * (1 - alpha)])
    return point, float(lo), float(hi)


# ---------------------------------------------------------------- loading


def milestone_value(rows: list[dict], step: int, eval_every: int, key: str = SUCCESS) -> float | None:
    """``key`` of a curve's evaluation at ``step``: the last row at or before it and less than ``eval_every`` before.

    None when the curve has not got to ``step``, or its evaluation there is missing or has no ``key`` value.
    """
    if not rows or rows[-1]["env_steps"] < step:
        return None
    before = [r for r in rows if r["env_steps"] <= step]
    if not before or step - before[-1]["env_steps"] >= eval_every or before[-1].get(key) is None:
        return None
    return float(before[-1][key])


@dataclass
class Results:
    """Evaluation curves of a suite: ``curves[agent][task][seed]`` = rows sorted by env steps."""

    suite: Suite
    curves: dict[str, dict[str, dict[int, list[dict]]]]

    def success_at(self, agent: str, task: str, step: int, key: str = SUCCESS) -> dict[int, float]:
        """{seed: success (or another evaluation ``key``) of the evaluation at ``step``} over the seeds that got there.

        The evaluation is the last one at or before ``step`` and less than ``eval_every`` before it (vector envs can
        overshoot a milestone by a few steps). A seed whose evaluation at ``step`` is missing or has no such value is
        left out rather than given an older evaluation's score.
        """
        out = {}
        for seed, rows in sorted(self.curves.get(agent, {}).get(task, {}).items()):
            value = milestone_value(rows, step, self.suite.eval_every, key)
            if value is not None:
                out[seed] = value
        return out

    def complete_seeds(self, agent: str, task: str) -> list[int]:
        """Seeds of a cell whose curve reached the budget."""
        return sorted(
            s for s, rows in self.curves.get(agent, {}).get(task, {}).items() if reached(rows, self.suite.budget)
        )

    def seeds(self, agent: str, task: str) -> list[int]:
        """Seeds of a cell with any evaluation."""
        return sorted(self.curves.get(agent, {}).get(task, {}))

    def curve_matrix(self, agent: str, task: str, seeds: list[int]) -> np.ndarray:
        """Success at every milestone, ``(len(seeds), len(milestones))``; NaN where a seed has no evaluation there."""
        at = [self.success_at(agent, task, m) for m in self.suite.milestones]
        return np.array([[scores.get(s, np.nan) for scores in at] for s in seeds], dtype=float).reshape(len(seeds), -1)


def load_results(suite: Suite, results_root: str | Path) -> Results:
    """Read ``<results_root>/<suite>/<agent>/<task>/seed<k>.jsonl`` for the suite's agents and tasks."""
    root = Path(results_root) / suite.name
    curves: dict[str, dict[str, dict[int, list[dict]]]] = {}
    for agent in suite.agents:
        for task in suite.tasks:
            for path in sorted((root / agent / task.name).glob("seed*.jsonl")):
                seed = path.stem.removeprefix("seed")
                rows = read_curve(path)
                if seed.isdigit() and rows:
                    curves.setdefault(agent, {}).setdefault(task.name, {})[int(seed)] = rows
    return Results(suite, curves)


# ---------------------------------------------------------------- estimates


def stack_by_task(columns: list[list[float]]) -> np.ndarray:
    """Per-task score lists → ``(max count, tasks)``, NaN where a task has fewer runs."""
    out = np.full((max(len(c) for c in columns), len(columns)), np.nan)
    for k, c in enumerate(columns):
        out[: len(c), k] = c
    return out


def _counts(scores: np.ndarray) -> dict:
    """``seeds`` / ``max_seeds`` of an :class:`Estimate` from a NaN-padded score array."""
    counts = (~np.isnan(scores.reshape(scores.shape[0], scores.shape[1], -1)[:, :, 0])).sum(axis=0)
    return {"seeds": int(counts.min()), "max_seeds": int(counts.max())}


def success_estimate(
    results: Results, agent: str, tasks: list[str], step: int, reps: int = 2000, key: str = SUCCESS
) -> Estimate | None:
    """IQM success (or evaluation ``key``, e.g. :data:`RETURN`) at ``step`` over ``tasks`` (one task = one cell), or None
    when a task has no seed there."""
    columns = [list(results.success_at(agent, t, step, key).values()) for t in tasks]
    if not columns or any(not c for c in columns):
        return None
    scores = stack_by_task(columns)
    point, lo, hi = stratified_bootstrap([scores], iqm_batched, reps)
    return Estimate(point, lo, hi, tasks=scores.shape[1], **_counts(scores))


def covered_tasks(results: Results, agent: str, step: int) -> list[str]:
    """Tasks of the suite on which ``agent`` has at least one seed at ``step``."""
    return [t.name for t in results.suite.tasks if results.success_at(agent, t.name, step)]


def probability_of_improvement(
    results: Results, x: str, y: str, step: int, reps: int = 2000
) -> tuple[Estimate | None, list[str]]:
    """P(X > Y) at ``step`` averaged over the tasks both agents cover (rliable's definition), with its CI."""
    tasks = [t for t in covered_tasks(results, x, step) if t in covered_tasks(results, y, step)]
    if not tasks:
        return None, tasks
    sx = stack_by_task([list(results.success_at(x, t, step).values()) for t in tasks])
    sy = stack_by_task([list(results.success_at(y, t, step).values()) for t in tasks])
    point, lo, hi = stratified_bootstrap([sx, sy], improvement_batched, reps)
    cx, cy = _counts(sx), _counts(sy)
    return Estimate(
        point,
        lo,
        hi,
        seeds=min(cx["seeds"], cy["seeds"]),
        max_seeds=max(cx["max_seeds"], cy["max_seeds"]),
        tasks=len(tasks),
    ), tasks


def steps_to_threshold(curves: np.ndarray, milestones: list[int], threshold: float, censored_at: int) -> np.ndarray:
    """First milestone at which the IQM (over runs and tasks) of each ``curves[r] (N, K, M)`` reaches ``threshold``.

    ``curves (R, N, K, M)`` → ``(R,)`` env steps; ``censored_at`` where the threshold is never reached.
    """
    iqm_curves = np.stack([iqm_batched(curves[..., j]) for j in range(curves.shape[-1])], axis=1)  # (R, M)
    hit = iqm_curves >= threshold - 1e-9
    steps = np.asarray(milestones, dtype=float)[hit.argmax(axis=1)]
    return np.where(hit.any(axis=1), steps, float(censored_at))


def _curves(results: Results, agent: str, tasks: list[str]) -> np.ndarray | None:
    """Complete learning curves ``(n, tasks, milestones)`` of ``agent`` (None when a task has none).

    A seed counts when it reached the budget with a success value at every milestone; one with a hole (an evaluation
    lost to a crash) is left out, since the bootstrap needs the missing runs of a task at fixed rows.
    """
    matrices = []
    for task in tasks:
        m = results.curve_matrix(agent, task, results.complete_seeds(agent, task))
        matrices.append(m[~np.isnan(m).any(axis=1)])
    if not tasks or any(not len(m) for m in matrices):
        return None
    out = np.full((max(len(m) for m in matrices), len(tasks), len(results.suite.milestones)), np.nan)  # (N, K, M)
    for k, m in enumerate(matrices):
        out[: len(m), k] = m
    return out


def censor_value(suite: Suite) -> int:
    """The value standing for "not reached within the budget"."""
    return suite.budget + suite.eval_every


def steps_estimate(
    results: Results, agent: str, tasks: list[str], threshold: float, reps: int = 2000
) -> Estimate | None:
    """Env steps for ``agent``'s IQM success curve over ``tasks`` (complete runs only) to reach ``threshold``."""
    curves = _curves(results, agent, tasks)
    if curves is None:
        return None
    suite = results.suite
    fn = lambda c: steps_to_threshold(c, suite.milestones, threshold, censor_value(suite))  # noqa: E731
    point, lo, hi = stratified_bootstrap([curves], fn, reps)
    return Estimate(point, lo, hi, tasks=curves.shape[1], censored=point >= censor_value(suite), **_counts(curves))


def steps_ratio(
    results: Results, agent: str, baseline: str, tasks: list[str], threshold: float, reps: int = 2000
) -> Estimate | None:
    """Steps-to-threshold of ``agent`` / ``baseline`` on the same tasks; censored values count as budget + eval_every.

    None when a task lacks complete runs or when neither agent reaches the threshold.
    """
    a, b = _curves(results, agent, tasks), _curves(results, baseline, tasks)
    if a is None or b is None:
        return None
    suite = results.suite
    steps = lambda c: steps_to_threshold(c, suite.milestones, threshold, censor_value(suite))  # noqa: E731
    sa, sb = float(steps(a[None])[0]), float(steps(b[None])[0])
    if min(sa, sb) >= censor_value(suite):
        return None  # neither reached the threshold: no ratio to speak of
    # Steps are only resolved to the first evaluation after 0: a curve already at the threshold before training
    # counts as reaching it there, so that no ratio divides by 0 (the judge calls such claims inconclusive).
    first = float(min(m for m in suite.milestones if m > 0))
    point, lo, hi = stratified_bootstrap(
        [a, b], lambda x, y: np.maximum(steps(x), first) / np.maximum(steps(y), first), reps
    )
    ca, cb = _counts(a), _counts(b)
    return Estimate(
        point,
        lo,
        hi,
        seeds=min(ca["seeds"], cb["seeds"]),
        max_seeds=max(ca["max_seeds"], cb["max_seeds"]),
        tasks=len(tasks),
        censored=max(sa, sb) >= censor_value(suite),
    )


def complete_tasks(results: Results, agents: list[str], min_seeds: int = 1) -> list[str]:
    """Tasks on which every agent in ``agents`` has at least ``min_seeds`` complete runs."""
    return [
        t.name for t in results.suite.tasks if all(len(results.complete_seeds(a, t.name)) >= min_seeds for a in agents)
    ]


def seed_counts(results: Results) -> dict[tuple[str, str], tuple[int, int]]:
    """{(agent, task): (complete seeds, seeds with any evaluation)} for every cell of the suite."""
    return {
        (a, t.name): (len(results.complete_seeds(a, t.name)), len(results.seeds(a, t.name)))
        for a in results.suite.agents
        for t in results.suite.tasks
    }


def is_finite(x: float | None) -> bool:
    """True for a real number (not None / NaN / inf)."""
    return x is not None and math.isfinite(x)
