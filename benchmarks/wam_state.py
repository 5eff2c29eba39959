"""Benchmark (issue: WAM core): WAM on MetaWorld tasks, several seeds, eval curves + throughput.

    python benchmarks/wam_state.py run --tasks reach-v3 button-press-topdown-v3 --seeds 0 1 2 --steps 100000
    python benchmarks/wam_state.py run --from-suite quick-state --tasks reach-v3 --seeds 0 1 2 --steps 100000
    python benchmarks/wam_state.py summarize

Each run is a normal ``wam train`` in ``runs/bench_state/<agent>_<task>_s<seed>`` (resumed if interrupted, extended
with ``--extend-to`` when ``--steps`` is above its budget); its evaluation curve is copied to
``benchmarks/results/wam_state/<agent>_<task>_s<seed>.jsonl`` after every run.
``--from-suite SUITE`` starts a run that does not exist yet from a copy of the same agent/task/seed's finished run of
``wam bench SUITE`` (in ``runs/bench/SUITE``) instead of from scratch, so a 50k grid run is extended to 100k and not
repeated. Such a run keeps the suite's flags, including its replay capacity (50k rows in ``quick-state``; a 500-step
episode takes 501 rows, so from ≈49.9k env steps on the replay drops its oldest steps); ``SEEDED_FROM`` in the run
folder and the throughput file record it.
``summarize`` writes ``benchmarks/results/wam_state.md`` and ``wam_state.png`` from whatever runs exist.
Several ``run`` commands may share the run folder: a run that another one is training (``<run>.lock`` names a live
process) is skipped, so two queues never train the same run at once.
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

from wam.bench.aggregate import milestone_value
from wam.bench.process import raise_interrupt, start_run, stop_run
from wam.bench.process import running_pid

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "wam_state"
RUNS = Path("runs/bench_state")
MILESTONES = (10_000, 20_000, 30_000, 50_000, 100_000)
EVAL_EVERY = 10_000
#: Agent label -> `wam train` flags.
AGENT_FLAGS = {
    "wam": ["--agent", "wam"],
    "wam-decoupled": ["--agent", "wam", "--coupling", "decoupled"],
    "wam-pathwise": ["--agent", "wam", "--wam.actor-grad", "pathwise"],
    "dreamerv3": ["--agent", "dreamerv3"],
}


def seed_from_suite(suite: str, agent: str, task: str, seed: int, out: Path) -> bool:
    """Copy the finished ``wam bench SUITE`` run of this agent/task/seed to ``out`` (which must not exist yet);
    False (with a message) when that run is not finished."""
    source = Path("runs/bench") / suite / agent / f"metaworld-{task}" / f"seed{seed}"
    if not (source / "final").is_dir():
        print(
            f"skip {agent} {task} seed {seed}: --from-suite {suite} needs {source} finished; run `wam bench {suite} "
            f"--agents {agent} --tasks metaworld-{task} --seeds {seed + 1}` first, or drop --from-suite",
            flush=True,
        )
        return False
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("*.lock", "tb"))
    (out / "SEEDED_FROM").write_text(f"{source}\n")
    return True


def run_one(
    agent: str,
    task: str,
    seed: int,
    steps: int,
    train_ratio: float,
    extra: list[str],
    obs: list[str],
    from_suite: str | None = None,
) -> None:
    """Train (or resume, or extend) one run and copy its evaluation curve into the results folder.

    Runs with observations other than ``state`` are labelled ``<agent>-<obs keys joined by +>``.
    """
    label = agent if obs == ["state"] else f"{agent}-{'+'.join(obs)}"
    out = RUNS / f"{label}_{task}_s{seed}"
    lock = out.with_suffix(".lock")
    pid = running_pid(lock)
    if pid is not None:
        print(f"skip {out.name}: being trained by process {pid} ({lock})", flush=True)
        return
    if from_suite and not out.exists() and not seed_from_suite(from_suite, agent, task, seed, out):
        return
    target = RESULTS / f"{label}_{task}_s{seed}.jsonl"
    if target.is_file() and any(json.loads(line)["env_steps"] >= steps for line in target.read_text().splitlines()):
        print(f"skip {target.name}: complete")
        record_throughput(label, task, seed, out)
        return
    cmd = [sys.executable, "-m", "wam.cli.main", "train"]
    if (out / "checkpoint" / "COMPLETE").is_file():
        cmd += ["--resume", str(out)]
        if json.loads((out / "config.json").read_text())["train"]["steps"] < steps:
            cmd += ["--extend-to", str(steps)]
    else:
        cmd += [
            *AGENT_FLAGS[agent],
            "--env",
            f"metaworld/{task}",
            "--obs",
            *obs,
            "--steps",
            str(steps),
            "--seed",
            str(seed),
            "--train-ratio",
            str(train_ratio),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    print(" ".join(cmd), flush=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    proc = start_run(cmd)
    lock.write_text(f"{proc.pid}\n")
    try:
        if proc.wait() != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run writes a checkpoint, then stops (resumed next time)
        stop_run(proc)
        raise
    finally:
        lock.unlink(missing_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "eval.jsonl", target)
    record_throughput(label, task, seed, out)


def record_throughput(agent: str, task: str, seed: int, out: Path) -> None:
    """Write throughput, memory, wall-clock and act() latency of a finished run (once)."""
    path = RESULTS / f"{agent}_{task}_s{seed}.throughput.json"
    if (path.is_file() and "act_ms_p50" in json.loads(path.read_text())) or not (out / "final").is_dir():
        return
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keep = ("charts/env_steps_per_s", "charts/updates_per_s", "charts/peak_memory_mb", "charts/updates")
    throughput = {k: metrics[-1].get(k) for k in keep}
    throughput["wall_clock_s"] = json.loads((out / "checkpoint" / "counters.json").read_text())["wall_time"]
    throughput["replay_capacity"] = json.loads((out / "config.json").read_text())["train"]["replay_capacity"]
    if (out / "SEEDED_FROM").is_file():
        throughput["seeded_from"] = (out / "SEEDED_FROM").read_text().strip()
    throughput.update(measure_latency(out))
    path.write_text(json.dumps(throughput, indent=2))


def measure_latency(run_dir: Path) -> dict[str, float]:
    """act() latency (p50/p95 ms, 1 thread) of a finished run's final agent on its own environment."""
    from wam.agents.registry import load_agent
    from wam.envs import make_vector
    from wam.evaluation.latency import act_latency
    from wam.io.pretrained import config_from_dict
    from wam.training.config import TrainConfig

    cfg = config_from_dict(TrainConfig, json.loads((run_dir / "config.json").read_text())["train"])
    env = make_vector(cfg.env_config(), 1, asynchronous=False)
    try:
        return act_latency(load_agent(run_dir / "final", device="cpu"), env)
    finally:
        env.close()


