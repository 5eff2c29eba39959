"""Learning curves of a suite: IQM over seeds with 95% stratified-bootstrap bands, one panel per task."""

from __future__ import annotations

from pathlib import Path

from wam.bench.aggregate import SUCCESS, Results, success_estimate


def short_steps(steps: float) -> str:
    """Env steps for tables and axes: ``20k``, or ``60`` below a thousand."""
    return f"{steps / 1000:g}k" if steps >= 1000 else f"{steps:g}"


def plot_curves(results: Results, path: Path, reps: int = 1000, key: str = SUCCESS) -> Path:
    """Success (or episode return, ``key=RETURN``) vs env steps, IQM over seeds with 95% CI bands: one panel per task,
    plus an aggregate panel for success (returns are on each task's own scale, so they are not aggregated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    suite = results.suite
    success = key == SUCCESS
    panels = [(t.name, [t.name]) for t in suite.tasks] + ([("aggregate (IQM over tasks)", None)] if success else [])
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = {a: f"C{i}" for i, a in enumerate(suite.agents)}
    # Distinct dashes and markers too: curves often coincide (e.g. all at 0%), and then only the top one would show.
    styles = {a: (["-", "--", ":", "-."][i % 4], "osD^v"[i % 5]) for i, a in enumerate(suite.agents)}
    for ax, (title, tasks) in zip(axes.flat, panels):
        for agent in suite.agents:
            points = []  # (env steps, IQM, CI low, CI high)
            chosen = tasks if tasks is not None else [t.name for t in suite.tasks if results.seeds(agent, t.name)]
            for m in suite.milestones:
                e = success_estimate(results, agent, chosen, m, reps, key=key) if chosen else None
                if e is not None:
                    points.append((m, e.point, e.lo, e.hi))
                    last = e
            if points:
                xs, ys, los, his = zip(*points)
                ax.plot(
                    xs,
                    ys,
                    color=colors[agent],
                    label=f"{agent} (n={last.n})",
                    linestyle=styles[agent][0],
                    marker=styles[agent][1],
                    markersize=4,
                    markerfacecolor="none",
                )
                ax.fill_between(xs, los, his, color=colors[agent], alpha=0.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env steps")
        ax.set_ylabel("success rate" if success else "episode return")
        if success:
            ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(0, suite.budget)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: short_steps(x)))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"{suite.name}: IQM {'success' if success else 'episode return'}, 95% stratified-bootstrap CI", fontsize=11
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
