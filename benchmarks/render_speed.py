"""What anti-aliasing costs a MuJoCo camera frame, and what turning it off changes in the images.

    python benchmarks/render_speed.py                 # MetaWorld reach, DMC cartpole, PointMaze; 100 steps per case
    python benchmarks/render_speed.py --envs metaworld/reach-v3 --steps 300

For each environment, three cases step the same env with random actions: observations from state only, from 64×64
RGB + depth with MuJoCo's default 4-sample anti-aliasing (what every benchmark suite uses), and the same without it
(``EnvConfig.antialias=False``, ``wam train --no-antialias``). The difference of step times is what rendering costs.
Then the first frames after the same reset are compared between the two rendered cases: the largest RGB difference
(0-255) and whether depth is identical. Single-threaded; other jobs on the machine slow every case down alike, so
compare rows of one run. Appends to ``benchmarks/results/render_speed.jsonl`` and rewrites ``render_speed.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from wam.io.metrics import append_jsonl, read_jsonl

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "render_speed.jsonl"
TABLE = ROOT / "results" / "render_speed.md"
DEFAULT_ENVS = ("metaworld/reach-v3", "dmc/cartpole-swingup", "pointmaze/UMaze")
CASES = {
    "state": dict(obs=("proprio",), antialias=True),
    "rgbd, anti-aliased": dict(obs=("rgb", "depth"), antialias=True),
    "rgbd, no anti-aliasing": dict(obs=("rgb", "depth"), antialias=False),
}


def ms_per_step(env, steps: int, seed: int, observe: Callable[[dict], None] | None = None) -> float:
    """Mean wall-clock milliseconds of ``env.step`` with random actions (resets inside the loop, untimed);
    ``observe``, when given, sees every timed step's observation (outside the timing)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(5):  # warm-up
        env.step(env.action_space.sample())
    total = 0.0
    for _ in range(steps):
        action = env.action_space.sample()
        t0 = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        total += time.perf_counter() - t0
        if observe is not None:
            observe(obs)
        if terminated or truncated:
            env.reset()
    return 1000 * total / steps


def measure(name: str, steps: int, seed: int = 0, image_size: int = 64) -> list[dict]:
    """One row per case of ``CASES`` for environment ``name``; the rendered rows carry the image comparison."""
    from wam.envs import make

    rows, first = [], {}
    for case, kwargs in CASES.items():
        env = make(name, image_size=image_size, seed=seed, **kwargs)
        try:
            obs, _ = env.reset(seed=seed)
            first[case] = obs
            rows.append({"env": name, "case": case, "ms_per_step": ms_per_step(env, steps, seed), "steps": steps})
        finally:
            env.close()
    on, off = first["rgbd, anti-aliased"], first["rgbd, no anti-aliasing"]
    comparison = {
        "rgb_max_diff": int(np.abs(on["rgb"].astype(int) - off["rgb"].astype(int)).max()),
        "rgb_pixels_changed": float(np.mean(np.any(on["rgb"] != off["rgb"], -1))),
        "depth_identical": bool(np.array_equal(on["depth"], off["depth"])),
    }
    for row in rows[1:]:
        row.update(comparison)
    return rows


def write_table(rows: list[dict]) -> None:
    """Markdown of the latest measurement of each (env, case)."""
    latest = {(r["env"], r["case"]): r for r in rows}
    state = {env: r["ms_per_step"] for (env, case), r in latest.items() if case == "state"}
    lines = [
        "# Rendering cost of MuJoCo camera frames, with and without anti-aliasing",
        "",
        "Written by `python benchmarks/render_speed.py` (see its docstring). ms / step: mean `env.step` time with "
        "random actions, one thread; *render* = that minus the state-only step. Image columns compare the first "
        "frames after the same reset. Compare rows of one machine and time only.",
        "",
        "| env | case | ms / step | render ms | max RGB diff | RGB pixels changed | depth identical | load (1 min) | when |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (env, case), r in latest.items():
        render = f"{r['ms_per_step'] - state[env]:.1f}" if case != "state" and env in state else "–"
        image = (
            [str(r["rgb_max_diff"]), f"{r['rgb_pixels_changed']:.0%}", "yes" if r["depth_identical"] else "no"]
            if "rgb_max_diff" in r
            else ["–"] * 3
        )
        lines.append(
            f"| {env} | {case} | {r['ms_per_step']:.1f} | {render} | "
            + " | ".join(image)
            + f" | {r['load_avg_1min']:.2f} | {r['when']} |"
        )
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Measure, append the rows, rewrite the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--steps", type=int, default=100, help="timed env steps per case")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for name in args.envs:
        for row in measure(name, args.steps):
            row.update(load_avg_1min=os.getloadavg()[0], when=when)
            append_jsonl(OUT, row)
            print(row, flush=True)
    write_table(read_jsonl(OUT))


if __name__ == "__main__":
    main()