def load_curves() -> dict[tuple[str, str], list[list[dict]]]:
    """{(agent, task): [eval curve of each seed]} from the results folder."""
    curves: dict[tuple[str, str], list[list[dict]]] = {}
    for path in sorted(RESULTS.glob("*.jsonl")):
        agent, rest = path.stem.split("_", 1)
        task = rest.rsplit("_s", 1)[0]
        curves.setdefault((agent, task), []).append([json.loads(line) for line in path.read_text().splitlines()])
    return curves


def seeded_note(records: list[dict]) -> list[str]:
    """Markdown lines saying which runs continued a finished ``wam bench`` run, grouped by suite folder and capacity.

    ``records`` are throughput records with a ``name`` (``<agent>_<task>_s<seed>``); a run whose source folder is not
    ``<suite folder>/<agent>/metaworld-<task>/seed<seed>`` is listed with its source spelled out.
    """
    groups: dict[tuple[str, int], list[str]] = {}
    for record in records:
        if "seeded_from" not in record:
            continue
        source = Path(record["seeded_from"])
        agent, rest = record["name"].split("_", 1)
        task, seed = rest.rsplit("_s", 1)
        usual = source.parts[-3:] == (agent, f"metaworld-{task}", f"seed{seed}")
        folder = str(source.parents[2]) if usual else str(source)
        groups.setdefault((folder, record["replay_capacity"]), []).append(f"`{record['name']}`")
    if not groups:
        return []
    parts = [
        f"from `{folder}` ({', '.join(names)}), replay capacity {capacity:,} rows, so the oldest rows are dropped "
        f"from ≈{capacity * 500 // 501:,} env steps on"
        for (folder, capacity), names in sorted(groups.items())
    ]
    return [
        "",
        "Runs continued from a finished `wam bench` run of the same agent, task and seed (`--from-suite`; up to "
        "that run's budget the curve is that run's; a 500-step episode takes 501 replay rows): "
        + "; ".join(parts)
        + ".",
    ]


