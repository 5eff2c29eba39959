"""Environment throughput: env steps per second for each suite, state vs 64×64 RGB-D, single vs vectorised.

    python benchmarks/env_speed.py            # ~300 timed steps per case
    python benchmarks/env_speed.py --quick    # ~100 timed steps per case

Random actions, a short untimed warm-up, episodes reset inside the timed loop (as in training). A vectorised
case is ``wam.envs.make_vector(cfg, num_envs)`` (one worker process per env) and counts steps of all envs.
Suites whose simulator or module is missing are recorded as skipped. Writes
``benchmarks/results/env_speed.jsonl`` (first row: the machine) and ``benchmarks/results/env_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DEFAULT_ENVS = ("metaworld/reach-v3", "panda/stack", "dmc/cartpole-swingup", "miniworld/OneRoom", "pointmaze/UMaze")
OBS_MODES = ("state", "rgbd")
_CHUNKS = 5
_PACKAGES = (
    "numpy",
    "torch",
    "gymnasium",
    "mujoco",
    "metaworld",
    "gymnasium-robotics",
    "miniworld",
    "panda-gym",
    "dm-control",
)


@dataclass
class Case:
    """One measurement: an environment, an observation mode and a number of parallel envs."""

    env: str
    mode: str
    """``state`` (the suite's state vector, or proprio where it has none) or ``rgbd`` (rgb + depth)."""
    obs: tuple[str, ...]
    num_envs: int
    """1: a single env in this process; >1: ``make_vector`` with that many worker processes."""
    image_size: int
    status: str = "ok"
    """``ok``, ``skipped`` (simulator or suite module missing) or ``error``."""
    note: str = ""
    build_s: float = 0.0
    """Seconds to build the env(s) and run the first reset."""
    steps: int = 0
    seconds: float = 0.0
    steps_per_s: float = 0.0
    """Timed steps / timed seconds."""
    best_steps_per_s: float = 0.0
    """Fastest of the equal chunks the timed steps are split into: less sensitive to other jobs on the machine."""


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _gl_renderer() -> str:
    """The OpenGL renderer MuJoCo gets here (e.g. Mesa llvmpipe = software rendering on the CPU)."""
    try:
        import mujoco
        from OpenGL import GL

        ctx = mujoco.GLContext(8, 8)
        ctx.make_current()
        try:
            return f"{GL.glGetString(GL.GL_RENDERER).decode()}, OpenGL {GL.glGetString(GL.GL_VERSION).decode()}"
        finally:
            ctx.free()
    except Exception as e:  # no GL at all is a fact worth reporting, not a reason to stop
        return f"unavailable ({type(e).__name__}: {e})"


def machine() -> dict:
    """CPU, memory, library versions and rendering backend of this machine."""
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    if Path("/proc/meminfo").exists():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
    versions = {name: _version(name) for name in _PACKAGES}
    return {
        "type": "machine",
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": ram_gib,
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "MUJOCO_GL": os.environ.get("MUJOCO_GL"),
        "gl_renderer": _gl_renderer(),
        "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def available(env: str) -> str:
    """Empty when ``env`` can be built here, else why not (missing simulator / suite module / task)."""
    from wam.envs import MissingSimulatorError
    from wam.envs.registry import check_task, get_suite

    suite = env.split("/", 1)[0]
    try:
        check_task(get_suite(suite), env.split("/", 1)[1])
    except MissingSimulatorError as e:
        return f"simulator missing: {e}"
    except ModuleNotFoundError as e:
        return f"suite module missing: {e}"
    except (ImportError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return ""


def _obs_for(env: str, mode: str) -> tuple[str, ...]:
    from wam.envs.registry import get_suite

    if mode == "rgbd":
        return ("rgb", "depth")
    return ("state",) if "state" in get_suite(env.split("/", 1)[0]).obs_keys else ("proprio",)


def run_case(case: Case, steps: int, warmup: int, seed: int) -> Case:
    """Build the env(s) of ``case``, warm up, then time ``steps`` env steps; fills in the timing fields."""
    from wam.envs import EnvConfig, make_from_config, make_vector

    cfg = EnvConfig(name=case.env, obs=case.obs, image_size=case.image_size, seed=seed)
    start = time.perf_counter()
    if case.num_envs == 1:
        env = make_from_config(cfg)  # already reset once
    else:
        env = make_vector(cfg, num_envs=case.num_envs)
        env.reset(seed=seed)
    case.build_s = time.perf_counter() - start
    env.action_space.seed(seed)
    iterations = max(_CHUNKS, steps // case.num_envs)
    chunk = iterations // _CHUNKS
    marks = []  # perf_counter at the start of each chunk, and at the end
    try:
        for i in range(warmup + chunk * _CHUNKS + 1):
            if i >= warmup and (i - warmup) % chunk == 0:
                marks.append(time.perf_counter())
                if len(marks) == _CHUNKS + 1:
                    break
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if case.num_envs == 1 and (terminated or truncated):
                env.reset()  # vector envs reset themselves
    finally:
        env.close()
    case.steps = chunk * _CHUNKS * case.num_envs
    case.seconds = marks[-1] - marks[0]
    case.steps_per_s = case.steps / case.seconds
    case.best_steps_per_s = chunk * case.num_envs / min(b - a for a, b in zip(marks, marks[1:]))
    return case


def to_markdown(info: dict, cases: list[Case], args: argparse.Namespace) -> str:
    """A Markdown report: machine table, then one row per case."""
    v = info["versions"]
    lines = [
        "# Environment speed",
        "",
        f"`python benchmarks/env_speed.py{' --quick' if args.quick else ''}` — {info['date']}. Random actions, "
        f"{args.warmup} warm-up steps, then {args.steps} timed env steps per case (episode resets included). "
        f"Vectorised = `make_vector(cfg, num_envs={args.num_envs})`, one worker process per env; its steps/s "
        "counts the steps of all envs. `state` is the suite's state vector (proprio for MiniWorld, which has none); "
        f"`rgbd` is {args.image_size}×{args.image_size} RGB + depth.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {info['cpu']} |",
        f"| cores | {info['logical_cores']} logical, {info['usable_cores']} usable by this process |",
        f"| RAM | {info['ram_gib']} GiB |",
        f"| load average (1 min) at start | {info['load_avg_1m_at_start']} (machine shared with other jobs) |",
        f"| python / torch / mujoco | {info['python']} / {v.get('torch')} / {v.get('mujoco')} |",
        f"| gymnasium / metaworld / gymnasium-robotics / miniworld | {v.get('gymnasium')} / {v.get('metaworld')} / "
        f"{v.get('gymnasium-robotics')} / {v.get('miniworld')} |",
        f"| MUJOCO_GL / PYOPENGL_PLATFORM | {info['MUJOCO_GL']} / {info['PYOPENGL_PLATFORM']} |",
        f"| OpenGL renderer (MuJoCo) | {info['gl_renderer']} |",
        f"| load average (1 min) at end | {info.get('load_avg_1m_at_end')} |",
        "",
        f"steps/s = timed steps / timed seconds; best = fastest of {_CHUNKS} equal chunks of the timed steps (less "
        "sensitive to the other jobs sharing this machine). Build = making the env(s) and the first reset.",
        "",
        "| env | obs | envs | steps/s | best steps/s | build (s) | timed steps | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in cases:
        if c.status == "ok":
            lines.append(
                f"| {c.env} | {c.mode} | {c.num_envs} | {c.steps_per_s:.0f} | {c.best_steps_per_s:.0f} | {c.build_s:.1f} "
                f"| {c.steps} | {c.note} |"
            )
        else:
            note = c.note.replace("|", "/").splitlines()[0][:120]
            lines.append(f"| {c.env} | {c.mode} | {c.num_envs} | — | — | — | — | {c.status}: {note} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 timed steps and 5 warm-up steps per case")
    p.add_argument("--steps", type=int, default=None, help="timed env steps per case (default 300, 100 with --quick)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 20, 5 with --quick)")
    p.add_argument("--num-envs", type=int, default=2, help="envs in the vectorised cases")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="<suite>/<task> names to measure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results", help="output folder")
    args = p.parse_args(argv)
    args.steps = args.steps or (100 if args.quick else 300)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 20)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every case, print a line per case, write the JSONL and Markdown results."""
    args = parse_args(argv)
    from wam.envs.rendering import configure_headless_gl

    configure_headless_gl()
    info = machine()
    cases: list[Case] = []
    for env in args.envs:
        why_not = available(env)
        for mode in OBS_MODES:
            for num_envs in (1, args.num_envs):
                obs = _obs_for(env, mode) if not why_not else ()
                case = Case(env, mode, obs, num_envs, args.image_size)
                if why_not:
                    case.status, case.note = "skipped", why_not
                else:
                    try:
                        run_case(case, args.steps, args.warmup, args.seed)
                    except Exception as e:  # one broken suite must not stop the benchmark
                        case.status, case.note = "error", f"{type(e).__name__}: {e}"
                cases.append(case)
                speed = (
                    f"{case.steps_per_s:8.0f} steps/s (build {case.build_s:.1f} s)"
                    if case.status == "ok"
                    else case.status
                )
                print(f"{env:24s} {mode:5s} x{num_envs}  {speed}  {case.note[:100]}", flush=True)
    info["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "env_speed.jsonl", "w") as f:
        f.write(json.dumps(info) + "\n")
        for c in cases:
            f.write(json.dumps({"type": "result", **asdict(c)}) + "\n")
    (args.out / "env_speed.md").write_text(to_markdown(info, cases, args))
    print(f"wrote {args.out / 'env_speed.jsonl'} and {args.out / 'env_speed.md'}")
    return 0 if all(c.status != "error" for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
