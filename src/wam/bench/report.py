"""``benchmarks/RESULTS.md`` and the PNG curves, written from whatever results exist (never from hand-typed numbers)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from wam.bench.aggregate import (
    RETURN,
    Estimate,
    Results,
    censor_value,
    complete_tasks,
    covered_tasks,
    is_finite,
    load_results,
    probability_of_improvement,
    seed_counts,
    steps_estimate,
    steps_ratio,
    success_estimate,
)
from wam.bench.claims import Verdict, judge_claims
from wam.bench.plots import plot_curves, short_steps
from wam.bench.suite import Suite

BASELINE = "dreamerv3"


def _ci(e: Estimate | None, pct: bool = True, digits: int = 2) -> str:
    """``point [lo, hi]`` of an estimate, as a percentage or a plain number with ``digits`` decimals."""
    if e is None:
        return "–"
    fmt = "{:.0%}" if pct else f"{{:.{digits}f}}"
    if (e.max_seeds or e.seeds) < 2:  # one run per task: the bootstrap has nothing to resample
        return f"{fmt.format(e.point)} [no CI]"
    return f"{fmt.format(e.point)} [{fmt.format(e.lo)}, {fmt.format(e.hi)}]"


def _steps(e: Estimate | None, suite: Suite) -> str:
    if e is None:
        return "–"
    if e.censored:
        return f"> {short_steps(suite.budget)}"
    hi = f"> {short_steps(suite.budget)}" if e.hi >= censor_value(suite) else short_steps(e.hi)
    return f"{short_steps(e.point)} [{short_steps(e.lo)}, {hi}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def completeness_table(results: Results) -> list[str]:
    """Seeds per cell: complete / started, out of the suite's seed count."""
    suite, counts = results.suite, seed_counts(results)
    rows = []
    for agent in suite.agents:
        cells = []
        for task in suite.tasks:
            if not suite.runs_on(agent, task.name):
                cells.append("n/a")
                continue
            done, started = counts[(agent, task.name)]
            mark = " ✓" if done >= suite.seeds else ""
            cells.append(f"{done}/{suite.seeds}{mark}" + (f" (+{started - done} partial)" if started > done else ""))
        rows.append([agent, *cells])
    return _table(["agent", *[t.name for t in suite.tasks]], rows)


def success_tables(results: Results, reps: int) -> list[str]:
    """Final IQM success per task and aggregated, then the aggregate at every milestone."""
    suite = results.suite
    agents = list(suite.agents)
    rows = []
    for task in suite.tasks:
        cells = [success_estimate(results, a, [task.name], suite.budget, reps) for a in agents]
        rows.append([task.name, *[_ci(e) + (f" (n={e.n})" if e else "") for e in cells]])
    agg = []
    for a in agents:
        tasks = covered_tasks(results, a, suite.budget)
        e = success_estimate(results, a, tasks, suite.budget, reps) if tasks else None
        agg.append(_ci(e) + (f" ({e.tasks}/{len(suite.tasks)} tasks, n={e.n})" if e else ""))
    rows.append(["**aggregate**", *agg])
    lines = [
        f"Success rate at {suite.budget:,} env steps: interquartile mean over seeds (and tasks for the aggregate), "
        "95% stratified-bootstrap CI (`[no CI]` with one seed per task); n = seeds per task (a range while tasks differ).",
        "",
        *_table(["task", *agents], rows),
        "",
    ]
    header = ["agent", *[short_steps(m) for m in suite.milestones]]
    milestone_rows = []
    for a in agents:
        cells = []
        for m in suite.milestones:
            tasks = covered_tasks(results, a, m)
            e = success_estimate(results, a, tasks, m, reps) if tasks else None
            cells.append(_ci(e) + (f" ({e.tasks}t×{e.n}s)" if e else ""))
        milestone_rows.append([a, *cells])
    lines += [
        "Aggregate IQM success over the tasks each agent has reached that point on (`Kt×Ns` = tasks × seeds per task):",
        "",
        *_table(header, milestone_rows),
        "",
    ]
    return lines


def return_table(results: Results, reps: int) -> list[str]:
    """IQM episode return per task at the budget: descriptive only (returns are on each task's own scale, so they are
    not aggregated over tasks, and no claim uses them), but they show progress where every success rate is 0."""
    suite = results.suite
    agents = list(suite.agents)
    rows = []
    for task in suite.tasks:
        cells = [success_estimate(results, a, [task.name], suite.budget, reps, key=RETURN) for a in agents]
        rows.append([task.name, *[_ci(e, pct=False, digits=1) + (f" (n={e.n})" if e else "") for e in cells]])
    return [
        f"Mean episode return of the evaluation at {suite.budget:,} env steps: IQM over seeds, 95% bootstrap CI. "
        "Descriptive only: no claim uses it, and returns are not comparable across tasks.",
        "",
        *_table(["task", *agents], rows),
        "",
    ]


