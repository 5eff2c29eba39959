"""Learning curves of run folders as one PNG: evaluation success and return, then training metrics, against env steps.

A run folder (``wam train --out``) holds ``eval.jsonl`` (one row per evaluation) and ``metrics.jsonl`` (one row per
``--log-every`` env steps). A resumed run may log a step twice (the steps after its last checkpoint are re-run); the
last row of a step wins, as it is the one the run continued from.

>>> plot_runs(["runs/reach", "runs/reach_decoupled"], "reach.png", metrics=("train/return", "loss/*"))
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from wam.io.metrics import last_row_per_step, read_jsonl

EVAL_KEYS = ("eval/success", "eval/return")
DEFAULT_METRICS = ("train/return", "loss/*")
"""Training metrics plotted when none are asked for (shell-style patterns over the keys of ``metrics.jsonl``)."""


def load_curve(path: str | Path, step_key: str = "step") -> dict[str, list[tuple[int, float]]]:
    """{metric: [(step, value), ...] sorted by step} from a JSONL log; the last row of a repeated step wins.

    Non-numeric values and nulls (non-finite values are logged as null) are left out.
    """
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in last_row_per_step(read_jsonl(path), step_key):
        for key, value in row.items():
            if key not in ("step", "time") and isinstance(value, (int, float)) and not isinstance(value, bool):
                curves.setdefault(key, []).append((int(row[step_key]), float(value)))
    return curves


def _run_logs(run_dir: Path) -> tuple[dict, dict]:
    """(eval curves, training curves) of one run folder, with a clear error when it is not one."""
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder; pass run folders written by `wam train --out`")
    eval_path, metrics_path = run_dir / "eval.jsonl", run_dir / "metrics.jsonl"
    if not eval_path.is_file() and not metrics_path.is_file():
        raise ValueError(
            f"{run_dir} has neither eval.jsonl nor metrics.jsonl; is it a run folder written by "
            "`wam train --out`? (a run logs them from its first evaluation and its first --log-every steps)"
        )
    evals = load_curve(eval_path) if eval_path.is_file() else {}
    train = load_curve(metrics_path) if metrics_path.is_file() else {}
    return evals, train


def select_metrics(keys: list[str], patterns: tuple[str, ...] | list[str]) -> list[str]:
    """The keys matching any of ``patterns`` (shell-style, e.g. ``loss/*``), in the order of the patterns."""
    chosen: list[str] = []
    for pattern in patterns:
        chosen += [k for k in sorted(keys) if fnmatch.fnmatchcase(k, pattern) and k not in chosen]
    return chosen


def choose_panels(
    evals: list[dict], trains: list[dict], metrics: tuple[str, ...] | list[str] | None = None
) -> list[tuple[str, str]]:
    """[(metric, "evaluation" | "training")] to draw for runs with these eval and training curves (see :func:`plot_runs`)."""
    train_keys = sorted({k for train in trains for k in train})
    unmatched = [p for p in metrics or () if not select_metrics(train_keys, [p])]
    if unmatched:
        raise ValueError(
            f"no training metric matches {unmatched}; the runs log: {', '.join(train_keys) or 'nothing yet'}"
        )
    eval_keys = [k for k in EVAL_KEYS if any(k in e for e in evals)]
    if "eval/success" in eval_keys and not any(v for e in evals for _, v in e.get("eval/success", [])):
        eval_keys.remove("eval/success")  # a suite without a success signal (e.g. DMC) logs zeros only
    chosen = select_metrics(train_keys, DEFAULT_METRICS if metrics is None else metrics)
    return [(k, "evaluation") for k in eval_keys] + [(k, "training") for k in chosen]


def plot_runs(
    run_dirs: list[str | Path], out: str | Path, metrics: tuple[str, ...] | list[str] | None = None, columns: int = 4
) -> Path:
    """Plot the runs' curves into ``out`` (PNG), one panel per metric, one line per run; returns the path.

    Panels: evaluation success (when any run has a success signal; DMC has none) and return, then every training
    metric matching ``metrics`` (default :data:`DEFAULT_METRICS`, those the runs have). Raises ``ValueError`` for a
    folder that is not a run, or when a pattern given matches no metric of any run (naming the metrics there are).
    """
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend and figures alone

    if not run_dirs:
        raise ValueError("no run folder given")
    runs = [(Path(d), *_run_logs(Path(d))) for d in run_dirs]
    panels = choose_panels([evals for _, evals, _ in runs], [train for _, _, train in runs], metrics)
    if not panels:
        raise ValueError(
            f"nothing to plot in {', '.join(str(d) for d in run_dirs)} yet: no evaluation and no training metric"
        )
    cols = min(columns, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4 * cols, 3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = _labels([d for d, _, _ in runs])
    for ax, (key, source) in zip(axes.flat, panels):
        for label, (_, evals, train) in zip(labels, runs):
            points = (evals if source == "evaluation" else train).get(key, [])
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, marker="o" if source == "evaluation" else None, markersize=3, label=label)
        ax.set_title(f"{key} ({source})", fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        if key == "eval/success":
            ax.set_ylim(-0.05, 1.05)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    legend_rows = 0
    if len(runs) > 1:
        lines = {}  # one entry per run, from whichever panel has its line
        for ax in axes.flat:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                lines.setdefault(name, handle)
        names = [n for n in labels if n in lines]
        legend_rows = -(-len(names) // 2)
        fig.legend([lines[n] for n in names], names, loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, min(0.3, 0.08 * legend_rows / rows), 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def _labels(run_dirs: list[Path]) -> list[str]:
    """Short, distinct line labels: the fewest trailing path parts that tell the runs apart."""
    parts = [Path(d).resolve().parts for d in run_dirs]
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(d) for d in run_dirs]  # the same folder given twice
