"""Diagnostic: can the WAM world model *imagine* the consequences of actions on ``toy/reach2d``?

Trains a fresh WAM on world-model losses only (actor/critic weights 0) on the replay saved in a toy run's
checkpoint, then, on fresh episodes, measures what the actor depends on:

* ``open_loop_err``: mean |decoded − real| position (symlog units) over 10 imagined steps driven by the real
  random actions, from a one-step context; ``copy_err`` is the same error for "the point never moves";
* ``reward_gap`` / ``true_gap``: predicted vs real difference in 5-step reward sum between moving straight
  towards the goal and straight away from it; ``order_ok``: fraction of episodes where the prediction ranks the
  two correctly. An actor trained in imagination can only learn the task if ``reward_gap`` > 0 reliably.

With ``--actor-updates N`` it then trains only the actor and critic (model losses off) in imagination on the same
replay and evaluates the policy in the environment every 250 updates (``actor_curve``): does the actor-critic
learn when the world model is already trained and held fixed?

    python benchmarks/imagination_probe.py --run runs/explore/res_reinforce --updates 1000 --label default
    python benchmarks/imagination_probe.py --run runs/explore/res_reinforce --updates 1000 --label old \\
        --set residual_dynamics=0 model_horizon=1
    python benchmarks/imagination_probe.py --run runs/explore/res_reinforce --updates 1000 --label staged \
        --set model_horizon=1 --coupling decoupled --actor-updates 1000

Appends one row per call to ``benchmarks/results/imagination_probe.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from wam.agents.spec import EnvSpec
from wam.agents.wam_agent import WAMAgent, WAMAgentConfig
from wam.data.replay import Replay
from wam.envs import make, make_vector
from wam.envs.config import EnvConfig
from wam.evaluation.evaluate import evaluate
from wam.losses import symlog

OUT = Path(__file__).resolve().parent / "results" / "imagination_probe.jsonl"


def parse_overrides(items: list[str]) -> dict[str, float]:
    """``name=value`` pairs → WAMConfig overrides (numbers; 0/1 for booleans)."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--set expects name=value, got {item!r}")
        number = float(value)
        out[name] = int(number) if number.is_integer() and name != "model_rho" else number
    return out


@torch.no_grad()
def measure(agent: WAMAgent, episodes: int, seed: int) -> dict[str, float]:
    """Open-loop and action-ranking measurements on fresh ``toy/reach2d`` episodes."""
    model = agent.model.eval()
    env = make("toy/reach2d", obs=["state"])
    rng = np.random.default_rng(seed)
    open_loop, copy, predicted_gap, true_gap, order = [], [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        start = obs["state"]
        actions = rng.uniform(-1, 1, (10, 2)).astype(np.float32)
        states = []
        for a in actions:
            obs, *_ = env.step(a)
            states.append(obs["state"])
        context = {"state": torch.as_tensor(start)[None, None]}
        out = model.imagine(context, actions=torch.as_tensor(actions)[None], horizon=10)
        real = symlog(torch.as_tensor(np.array(states))[:, :2])
        open_loop.append(float((out["decoded"]["state"][0, :, :2] - real).abs().mean()))
        copy.append(float((symlog(torch.as_tensor(start[:2])) - real).abs().mean()))
        pos, goal = start[:2].astype(np.float64), start[2:].astype(np.float64)
        direction = (goal - pos) / max(np.linalg.norm(goal - pos), 1e-6)
        sums, truth = [], []
        for sign in (1.0, -1.0):
            step = (sign * direction).astype(np.float32)
            imagined = model.imagine(context, actions=torch.as_tensor(np.tile(step, (1, 5, 1))), horizon=5, decode=False)
            sums.append(float(imagined["reward"].sum()))
            path = [np.clip(pos + 0.1 * k * sign * direction, -1, 1) for k in range(1, 6)]
            truth.append(sum(1 - np.linalg.norm(goal - p) for p in path))
        predicted_gap.append(sums[0] - sums[1])
        true_gap.append(truth[0] - truth[1])
        order.append(sums[0] > sums[1])
    return {"open_loop_err": float(np.mean(open_loop)), "copy_err": float(np.mean(copy)),
            "reward_gap": float(np.mean(predicted_gap)), "true_gap": float(np.mean(true_gap)), "order_ok": float(np.mean(order))}


def main() -> None:
    """Train the world model on a saved replay and measure imagination (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a toy/reach2d run whose checkpoint holds a replay")
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--beta-dyn", type=float, default=1.0, help="weight of the next-latent loss")
    parser.add_argument("--set", nargs="*", default=[], help="WAMConfig overrides, e.g. residual_dynamics=0 model_horizon=1")
    parser.add_argument("--coupling", default="coupled", choices=["coupled", "decoupled"])
    parser.add_argument("--actor-updates", type=int, default=0, help="then train actor/critic only, with the model fixed")
    parser.add_argument("--label", default="")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    saved = json.loads((args.run / "config.json").read_text())
    if saved["train"]["env"] != "toy/reach2d" or saved["train"]["obs"] != ["state"]:
        raise SystemExit("the probe needs a toy/reach2d run trained with --obs state")
    spec = EnvSpec(**saved["spec"])
    replay = Replay(spec, 10**6, saved["train"]["num_envs"], seed=args.seed)
    replay.load(args.run / "checkpoint" / "replay")
    overrides = parse_overrides(args.set)
    agent = WAMAgent(WAMAgentConfig(beta_dyn=args.beta_dyn, coupling=args.coupling, extra=overrides), spec)
    scales = agent.model.config.loss_scales
    full = dict(scales)
    scales.update(actor=0.0, critic=0.0, slow_critic=0.0)

    def update() -> None:
        agent.update({k: torch.as_tensor(v) for k, v in replay.sample(agent.config.batch_size, agent.config.seq_len).items()})

    t0 = time.time()
    for _ in range(args.updates):
        update()
    row = {"label": args.label, "updates": args.updates, "beta_dyn": args.beta_dyn, "overrides": overrides, "coupling": args.coupling,
           "train_seconds": time.time() - t0, "run": str(args.run), **measure(agent, args.episodes, seed=1000)}
    if args.actor_updates:
        scales.update(full)
        scales.update(dyn=0.0, rec=0.0, reward=0.0, cont=0.0)
        envs = make_vector(EnvConfig(name="toy/reach2d", obs=("state",)), 1, asynchronous=False)
        curve = []
        for step in range(args.actor_updates + 1):
            if step % 250 == 0:
                result = evaluate(agent, envs, args.episodes, seed=2000).summary()
                curve.append({"actor_updates": step, "success": result["eval/success"], "return": result["eval/return"]})
                print(curve[-1], flush=True)
            if step < args.actor_updates:
                update()
        row["actor_curve"] = curve
    print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