def improvement_table(results: Results, reps: int) -> list[str]:
    """Probability of improvement for every pair of agents, at the budget."""
    agents, suite = list(results.suite.agents), results.suite
    rows = []
    for i, x in enumerate(agents):
        for y in agents[i + 1 :]:
            e, tasks = probability_of_improvement(results, x, y, suite.budget, reps)
            rows.append([x, y, _ci(e, pct=False), f"{len(tasks)}" + (f" (n={e.n})" if e else "")])
    return [
        f"Probability of improvement P(X > Y) at {suite.budget:,} env steps (rliable's definition; 0.5 = no difference), "
        "over the tasks both agents have reached it on.",
        "",
        *_table(["X", "Y", "P(X > Y) [95% CI]", "tasks"], rows),
        "",
    ]


def steps_table(results: Results, reps: int) -> list[str]:
    """Env steps for the IQM success curve to reach each threshold, and the ratio to the baseline on shared tasks."""
    suite = results.suite
    agents = list(suite.agents)
    baseline = BASELINE if BASELINE in suite.agents else None
    rows = []
    for threshold in suite.thresholds:
        for a in agents:
            tasks = complete_tasks(results, [a])
            e = steps_estimate(results, a, tasks, threshold, reps) if tasks else None
            per_task = [
                _steps(steps_estimate(results, a, [t.name], threshold, reps) if t.name in tasks else None, suite)
                for t in suite.tasks
            ]
            ratio = "–"
            if baseline and a != baseline:
                shared = complete_tasks(results, [a, baseline])
                r = steps_ratio(results, a, baseline, shared, threshold, reps) if shared else None
                if r is not None:
                    ratio = _ci(r, pct=False) + f" ({r.tasks} tasks{', one side censored' if r.censored else ''})"
                elif shared:
                    ratio = "– (neither reached it)"
            rows.append(
                [f"{threshold:.0%}", a, _steps(e, suite) + (f" ({e.tasks} tasks)" if e else ""), ratio, *per_task]
            )
    header = ["threshold", "agent", "aggregate", f"ratio to {baseline or '–'}", *[t.name for t in suite.tasks]]
    return [
        f"Env steps until the IQM success curve (complete runs only) first reaches the threshold, 95% CI; "
        f"`> {short_steps(suite.budget)}` = not reached within the budget. The ratio uses the tasks both agents completed.",
        "",
        *_table(header, rows),
        "",
    ]


def throughput_table(suite: Suite, results_root: Path) -> list[str]:
    """Mean throughput per agent and observation kind over finished runs."""
    keys = ("env_steps_per_s", "updates_per_s", "wall_clock_per_100k_s", "peak_memory_mb", "act_ms_p50", "act_ms_p95")
    rows = []
    for agent in suite.agents:
        groups: dict[str, list[dict]] = {}
        for task in suite.tasks:
            for path in sorted((results_root / suite.name / agent / task.name).glob("seed*.throughput.json")):
                groups.setdefault("+".join(task.obs), []).append(json.loads(path.read_text()))
        for obs, records in sorted(groups.items()):
            means = {}
            for k in keys:
                values = [r[k] for r in records if is_finite(r.get(k))]
                means[k] = float(np.mean(values)) if values else None
            fmt = lambda k, f: "–" if means[k] is None else format(means[k], f)  # noqa: E731
            rows.append(
                [
                    agent,
                    obs,
                    str(len(records)),
                    fmt("env_steps_per_s", ".1f"),
                    fmt("updates_per_s", ".2f"),
                    "–" if means["wall_clock_per_100k_s"] is None else f"{means['wall_clock_per_100k_s'] / 3600:.1f} h",
                    fmt("peak_memory_mb", ".0f"),
                    f"{fmt('act_ms_p50', '.1f')} / {fmt('act_ms_p95', '.1f')}",
                ]
            )
    if not rows:
        return ["No finished runs yet.", ""]
    return [
        "Means over finished runs (each single-threaded, several side by side on a shared machine; wall-clock "
        "includes evaluation; peak MiB = the training process's peak resident memory, replay included). The runs "
        "were trained on whichever machine a session had, and those differ by 2–4× in speed, so these means do not rank "
        "the agents: [results/throughput.md](results/throughput.md) measures them side by side on one machine "
        "(`benchmarks/throughput.py`).",
        "",
        *_table(
            [
                "agent",
                "obs",
                "runs",
                "env steps/s",
                "updates/s",
                "wall-clock / 100k steps",
                "peak MiB",
                "act() ms p50 / p95",
            ],
            rows,
        ),
        "",
    ]


