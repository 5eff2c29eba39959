"""Diagnostic (issue: baselines): how the actions of a DreamerV3 DMC run evolve, read from its replay.

    python benchmarks/dv3_actions.py                     # every run under runs/dv3_dmc/ with a saved replay
    python benchmarks/dv3_actions.py --runs reacher-easy_size1m-noactnorm-backprop_s0

A policy whose action mean drifts to a bound of the box (|a| → 1) stops exploring, and an actor trained by
backpropagating returns through ``tanh`` then gets almost no gradient back out of the bound. This script measures
that from what the run really did: it reads the replay a run's checkpoint holds (every transition since its first
step; it exists only on the machine that trained the run). A replay row holds an observation, the action
taken from it and the reward of the step that led to it, so every row but an episode's last (``is_last``: no action
follows) is one decision, whose reward is on the next row. The decisions are binned by environment frames like the
published curves, (x − 10k, x]. Per bin and action dimension: the mean action, the mean |a|, and the share of
decisions with |a| > 0.95 (the policy at a bound); per bin the reward per decision (a decision whose next row was
never written, the last one before a resumption reset the environment, has none).
Writes ``benchmarks/results/dv3_dmc_actions.{jsonl,md,png}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RUNS = Path("runs/dv3_dmc")
RESULTS = ROOT / "results"
REPEAT = 2  # action repeat of the DMC protocol (benchmarks/dv3_dmc.py): one decision = 2 frames
BIN_FRAMES = 10_000
BOUND = 0.95


def saved_replay(run: Path) -> Path | None:
    """The replay of ``run``'s latest save (``final/`` once finished, else ``checkpoint/``), or None."""
    for where in ("final", "checkpoint"):
        path = run / where / "replay" / "replay.safetensors"
        if path.is_file():
            return path
    return None


def replay_file(run: Path) -> Path:
    """:func:`saved_replay`, with a clear error if ``run`` has none."""
    path = saved_replay(run)
    if path is None:
        raise FileNotFoundError(f"{run} holds no saved replay (checkpoint/replay/ or final/replay/); train it first "
                                f"on this machine (python benchmarks/dv3_dmc.py run ...)")
    return path


def action_bins(actions: np.ndarray, rewards: np.ndarray, is_first: np.ndarray, is_last: np.ndarray) -> list[dict]:
    """Statistics per 10k-frame bin of one environment's replay rows. → one dict per bin that holds decisions.

    ``actions`` (N, A), ``rewards``, ``is_first``, ``is_last`` (N,): rows in the order they were written (see the
    module docstring). A bin is reported even when the run has only partly filled it (``decisions`` says how many).
    """
    if actions.ndim != 2 or not len(actions) == len(rewards) == len(is_first) == len(is_last):
        raise ValueError(f"expected actions (N, A) with rewards, is_first and is_last (N,), got {actions.shape}, "
                         f"{rewards.shape}, {is_first.shape}, {is_last.shape}")
    is_first, keep = is_first.astype(bool), ~is_last.astype(bool)
    # the reward of row i's decision arrives on row i + 1, unless that row begins a new episode (or was never written)
    follows = np.append(~is_first[1:], False)
    next_reward = np.where(follows, np.append(rewards[1:], 0.0), np.nan).astype(np.float64)
    actions, next_reward = actions[keep].astype(np.float64), next_reward[keep]
    frames = (np.arange(len(actions)) + 1) * REPEAT
    out = []
    for stop in range(BIN_FRAMES, int(frames[-1]) + BIN_FRAMES if len(frames) else 0, BIN_FRAMES):
        inside = (frames > stop - BIN_FRAMES) & (frames <= stop)
        a, r = actions[inside], next_reward[inside]
        r = r[~np.isnan(r)]
        out.append({"frames": stop, "decisions": int(inside.sum()), "mean": a.mean(0).round(3).tolist(),
                    "mean_abs": np.abs(a).mean(0).round(3).tolist(),
                    "at_bound": (np.abs(a) > BOUND).mean(0).round(3).tolist(),
                    "reward_per_decision": round(float(r.mean()), 4) if len(r) else None})
    return out


def measure(run: Path) -> list[dict]:
    """Rows for ``run`` (every environment of its replay, in turn; the DMC protocol has one)."""
    from safetensors.numpy import load_file

    path = replay_file(run)
    arrays = load_file(str(path))
    meta = json.loads((path.parent / "replay.json").read_text())
    rows = []
    for env, count in enumerate(meta["count"]):
        if count >= meta["per_env"]:  # a full ring has overwritten its oldest rows: write order and step count are lost
            raise ValueError(f"{path}: env {env}'s replay ring is full ({count} rows), so its rows are no longer in "
                             f"the order they were written; this script reads runs shorter than the replay capacity")
        columns = (arrays[k][env, :count] for k in ("action", "reward", "is_first", "is_last"))
        rows += [{"run": run.name, "env": env, **row} for row in action_bins(*columns)]
    return rows


def fmt(values: list[float]) -> str:
    """A per-dimension list as ``a / b``."""
    return " / ".join(f"{v:.2f}" for v in values)


def reward_cell(value: float | None) -> str:
    """A reward per decision for the table (``–`` where a bin has none)."""
    return "–" if value is None else f"{value:.3f}"


def write(rows: list[dict]) -> None:
    """JSONL, a Markdown table and a plot of the share of decisions at a bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dv3_dmc_actions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = ["# Actions of the DreamerV3 DMC runs, from their replay", "",
             "`python benchmarks/dv3_actions.py` (method in its docstring). Per 10k-frame bin (x − 10k, x]; "
             f"per action dimension (`d0 / d1 / …`): mean action, mean |a|, share of decisions with |a| > {BOUND}.",
             "", "| run | frames | decisions | mean a | mean abs(a) | at a bound | reward / decision |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['frames'] // 1000}k | {r['decisions']} | {fmt(r['mean'])} | {fmt(r['mean_abs'])} "
              f"| {fmt(r['at_bound'])} | {reward_cell(r['reward_per_decision'])} |" for r in rows]
    (RESULTS / "dv3_dmc_actions.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == name]
        for d in range(len(mine[0]["at_bound"])):
            ax.plot([r["frames"] for r in mine], [r["at_bound"][d] for r in mine], marker="o", label=f"{name} a[{d}]")
    ax.set(xlabel="environment frames", ylabel=f"share of decisions with |a| > {BOUND}", ylim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "dv3_dmc_actions.png", dpi=120)
    plt.close(fig)


def main() -> None:
    """Measure the named runs (default: every run with a saved replay) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", help="run folder names under runs/dv3_dmc/ (default: all with a replay)")
    args = parser.parse_args()
    runs = [RUNS / n for n in args.runs] if args.runs else sorted(p for p in RUNS.glob("*") if saved_replay(p))
    if not runs:
        raise SystemExit(f"no run with a saved replay under {RUNS}; train one with python benchmarks/dv3_dmc.py run")
    rows = [row for run in runs for row in measure(run)]
    write(rows)
    print((RESULTS / "dv3_dmc_actions.md").read_text())


if __name__ == "__main__":
    main()
