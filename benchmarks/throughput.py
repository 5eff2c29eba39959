"""Throughput of the compared agents, measured in one process on one machine, interleaved (issue: bench).

The per-run throughput records of ``wam bench`` come from whichever machine trained each run; machines here differ by
2–4× in speed, so their means do not compare agents. This script measures every agent of a suite on one task in one
process, built exactly as the suite's grid builds it (``wam train`` flags from the suite file), in ``--rounds``
rounds whose agent order rotates, so a change in machine load hits every agent alike. Per agent and round:

* env steps/s: random actions, each step stored in the replay as in training;
* ``act()`` latency (mean, p50, p95 ms) on real observations, one environment;
* seconds per update on replay batches of those real transitions (the agent's own batch size and sequence length).

From the medians over rounds it derives updates per 100k env steps at the agent's train ratio in the suite
(100k × ratio / (batch × sequence length)) and the wall-clock of 100k env steps: training alone
(100k × (1 / env rate + mean act) + updates × update time), and with the suite's evaluations added
(episodes of deterministic acting every ``eval_every`` steps). Single-threaded, as the grid runs.

    python benchmarks/throughput.py quick-state --task metaworld-reach-v3
    python benchmarks/throughput.py quick-pixels --task metaworld-reach-v3 --updates 3 --env-steps 600

``--env-steps`` must exceed the episode length (500 on MetaWorld): the evaluation cost is sized from the episodes
that end while filling, and every round starts from a reset, so the run stops after the first round if none ended.

Appends rows to ``benchmarks/results/throughput.jsonl`` and rewrites ``benchmarks/results/throughput.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from wam.bench.grid import expand_grid, train_command
from wam.bench.suite import load_suite
from wam.evaluation.latency import act_latency
from wam.data.replay import replay_row
from wam.training.online import Trainer

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"  # also where `wam bench` keeps each run's throughput record
OUT = RESULTS / "throughput.jsonl"
TABLE = RESULTS / "throughput.md"


def build_trainer(suite, agent: str, task: str, out: Path, device: str, capacity: int) -> Trainer:
    """A :class:`Trainer` configured by the suite's own ``wam train`` flags for (agent, task, seed 0)."""
    import tyro

    from wam.cli.train import TrainArgs

    run = next(r for r in expand_grid(suite, seeds=1, agents=(agent,), tasks=(task,)))
    argv = train_command(suite, run, out)
    cfg = tyro.cli(TrainArgs, args=argv[argv.index("train") + 1 :]).to_config()
    return Trainer(replace(cfg, out=str(out), device=device, replay_capacity=capacity, threads=1, progress=False))


def fill(trainer: Trainer, steps: int) -> tuple[float, list[int]]:
    """Step the training env with random actions for ``steps`` steps, storing each as training does.

    Returns env steps/s and the lengths of the episodes that ended (to size the evaluations).
    """
    envs, n = trainer.envs, trainer.cfg.num_envs
    obs, _ = envs.reset(seed=int(np.random.randint(1 << 30)))
    is_first, is_last, is_terminal = np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    reward = np.zeros(n, np.float32)
    length, lengths = np.zeros(n, int), []
    t0 = time.perf_counter()
    for _ in range(steps):
        action = np.stack([envs.single_action_space.sample() for _ in range(n)])
        trainer.replay.add(replay_row(obs, action, reward, is_first, is_last, is_terminal))
        obs, r, terminated, truncated, _ = envs.step(action)
        done = terminated | truncated
        length += ~is_last
        lengths += [int(x) for x in length[done & ~is_last]]
        length[is_last] = 0
        reward = np.asarray(r, np.float32)
        is_first, is_last, is_terminal = is_last.copy(), done, np.asarray(terminated, bool)
    return steps * n / (time.perf_counter() - t0), lengths