def protocol_lines(suite: Suite) -> list[str]:
    """The suite's matched protocol, agents and tasks."""
    lines = [suite.description.strip(), ""] if suite.description.strip() else []
    path = Path(suite.path or "?")
    shown = os.path.relpath(path) if path.is_absolute() and path.is_relative_to(Path.cwd()) else str(path)
    lines += [
        f"Protocol (the same for every agent; file `{shown}`): {suite.budget:,} env steps, train ratio "
        f"{suite.train_ratio:g}, evaluation every {suite.eval_every:,} env steps with {suite.eval_episodes} episode(s) "
        f"(success = the episode reached the task's success at any step), seeds {suite.seeds}, thresholds "
        f"{', '.join(f'{x:.0%}' for x in suite.thresholds)}; flags for every run: `{' '.join(suite.common_flags) or '–'}`.",
        "",
    ]
    lines += _table(
        ["agent", "flags"],
        [
            [
                a
                if a not in suite.references
                else f"{a} (reference: train ratio {suite.references[a]:g}, not matched; in no claim)",
                f"`{' '.join(f)}`",
            ]
            for a, f in suite.agents.items()
        ],
    ) + [""]
    lines += _table(
        ["task", "env", "obs", "flags"],
        [[t.name, t.env, "+".join(t.obs), f"`{' '.join(t.flags)}`" if t.flags else "–"] for t in suite.tasks],
    ) + [""]
    return lines


def suite_section(suite: Suite, results_root: Path, md_dir: Path, reps: int) -> tuple[list[str], list[Verdict]]:
    """The Markdown section of one suite, and its claim verdicts (the plot is written beside its results)."""
    results = load_results(suite, results_root)
    verdicts = judge_claims(results, reps)
    png = plot_curves(results, results_root / suite.name / "success.png", reps=min(reps, 1000))
    returns_png = plot_curves(results, results_root / suite.name / "return.png", reps=min(reps, 1000), key=RETURN)
    lines = [
        f"## Suite `{suite.name}`",
        "",
        *protocol_lines(suite),
        "### Completeness",
        "",
        "Complete seeds / pre-registered seeds per cell (✓ = complete; partial = a curve that stops before the budget: still training, or stopped and resumable).",
        "",
        *completeness_table(results),
        "",
        "### Success",
        "",
        *success_tables(results, reps),
        f"![{suite.name} curves]({os.path.relpath(png, md_dir)})",
        "",
        "### Episode return",
        "",
        *return_table(results, reps),
        f"![{suite.name} returns]({os.path.relpath(returns_png, md_dir)})",
        "",
        "### Probability of improvement",
        "",
        *improvement_table(results, reps),
        "### Environment steps to reach a success threshold",
        "",
        *steps_table(results, reps),
        "### Throughput",
        "",
        *throughput_table(suite, results_root),
    ]
    return lines, verdicts


def write_report(
    suites: list[Suite],
    results_root: str | Path = "benchmarks/results",
    out: str | Path = "benchmarks/RESULTS.md",
    reps: int = 2000,
    command: str = "wam bench <suite> --report-only",
) -> Path:
    """Write the results page for ``suites`` (and their plots); returns its path."""
    results_root, out = Path(results_root), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sections, verdicts = [], []
    for suite in suites:
        lines, vs = suite_section(suite, results_root, out.parent, reps)
        sections += lines
        verdicts += [(suite.name, v) for v in vs]
    head = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from the evaluation curves "
        f"in `{results_root}/`; every number below is computed from those files (do not edit by hand). Suites are "
        "pre-registered in `benchmarks/suites/`: budgets, train ratio, seeds and thresholds were fixed before any result.",
        "",
        "Statistics follow Agarwal et al. (2021): interquartile mean (IQM) with 95% stratified-bootstrap confidence "
        "intervals (runs resampled within each task), probability of improvement, and steps to a success threshold. "
        "A claim is judged on the 95% stratified-bootstrap CI of its effect (the difference of IQM success, or the "
        "ratio of env steps to the threshold) once every cell it needs has at least 3 complete seeds: *supported* "
        "when the whole CI reaches the claimed effect, *not supported* when the CI excludes it, *inconclusive at "
        "this scale* otherwise (or with fewer seeds, or when neither agent reaches the threshold). Verdicts hold "
        "for this budget only. With 3 seeds a percentile-bootstrap CI is too narrow (the IQM of 3 runs is their "
        "mean, and the bootstrap sees only 3 values), so read a verdict at 3 seeds as provisional; the suites aim "
        "for 5.",
        "",
        "## Claims",
        "",
    ]
    if verdicts:
        head += [f"* **{v.claim.text}** (suite `{name}`): **{v.label}** — {v.detail}." for name, v in verdicts]
    else:
        head += ["No suite with registered claims has results yet."]
    out.write_text("\n".join(head + [""] + sections).rstrip() + "\n")
    return out