def summarize() -> None:
    """Write the Markdown table and the PNG plot from the results folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = load_curves()
    lines = [
        "# WAM on MetaWorld",
        "",
        "Agents without a suffix observe `state`; `-proprio+rgb+depth` runs see no privileged state. "
        "Success rate (deterministic policy, 10 episodes, any-step success) at "
        "each env-step milestone: mean over seeds (n = seeds that reached it). Produced by `benchmarks/wam_state.py`.",
        "",
        "| agent | task | "
        + " | ".join(f"{m // 1000}k" for m in MILESTONES)
        + " | env steps/s | updates/s | wall-clock s | peak MiB | act() ms p50 / p95 |",
        "|---|---|" + "---|" * (len(MILESTONES) + 5),
    ]
    for (agent, task), runs in sorted(curves.items()):
        cells = []
        for m in MILESTONES:
            vals = [v for v in (milestone_value(c, m, EVAL_EVERY) for c in runs) if v is not None]
            cells.append(f"{np.mean(vals):.0%} (n={len(vals)})" if vals else "–")
        thr = [json.loads(p.read_text()) for p in RESULTS.glob(f"{agent}_{task}_s*.throughput.json")]

        def mean_of(key: str, fmt: str) -> str:
            values = [t[key] for t in thr if t.get(key) is not None]
            return format(float(np.mean(values)), fmt) if values else "–"

        lines.append(
            f"| {agent} | {task} | " + " | ".join(cells) + f" | {mean_of('charts/env_steps_per_s', '.1f')} | "
            f"{mean_of('charts/updates_per_s', '.2f')} | {mean_of('wall_clock_s', '.0f')} | {mean_of('charts/peak_memory_mb', '.0f')} | "
            f"{mean_of('act_ms_p50', '.1f')} / {mean_of('act_ms_p95', '.1f')} |"
        )
    lines += seeded_note(
        [
            json.loads(path.read_text()) | {"name": path.name.removesuffix(".throughput.json")}
            for path in sorted(RESULTS.glob("*.throughput.json"))
        ]
    )
    (ROOT / "results" / "wam_state.md").write_text("\n".join(lines) + "\n")
    tasks = sorted({t for _, t in curves})
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (agent, t), runs in sorted(curves.items()):
            if t != task:
                continue
            for i, c in enumerate(runs):
                ax.plot(
                    [r["env_steps"] for r in c],
                    [r["eval/success"] for r in c],
                    alpha=0.8,
                    label=agent if i == 0 else None,
                )
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.05, 1.05)
        ax.legend()
    fig.tight_layout()
    fig.savefig(ROOT / "results" / "wam_state.png", dpi=100)


def main() -> None:
    """CLI: ``run`` a grid or ``summarize`` the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "summarize"])
    parser.add_argument("--agents", nargs="+", default=["wam"], choices=sorted(AGENT_FLAGS))
    parser.add_argument("--tasks", nargs="+", default=["reach-v3", "button-press-topdown-v3"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--train-ratio", type=float, default=16.0)
    parser.add_argument("--obs", nargs="+", default=["state"], help="observation keys, e.g. proprio rgb depth")
    parser.add_argument("--from-suite", default=None, help="start new runs from this `wam bench` suite's finished runs")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further flags for wam train")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)  # stop like Ctrl-C: the running training checkpoints first
    if args.command == "run":
        try:
            for seed in args.seeds:
                for task in args.tasks:
                    for agent in args.agents:
                        run_one(agent, task, seed, args.steps, args.train_ratio, args.extra, args.obs, args.from_suite)
                        summarize()
        except KeyboardInterrupt:
            summarize()
            raise SystemExit(
                "wam_state: interrupted; the run in progress wrote a checkpoint and resumes when you run "
                "the same command again"
            ) from None
    summarize()


if __name__ == "__main__":
    main()
