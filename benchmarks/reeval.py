"""Re-evaluate a suite's finished runs with more episodes: how much of a table cell is evaluation noise?

The suites evaluate with few episodes (10) to keep runs cheap, so one success rate carries a binomial standard
error of up to ±16 points. This script loads each finished run's final agent from ``runs/bench/<suite>/...`` and
evaluates it again, deterministically as in the protocol, on ``--episodes`` fresh episodes (evaluation seed
``--seed``, unlike the protocol's). Its numbers are a diagnostic beside the pre-registered results: they never enter
a claim's verdict.

    python benchmarks/reeval.py toy --episodes 50
    python benchmarks/reeval.py quick-state --episodes 50 --tasks metaworld-reach-v3

Appends one row per run to ``benchmarks/results/<suite>/reeval.jsonl`` (skipping runs already there at that
episode count) and rewrites ``benchmarks/results/<suite>/reeval.md`` with the protocol's final success next to the
re-evaluated one.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from wam.bench.runner import BenchPaths, expand_grid, read_curve, reached
from wam.bench.suite import load_suite
from wam.cli.evaluate import EvalArgs, eval_cli
from wam.io.metrics import read_jsonl

ROOT = Path(__file__).resolve().parent


def reevaluate(suite_name: str, episodes: int, seed: int, agents: tuple[str, ...] = (), tasks: tuple[str, ...] = ()) -> Path:
    """Evaluate every finished run of the suite not yet in its ``reeval.jsonl``; return the Markdown table's path."""
    suite = load_suite(ROOT / "suites" / f"{suite_name}.toml")
    paths = BenchPaths()
    out = ROOT / "results" / suite.name / "reeval.jsonl"
    done = {(r["agent"], r["task"], r["seed"], r["episodes"]) for r in read_jsonl(out)} if out.exists() else set()
    for run in expand_grid(suite, agents=agents, tasks=tasks):
        curve_path = paths.curve(suite, run)
        curve = read_curve(curve_path) if curve_path.exists() else []
        if (run.agent, run.task.name, run.seed, episodes) in done or not reached(curve, suite.budget):
            continue
        summary = eval_cli(EvalArgs(str(paths.run_dir(suite, run)), episodes=episodes, seed=seed, device="cpu"))
        row = {"agent": run.agent, "task": run.task.name, "seed": run.seed, "episodes": episodes, "eval_seed": seed,
               "success": summary["eval/success"], "return": summary["eval/return"],
               "protocol_success": curve[-1]["eval/success"], "protocol_return": curve[-1]["eval/return"],
               "protocol_episodes": suite.eval_episodes,
               "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return write_table(out)


def write_table(jsonl: Path) -> Path:
    """``reeval.md`` beside ``jsonl``: one line per run, sorted by task, agent and seed."""
    rows = sorted(read_jsonl(jsonl), key=lambda r: (r["task"], r["agent"], r["seed"], r["episodes"]))
    lines = [f"# Re-evaluation of finished runs ({jsonl.parent.name})", "",
             "Written by `python benchmarks/reeval.py`: each run's final agent evaluated again (deterministic policy) on",
             "more episodes than the protocol's. A diagnostic of evaluation noise; verdicts use the protocol's numbers.", "",
             "| task | agent | seed | protocol success (episodes) | re-evaluated success (episodes) | protocol / re-evaluated return |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['agent']} | {r['seed']} | {r['protocol_success']:.0%} ({r['protocol_episodes']}) | "
                     f"{r['success']:.0%} ({r['episodes']}) | {r['protocol_return']:.1f} / {r['return']:.1f} |")
    path = jsonl.with_suffix(".md")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    """Parse flags and re-evaluate."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", help="suite name under benchmarks/suites/ (e.g. toy, quick-state)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20_000, help="evaluation seed (the protocol's is 10000)")
    parser.add_argument("--agents", nargs="*", default=())
    parser.add_argument("--tasks", nargs="*", default=())
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"table: {reevaluate(args.suite, args.episodes, args.seed, tuple(args.agents), tuple(args.tasks))}")


if __name__ == "__main__":
    main()
