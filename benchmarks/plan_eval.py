"""Does planning in the model's imagination (MPPI) succeed where the policy head alone does not?

Evaluates a saved WAM in its run's environment twice on the same episodes (same reset seeds): acting with the
policy head (deterministic), and acting by MPPI (:mod:`wam.models.planning`). Success is MetaWorld's any-step
success, so an episode stops at its first success (the success rate is the same as over the full 500 steps,
the return is not reported). Planning costs a few hundred imagined rollouts per step, so this is slow on a CPU:
expect ~0.2–0.6 s per planned step.

    python benchmarks/plan_eval.py runs/bench/quick-state/wam/metaworld-reach-v3/seed0 --episodes 5 --label grid-seed0-50k

Appends one row per episode to ``benchmarks/results/plan_eval.jsonl`` as it goes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from wam.agents.registry import load_agent
from wam.envs import make
from wam.models.planning import MPPIConfig

OUT = Path(__file__).resolve().parent / "results" / "plan_eval.jsonl"


def run_episode(agent, env, obs_keys: list[str], seed: int) -> dict[str, float]:
    """One episode until success or the environment's time limit: success, steps, seconds per action."""
    obs, _ = env.reset(seed=seed)
    state, is_first = agent.init_state(1), np.ones(1, bool)
    steps, acting, success = 0, 0.0, False
    while True:
        start = time.perf_counter()
        action, state = agent.act({k: np.asarray(obs[k])[None] for k in obs_keys}, state, is_first, deterministic=True)
        acting += time.perf_counter() - start
        is_first[:] = False
        obs, _, terminated, truncated, info = env.step(action[0])
        steps += 1
        success = success or bool(info.get("success", False))
        if success or terminated or truncated:
            break
    return {"success": float(success), "steps": steps, "seconds_per_act": round(acting / steps, 4)}


def main() -> None:
    """Evaluate policy vs MPPI on the same episodes (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a WAM run folder (its final/ model is used)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--no-value", action="store_true", help="score sequences by imagined reward only")
    parser.add_argument("--label", default="")
    parser.add_argument("--seed", type=int, default=30_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = json.loads((args.run / "config.json").read_text())
    agent = load_agent(args.run / "final", device="cpu")
    if agent.name != "wam" or agent.spec.discrete:
        raise SystemExit(f"{args.run} holds a {agent.name} agent; planning needs a WAM with box actions")
    planner = MPPIConfig(horizon=args.horizon, samples=args.samples, iterations=args.iterations,
                         terminal_value=not args.no_value)
    env_name, obs_keys = saved["train"]["env"], list(saved["train"]["obs"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    env = make(env_name, obs=obs_keys)
    for mode, setting in (("policy", None), ("mppi", planner)):
        agent.planner = setting
        for episode in range(args.episodes):
            row = {"label": args.label, "run": str(args.run), "env": env_name, "mode": mode, "episode": episode,
                   "planner": dataclasses.asdict(setting) if setting else None,
                   **run_episode(agent, env, obs_keys, args.seed + episode)}
            print(json.dumps(row), flush=True)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
    env.close()


if __name__ == "__main__":
    main()