def update_seconds(trainer: Trainer, updates: int) -> float:
    """Mean seconds of one update (replay sampling included) after one warm-up update."""

    def one() -> None:
        trainer.agent.update(trainer._to_torch(trainer.replay.sample(trainer.batch_size, trainer.seq_len)))

    one()
    t0 = time.perf_counter()
    for _ in range(updates):
        one()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / updates


def act_mean_ms(trainer: Trainer, steps: int) -> dict[str, float]:
    """``act()`` latency percentiles and mean on the evaluation env."""
    t0 = time.perf_counter()
    out = act_latency(trainer.agent, trainer.eval_envs, steps=steps, threads=1)
    out["act_ms_mean_with_env"] = 1000.0 * (time.perf_counter() - t0) / (steps + 10)
    return out


def derive(
    suite, agent: str, trainer: Trainer, env_rate: float, act: dict, update_s: float, episode: float
) -> dict[str, float]:
    """Updates and wall-clock per 100k env steps at the suite's protocol (see the module docstring); ``episode`` is the
    episode length used for the evaluations (random-action episodes: an upper bound where success ends one early)."""
    ratio = suite.train_ratio_of(agent)
    updates = 100_000 * ratio / (trainer.batch_size * trainer.seq_len)
    act_s = max(act["act_ms_mean_with_env"] / 1000.0 - 1.0 / env_rate, 0.0)  # act() alone, without its env step
    train_s = 100_000 * (1.0 / env_rate + act_s) + updates * update_s
    eval_steps = (100_000 // suite.eval_every) * suite.eval_episodes * episode
    return {
        "act_ms_mean": 1000.0 * act_s,
        "train_ratio": ratio,
        "updates_per_100k": updates,
        "hours_per_100k_train": train_s / 3600,
        "hours_per_100k_with_eval": (train_s + eval_steps * act["act_ms_mean_with_env"] / 1000.0) / 3600,
        "eval_steps_per_100k": eval_steps,
    }


def run_peak_memory_mb(suite: str, agent: str, task: str) -> float | None:
    """Mean peak memory (MB) of the suite's finished runs of (agent, task), from their throughput records."""
    peaks = [
        json.loads(f.read_text()).get("peak_memory_mb")
        for f in sorted((RESULTS / suite / agent / task).glob("seed*.throughput.json"))
    ]
    peaks = [p for p in peaks if p is not None]
    return float(np.mean(peaks)) if peaks else None


def write_table(rows: list[dict]) -> None:
    """The Markdown table of the newest measurement of each (suite, task, machine, device, agent)."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        latest[(row["suite"], row["task"], row["machine"], row["device"], row["agent"])] = row
    lines = [
        "# Throughput of the compared agents, side by side",
        "",
        "Written by `python benchmarks/throughput.py SUITE --task TASK` (see its docstring): every agent built from the "
        "suite's own flags and measured in one process, interleaved over rounds (medians shown). Training hours per "
        "100k env steps = 100k × (1 / env rate + act) + updates × update time; *with eval* adds the suite's "
        "evaluation episodes; *÷ SAC* divides it by the SAC row of the same suite, task and machine. Single-threaded. "
        "Compare rows of one machine only. *Peak MB* is the mean peak memory of the suite's training runs of the agent "
        "on the task (their `seed*.throughput.json`; those runs may come from other machines).",
        "",
        "| suite | task | machine | device | agent | env steps/s (random) | act() ms mean / p50 / p95 | s / update | "
        "updates / s | updates / 100k | h / 100k train | h / 100k with eval | ÷ SAC | peak MB (runs) | rounds | when |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in latest.items():
        sac = latest.get((*key[:4], "sac"))
        ratio = f"{r['hours_per_100k_with_eval'] / sac['hours_per_100k_with_eval']:.2f}" if sac else "–"
        peak = run_peak_memory_mb(r["suite"], r["agent"], r["task"])
        lines.append(
            f"| {r['suite']} | {r['task']} | {r['machine']} | {r['device']} | {r['agent']} | {r['env_steps_per_s']:.0f} | "
            f"{r['act_ms_mean']:.1f} / {r['act_ms_p50']:.1f} / {r['act_ms_p95']:.1f} | {r['seconds_per_update']:.3f} | "
            f"{1 / r['seconds_per_update']:.0f} | {r['updates_per_100k']:.0f} | {r['hours_per_100k_train']:.2f} | "
            f"{r['hours_per_100k_with_eval']:.2f} | {ratio} | {'–' if peak is None else f'{peak:.0f}'} | "
            f"{r['rounds']} | {r['when']} |"
        )
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Measure the suite's agents on one task and append the rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", help="suite name under benchmarks/suites (e.g. quick-state)")
    parser.add_argument("--task", required=True, help="task key of the suite, e.g. metaworld-reach-v3")
    parser.add_argument("--agents", nargs="+", default=None, help="default: every agent the suite runs on the task")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=1000, help="random env steps per agent and round")
    parser.add_argument("--act-steps", type=int, default=200)
    parser.add_argument("--updates", type=int, default=5, help="timed updates per agent and round")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--machine", default=platform.node() or "unknown", help="label of this machine in the table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("LP_NUM_THREADS", "0")  # as `wam bench` runs render (before any GL context exists)
    suite = load_suite(args.suite, ROOT / "suites")
    in_grid = [a for a in suite.agents if expand_grid(suite, seeds=1, agents=(a,), tasks=(args.task,))]
    missing = [a for a in args.agents or [] if a not in in_grid]
    if missing:
        raise SystemExit(f"{missing} do not run on {args.task} in suite {suite.name}; its agents there: {in_grid}")
    agents = args.agents or in_grid
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            a: build_trainer(
                suite, a, args.task, Path(tmp) / a, args.device, capacity=args.env_steps * args.rounds + 1000
            )
            for a in agents
        }
        samples: dict[str, dict[str, list[float]]] = {a: {} for a in agents}
        lengths: dict[str, list[int]] = {a: [] for a in agents}
        for k in range(args.rounds):
            for agent in agents[k % len(agents) :] + agents[: k % len(agents)]:
                t = trainers[agent]
                rate, ended = fill(t, args.env_steps)
                lengths[agent] += ended
                one = {
                    "env_steps_per_s": rate,
                    **act_mean_ms(t, args.act_steps),
                    "seconds_per_update": update_seconds(t, args.updates),
                }
                for key, value in one.items():
                    samples[agent].setdefault(key, []).append(value)
                print(
                    f"round {k + 1}/{args.rounds} {agent}: " + ", ".join(f"{key} {v:.4g}" for key, v in one.items()),
                    flush=True,
                )
            short = [a for a in agents if not lengths[a]]
            if short:  # every round starts from a reset, so later rounds would not end one either
                raise SystemExit(
                    f"no episode ended within --env-steps {args.env_steps} for {short}: raise it above the "
                    "episode length (it sizes the evaluation cost)"
                )
        rows = []
        for agent in agents:
            med = {key: float(np.median(v)) for key, v in samples[agent].items()}
            rows.append(
                {
                    "suite": suite.name,
                    "task": args.task,
                    "agent": agent,
                    "machine": args.machine,
                    "device": args.device,
                    "env_steps_per_s": med["env_steps_per_s"],
                    "act_ms_p50": med["act_ms_p50"],
                    "act_ms_p95": med["act_ms_p95"],
                    "seconds_per_update": med["seconds_per_update"],
                    **derive(
                        suite,
                        agent,
                        trainers[agent],
                        med["env_steps_per_s"],
                        med,
                        med["seconds_per_update"],
                        float(np.mean(lengths[agent])),
                    ),
                    "episode_length": float(np.mean(lengths[agent])),
                    "rounds": args.rounds,
                    "updates_timed": args.updates,
                    "samples": samples[agent],
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                    "torch": torch.__version__,
                    "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                }
            )
        for t in trainers.values():
            t.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    write_table([json.loads(line) for line in OUT.read_text().splitlines()])
    print(TABLE.read_text())


if __name__ == "__main__":
    main()
