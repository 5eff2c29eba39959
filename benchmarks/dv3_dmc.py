"""Benchmark (issue: baselines): our DreamerV3 on DeepMind Control proprio tasks next to its published scores.

    python benchmarks/dv3_dmc.py run --tasks cartpole-swingup reacher-easy --seeds 0 [--max-minutes 9]
    python benchmarks/dv3_dmc.py report

The published curves are the per-seed scores of ``scores/dmc_proprio-dreamerv3.json.gz`` in danijar/dreamerv3,
copied as numbers (≤ 100k steps) into ``benchmarks/reference/dreamerv3_dmc_proprio.json``. That file appeared
under this name in commit 2411f7d (2024), but its curves are those of ``scores/data/dmcproprio_dreamerv3.json.gz``
from commit 423291a (May 2023) to within 5e-11: they were made by the **2023 code**, whose ``dmc_proprio`` config is
deter 512 with 2-layer MLPs of 512 units, 32×32 latents, LayerNorm, Adam, and a continuous actor trained by
backpropagating returns through imagination (``actor_grad_cont: backprop``); action repeat 2, train ratio 512,
batches of 16 × 64. Its logger multiplies the step counter by the action repeat, so the published x axis counts
simulator *frames*, and the matching run here is 50k agent decisions (``--steps`` counts decisions) at repeat 2 and
ratio 512, about 25k updates. Our agent follows the 2024/2025 code (REINFORCE actor, LaProp, RMSNorm, the size
presets of ``config.PRESETS``), for which no DMC proprio scores were published, so the comparison matches the
protocol (repeat, ratio, budget) but not the algorithm or the width. (Earlier versions of this file and of
``docs/dreamerv3.md`` wrongly called the published runs ``size12m``.) Later commits changed the DMC config (repeat 1,
``size1m``, ratio 1024) without new score files. The reference trains from its first steps (``train_fill: 0``;
updates start once the replay holds a batch); here the first 64 decisions are random actions, so training starts
after one 64-step window.

``run`` is resumable: each call continues ``runs/dv3_dmc/<task>_<size>_s<seed>`` from its last checkpoint (every
2500 decisions), and ``--max-minutes`` stops a call after that long (for machines lent in short slots); its curve is
copied to ``benchmarks/results/dv3_dmc/`` after every call. Each run must finish on the machine that started it: it
is resumable with ``run`` on the same machine only, since nothing carries training state (checkpoints, replays)
through git, and only the curves in ``benchmarks/results/`` are committed. A run whose committed curve reaches
``--steps`` is skipped as finished. ``--size size1m`` (the default) runs the same protocol with
the smallest model (the size the reference's current DMC proprio config uses; ~4.5 h per run on one CPU thread beside
one other job, against days for ``size12m``); the report keeps each size in its own column. ``report``
writes ``benchmarks/results/dv3_dmc.md`` and ``dv3_dmc.png`` from whatever exists. Our score is the mean return of
10 evaluation episodes of the deterministic policy every 10k frames; the published one is the training episodes'
score, so small differences are expected, and the report's second table scores our training episodes
(``episodes.jsonl``, copied to ``benchmarks/results/dv3_dmc/episodes/``) the published way; a large gap is a bug to look for (an audit of the port against the
reference after the first finished run is summarised in ``docs/dreamerv3.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from wam.bench.process import raise_interrupt, run_to_end
from wam.bench.grid import has_checkpoint
from wam.io.metrics import read_jsonl

ROOT = Path(__file__).resolve().parent
REFERENCE = ROOT / "reference" / "dreamerv3_dmc_proprio.json"
RESULTS = ROOT / "results" / "dv3_dmc"
RUNS = Path("runs/dv3_dmc")
REPEAT = 2
#: Ablations of our port under the same protocol: name → extra ``wam train`` flags. A run of one is named
#: ``<task>_<size>-<variant>_s<seed>`` and gets its own column in the report.
VARIANTS: dict[str, list[str]] = {
    "noactnorm": ["--dreamerv3.no-action-norm"],  # the action embedding keeps a 1-d action's size (docs/dreamerv3.md)
    # ... and the actor trained by backprop through imagination, as the 2023 code behind the published curves. The norm
    # must go too: it makes a 1-d action's embedding (nearly) independent of its size, so no gradient would pass.
    "noactnorm-backprop": ["--dreamerv3.no-action-norm", "--dreamerv3.actor-grad", "backprop"],
}


def protocol_flags(task: str, seed: int, size: str, variant: str | None, steps: int, out: Path) -> list[str]:
    """``wam train`` flags of the published protocol (see the module docstring) for one task and seed."""
    from wam.agents.dreamerv3.config import PRESETS

    size_flags = [
        x for key, value in PRESETS[size].items() for x in (f"--dreamerv3.{key.replace('_', '-')}", str(value))
    ]
    size_flags += VARIANTS[variant] if variant else []
    return [
        "--agent",
        "dreamerv3",
        "--env",
        f"dmc/{task}",
        "--obs",
        "proprio",
        "--action-repeat",
        str(REPEAT),
        "--steps",
        str(steps),
        "--train-ratio",
        "512",
        "--prefill",
        "64",
        "--eval-every",
        str(10_000 // REPEAT),
        "--eval-episodes",
        "10",
        "--checkpoint-every",
        "2500",
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--no-progress",
        *size_flags,
    ]


def last_step(curve: Path) -> int:
    """The last evaluated decision step of a committed curve (JSONL), or -1 when there is none."""
    steps = [row["step"] for row in read_jsonl(curve)] if curve.is_file() else []
    return int(max(steps, default=-1))


def run_one(task: str, seed: int, size: str, variant: str | None, steps: int, max_minutes: float | None) -> None:
    """Start or continue one run (for at most ``max_minutes``) and copy its evaluation curve to the results."""
    column = f"{size}-{variant}" if variant else size  # the run's column in the report
    out = RUNS / f"{task}_{column}_s{seed}"
    if (out / "final").exists() or last_step(RESULTS / f"{out.name}.jsonl") >= steps:
        # finished (here, or on another machine whose curve was committed): rerunning would only redo it
        print(f"{out.name}: finished, skipped", flush=True)
        return
    if has_checkpoint(out):
        args = ["--resume", str(out)]
    else:
        args = protocol_flags(task, seed, size, variant, steps, out)
    cmd = [sys.executable, "-m", "wam.cli.main", "train", *args]
    print(" ".join(cmd), flush=True)
    try:
        code = run_to_end(cmd, timeout_s=None if max_minutes is None else 60 * max_minutes)
        if code != 0:
            raise subprocess.CalledProcessError(code, cmd)
    except subprocess.TimeoutExpired:  # the run was stopped with a checkpoint at its current step
        print(f"stopped after {max_minutes} min; rerun to continue from the checkpoint", flush=True)
    finally:
        if (out / "eval.jsonl").is_file():
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(out / "eval.jsonl", RESULTS / f"{out.name}.jsonl")
        if (out / "episodes.jsonl").is_file():
            (RESULTS / "episodes").mkdir(parents=True, exist_ok=True)
            shutil.copy(out / "episodes.jsonl", RESULTS / "episodes" / f"{out.name}.jsonl")


def sizes_run(task: str) -> list[str]:
    """The model sizes with at least one result file for ``task`` (``<task>_<size>_s<seed>.jsonl``)."""
    return sorted({path.stem[len(task) + 1 :].rsplit("_s", 1)[0] for path in RESULTS.glob(f"{task}_*_s*.jsonl")})


def ours_at_frames(task: str, size: str) -> dict[int, list[float]]:
    """{frames: [return of each seed evaluated there]} from the results folder (the last row per step wins)."""
    by_frames: dict[int, list[float]] = {}
    for path in sorted(RESULTS.glob(f"{task}_{size}_s*.jsonl")):
        rows = {int(r["env_steps"]): r for r in map(json.loads, path.read_text().splitlines())}
        for steps, row in rows.items():
            by_frames.setdefault(steps * REPEAT, []).append(float(row["eval/return"]))
    return by_frames


def binned_training_scores(episodes: list[dict], borders: np.ndarray) -> dict[int, float]:
    """{frames: mean return of the training episodes that ended in (previous border, frames]}, the published curves'
    binning (the reference's plotting helper averages each seed's episode scores over such bins).

    ``episodes`` are rows of a run's ``episodes.jsonl`` (``step`` = decisions when the episode ended, ``return``,
    ``length``). A bin counts only when the log covers all of it: the log may begin mid-run (a run started before the
    trainer wrote it, then resumed), so from where its first logged episode began, and a run still training may not have
    filled its last bin, so only up to where the next episode (as long as the last one; DMC's are fixed) would end.
    """
    if not episodes:
        return {}
    frames = np.array([r["step"] for r in episodes]) * REPEAT
    returns = np.array([r["return"] for r in episodes], dtype=float)
    logged_from = (episodes[0]["step"] - episodes[0]["length"]) * REPEAT
    logged_to = (episodes[-1]["step"] + episodes[-1]["length"]) * REPEAT  # exclusive: no later episode ends before it
    scores = {}
    for start, stop in zip(borders[:-1], borders[1:]):
        inside = (frames > start) & (frames <= stop)
        if start >= logged_from and stop < logged_to and inside.any():
            scores[int(stop)] = float(returns[inside].mean())
    return scores


def training_at_frames(task: str, size: str, steps: np.ndarray) -> dict[int, list[float]]:
    """{frames: [binned training score of each seed]} from ``RESULTS/episodes/`` (see :func:`binned_training_scores`)."""
    by_frames: dict[int, list[float]] = {}
    borders = np.concatenate([[0], steps])
    for path in sorted((RESULTS / "episodes").glob(f"{task}_{size}_s*.jsonl")):
        for frames, score in binned_training_scores(read_jsonl(path), borders).items():
            by_frames.setdefault(frames, []).append(score)
    return by_frames


def _cell(returns: list[float]) -> str:
    """``mean [min, max] (n=seeds)``, or a dash when there is nothing."""
    if not returns:
        return "–"
    return f"{np.mean(returns):.0f} [{min(returns):.0f}, {max(returns):.0f}] (n={len(returns)})"


def closeness(published: np.ndarray, steps: np.ndarray, ours: dict[int, list[float]]) -> str:
    """One sentence on how close our curve comes to the published one, by a rule fixed before the results.

    ``published`` is (seeds, points) at frames ``steps``; ``ours`` maps frames to our seeds' returns. The rule: at the
    last published point (100k frames) our mean return is *within* the published seeds' [min, max], *above* it, or
    *below* it (a bug to look for); before our run gets there, only how far it has come and how many of its points
    so far fall inside the published range.
    """
    shared = [i for i, frames in enumerate(steps) if ours.get(int(frames))]
    if not shared:
        return "no evaluation yet"
    inside = sum(published[:, i].min() <= np.mean(ours[int(steps[i])]) <= published[:, i].max() for i in shared)
    so_far = f"{inside} of its {len(shared)} points inside the published seeds' range"
    last = len(steps) - 1
    if last not in shared:
        return (
            f"in progress (reached {int(steps[shared[-1]]) // 1000}k of {int(steps[last]) // 1000}k frames); {so_far}"
        )
    mine, low, high = np.mean(ours[int(steps[last])]), published[:, last].min(), published[:, last].max()
    where = "within" if low <= mine <= high else ("above" if mine > high else "below (a bug to look for)")
    return (
        f"at {int(steps[last]) // 1000}k frames {mine:.0f} vs published {published[:, last].mean():.0f} "
        f"[{low:.0f}, {high:.0f}]: **{where}** the published seeds' range; {so_far}"
    )


def report() -> None:
    """Write the comparison table and plot from the reference file and our results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = json.loads(REFERENCE.read_text())
    tasks = sorted(ref["tasks"])
    sizes = sorted({size for task in tasks for size in sizes_run(task)})
    lines = [
        "# DreamerV3 (ours) on DMC proprio vs the published scores",
        "",
        f"Published: {ref['source']}; {ref['protocol']}. Ours: `python benchmarks/dv3_dmc.py run --size SIZE` "
        "(the same repeat, train ratio and budget with the 2024/2025 algorithm at the model size of the column; "
        "the published runs used the 2023 algorithm, see `docs/dreamerv3.md`), "
        "10 deterministic evaluation episodes per point. Cells: mean return [min, max] over seeds (n).",
        "",
        "| task | frames | published | " + " | ".join(f"ours {size}" for size in sizes) + " |",
        "|---|---|---|" + "---|" * len(sizes),
    ]
    close = [
        "",
        "How close (rule fixed before the results: our mean at 100k frames inside the published seeds' "
        "[min, max]; one seed of ours against five published, our deterministic evaluations against their "
        "training episodes):",
        "",
    ]
    training_rows, training_close = [], []
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        steps = np.array(ref["tasks"][task]["steps"])
        published = np.array(list(ref["tasks"][task]["seeds"].values()))  # (seeds, points)
        ours = {size: ours_at_frames(task, size) for size in sizes}
        training = {size: training_at_frames(task, size, steps) for size in sizes}
        for i, frames in enumerate(steps):
            col = published[:, i]
            cells = [_cell(ours[size].get(int(frames), [])) for size in sizes]
            lines.append(f"| {task} | {frames // 1000}k | {_cell(list(col))} | " + " | ".join(cells) + " |")
            cells = [_cell(training[size].get(int(frames), [])) for size in sizes]
            training_rows.append(f"| {task} | {frames // 1000}k | {_cell(list(col))} | " + " | ".join(cells) + " |")
        close += [f"* {task}, {size}: {closeness(published, steps, ours[size])}" for size in sizes if ours[size]]
        training_close += [
            f"* {task}, {size}: {closeness(published, steps, training[size])}" for size in sizes if training[size]
        ]
        for size, scores in training.items():
            if scores:
                ax.plot(
                    sorted(scores), [scores[k] for k in sorted(scores)], linestyle="--", label=f"ours {size}, training"
                )
        ax.plot(steps, published.mean(0), color="k", label="published (mean, min–max)")
        ax.fill_between(steps, published.min(0), published.max(0), color="k", alpha=0.15)
        for path in sorted(RESULTS.glob(f"{task}_*_s*.jsonl")):
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            label = f"ours {path.stem[len(task) + 1 :]}"
            ax.plot([r["env_steps"] * REPEAT for r in rows], [r["eval/return"] for r in rows], marker="o", label=label)
        ax.set_title(task)
        ax.set_xlabel("environment frames")
        ax.set_ylabel("episode return")
        ax.legend(fontsize=8)
    training = [
        "",
        "## Training episodes, scored as the published curves",
        "",
        "The published values are training-episode scores, which the reference's plotting helper averages "
        "per seed over bins of 10k frames, (x − 10k, x]. The same from our runs' `episodes.jsonl` (every "
        "training episode of the stochastic policy, written since 2026-12-05; a run begun before that "
        "counts only from where its log begins). Cells: mean over seeds of each seed's bin mean.",
        "",
        "| task | frames | published | " + " | ".join(f"ours {size}, training" for size in sizes) + " |",
        "|---|---|---|" + "---|" * len(sizes),
        *training_rows,
        "",
        "How close, by the same rule on training episodes:",
        "",
        *(training_close or ["* no complete bin yet"]),
    ]
    (ROOT / "results" / "dv3_dmc.md").write_text("\n".join(lines + close + training) + "\n")
    fig.tight_layout()
    fig.savefig(ROOT / "results" / "dv3_dmc.png", dpi=100)


def main() -> None:
    """CLI: ``run`` (resumable on the same machine) or ``report``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "reacher-easy"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--size",
        default="size1m",
        help="DreamerV3 size preset (none matches the published 2023 runs' 512-unit networks)",
    )
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default=None,
        help="an ablation of our port (its runs get their own report column)",
    )
    parser.add_argument("--steps", type=int, default=50_000, help="agent decisions (50k at repeat 2 = 100k frames)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop each call after this long (resumable)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)  # stop like Ctrl-C: the running training checkpoints first
    try:
        if args.command == "run":
            for seed in args.seeds:
                for task in args.tasks:
                    run_one(task, seed, args.size, args.variant, args.steps, args.max_minutes)
    except KeyboardInterrupt:
        print("stopped; rerun the same command to continue from the checkpoints", flush=True)
    report()


if __name__ == "__main__":
    main()
