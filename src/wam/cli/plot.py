"""``wam plot RUN [RUN ...]``: the learning curves of run folders as one PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass
class PlotArgs:
    """Plot run folders' curves (evaluation success and return, training metrics) against env steps into one PNG.
    Example: wam plot runs/reach runs/reach_decoupled --out reach.png --metrics train/return "loss/*" """

    runs: tyro.conf.Positional[list[str]]
    """Run folders written by ``wam train --out`` (one line per run in every panel)."""
    out: str | None = None
    """PNG to write; default ``RUN/curves.png`` for one run, ``curves.png`` here for several."""
    metrics: tuple[str, ...] | None = None
    """Training metrics to plot after the evaluation panels: keys of ``metrics.jsonl`` or shell-style patterns
    (default: those of ``train/return`` and ``loss/*`` that the runs log)."""


def plot_cli(args: PlotArgs) -> Path:
    """Write the plot and print where it is."""
    from wam.evaluation.plots import plot_runs

    out = args.out or (str(Path(args.runs[0]) / "curves.png") if len(args.runs) == 1 else "curves.png")
    path = plot_runs(args.runs, out, metrics=args.metrics)
    print(f"wrote {path}")
    return path
