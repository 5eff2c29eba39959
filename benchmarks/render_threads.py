"""Does Mesa's software renderer (llvmpipe) render faster with its own worker threads or without them?

    python benchmarks/render_threads.py                      # MetaWorld reach, 64×64 RGB + depth, 150 steps, 3 rounds
    python benchmarks/render_threads.py --env metaworld/drawer-close-v3 --steps 300 --rounds 5

Without a GPU, MuJoCo's EGL context runs on llvmpipe, which by default starts one rendering thread per CPU core.
``LP_NUM_THREADS`` sets that count (0: render in the calling thread); Mesa reads it when the context is made, so each
setting is measured in its own process. Every process steps the same env with the same seeded random actions and
hashes every RGB and depth frame, so the table also shows whether the setting changes the observations. Settings are
interleaved over rounds (medians shown), so other jobs on the machine slow every setting down alike.
Appends to ``benchmarks/results/render_threads.jsonl`` and rewrites ``render_threads.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from wam.io.metrics import append_jsonl, read_jsonl

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "render_threads.jsonl"
TABLE = ROOT / "results" / "render_threads.md"
SETTINGS = ("default", "0", "1", "2")


def child(env_name: str, steps: int, seed: int = 0) -> dict:
    """Step ``env_name`` (64×64 RGB + depth) ``steps`` times: mean ms per step and an MD5 of every frame."""
    # render_speed is the sibling script: its folder is on the path when this one runs
    from render_speed import ms_per_step

    from wam.envs import make

    env = make(env_name, obs=("rgb", "depth"), image_size=64, seed=seed)
    digest = hashlib.md5()

    def observe(obs: dict) -> None:
        digest.update(obs["rgb"].tobytes())
        digest.update(obs["depth"].tobytes())

    try:
        ms = ms_per_step(env, steps, seed, observe=observe)
    finally:
        env.close()
    return {"ms_per_step": ms, "frames_md5": digest.hexdigest()}


def measure(env_name: str, steps: int, setting: str) -> dict:
    """Run :func:`child` in a fresh process with ``LP_NUM_THREADS`` = ``setting`` (unset for ``default``)."""
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env.pop("LP_NUM_THREADS", None)
    if setting != "default":
        env["LP_NUM_THREADS"] = setting
    cmd = [sys.executable, __file__, "--child", "--env", env_name, "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_table(rows: list[dict]) -> None:
    """Markdown of the latest measurement of each (env, setting)."""
    latest = {(r["env"], r["setting"]): r for r in rows}
    lines = ["# llvmpipe rendering threads (`LP_NUM_THREADS`) and the cost of a 64×64 RGB + depth step", "",
             "Written by `python benchmarks/render_threads.py` (see its docstring). ms / step: median over rounds of "
             "the mean `env.step` time; *same frames*: every RGB and depth frame hashes the same as with the default. "
             "Compare rows of one machine and time only.", "",
             "| env | LP_NUM_THREADS | ms / step (median) | rounds | same frames as default | CPUs | load (1 min) | when |",
             "|---|---|---|---|---|---|---|---|"]
    for (env, setting), r in latest.items():
        default = latest.get((env, "default"), {}).get("frames_md5")
        same = "–" if default is None else ("yes" if r["frames_md5"] == default else "**no**")
        lines.append(f"| {env} | {setting} | {r['ms_per_step']:.1f} | {r['rounds']} | {same} | {r['cpus']} | "
                     f"{r['load_avg_1min']:.2f} | {r['when']} |")
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Measure every setting (interleaved over rounds), append the rows, rewrite the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="metaworld/reach-v3")
    parser.add_argument("--steps", type=int, default=150, help="timed env steps per process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.env, args.steps)))
        return
    times: dict[str, list[float]] = {s: [] for s in SETTINGS}
    digests: dict[str, set[str]] = {s: set() for s in SETTINGS}
    for _ in range(args.rounds):
        for setting in SETTINGS:
            result = measure(args.env, args.steps, setting)
            times[setting].append(result["ms_per_step"])
            digests[setting].add(result["frames_md5"])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for setting in SETTINGS:
        # a setting whose frames differ between its own rounds is reported with a marker digest
        digest = digests[setting].pop() if len(digests[setting]) == 1 else "varies between rounds"
        append_jsonl(OUT, {"env": args.env, "setting": setting, "ms_per_step": float(np.median(times[setting])),
                           "rounds": args.rounds, "steps": args.steps, "frames_md5": digest, "cpus": os.cpu_count(),
                           "load_avg_1min": os.getloadavg()[0], "when": when})
    write_table(read_jsonl(OUT))
    print(TABLE.read_text())


if __name__ == "__main__":
    main()
