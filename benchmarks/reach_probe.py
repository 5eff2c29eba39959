"""Diagnostic: does a trained WAM on MetaWorld ``reach-v3`` (obs=state) use the goal?

In reach-v3 the goal position is part of the 39-d state (indices 36:39) and the reward depends on the hand–goal
distance (10 at the goal, ~1.5 at 25 cm). Two measurements on fresh episodes:

* ``policy_cos``: cosine between the deterministic action's xyz and the hand→goal direction, averaged over the
  first 100 steps of each episode (1 = always heads for the goal; a goal-blind policy drifts towards ~0), and
  ``first_action_spread``: standard deviation of the first action across episodes with different goals (0 = the
  policy starts the same way whatever the goal);
* ``reward_vs_goal_distance``: the reward head's prediction on the encoder latent of real states in which the goal
  is moved to 0, 3, 10, 20, 30 cm from the hand (real reward: 10 within 5 cm of the goal, lower further away);
* ``counterfactual``: does the world model know which actions pay? From real states (after a few random steps) it
  imagines ``--horizon`` steps of a constant action *towards* the goal, *away* from it, and *still* (zero), and the
  same action sequences are replayed in the simulator from the same state. Reported: the summed imagined and real
  reward per plan, and how often the imagined reward ranks *towards* above *away* (the real one always should).

    python benchmarks/reach_probe.py runs/bench/quick-state/wam/metaworld-reach-v3/seed0/final --label grid-seed0-50k

Appends one row per call to ``benchmarks/results/reach_probe.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from wam.agents.registry import load_agent
from wam.envs import make

OUT = Path(__file__).resolve().parent / "results" / "reach_probe.jsonl"
GOAL = slice(36, 39)
DISTANCES = (0.0, 0.03, 0.1, 0.2, 0.3)


def policy_goal_use(agent, episodes: int, steps: int, seed: int) -> dict[str, float]:
    """Cosine of action vs goal direction, and the spread of the first action across goals."""
    env = make("metaworld/reach-v3", obs=["state"])
    cosines, first = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        state, is_first = agent.init_state(1), np.ones(1, bool)
        for t in range(steps):
            action, state = agent.act({"state": obs["state"][None]}, state, is_first, deterministic=True)
            is_first[:] = False
            to_goal = obs["state"][GOAL] - obs["state"][:3]
            move = action[0, :3]
            cosines.append(float(move @ to_goal / (np.linalg.norm(move) * np.linalg.norm(to_goal) + 1e-9)))
            if t == 0:
                first.append(action[0])
            obs, *_ = env.step(action[0])
    env.close()
    return {"policy_cos": float(np.mean(cosines)), "first_action_spread": float(np.std(np.array(first), axis=0).mean())}


@torch.no_grad()
def reward_vs_goal_distance(agent, states: int, seed: int) -> list[float]:
    """Mean predicted reward (reward head on the encoder latent) with the goal moved to each of ``DISTANCES``."""
    model = agent.model.eval()
    env = make("metaworld/reach-v3", obs=["state"])
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    predictions = np.zeros((states, len(DISTANCES)))
    for i in range(states):
        for _ in range(15):
            obs, *_ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        for j, distance in enumerate(DISTANCES):
            direction = rng.normal(size=3)
            state = obs["state"].copy()
            state[GOAL] = state[:3] + distance * direction / np.linalg.norm(direction)
            z = model.encode({"state": torch.as_tensor(state)[None, None]})
            predictions[i, j] = float(model.reward.mean(z))
    env.close()
    return [round(float(x), 3) for x in predictions.mean(0)]


PLANS = {"towards": 1.0, "still": 0.0, "away": -1.0}


@torch.no_grad()
def counterfactual(agent, episodes: int, horizon: int, seed: int, prefix: int = 10) -> dict[str, object]:
    """Imagined vs real reward of constant towards / still / away actions from the same real states."""
    model = agent.model.eval()
    env = make("metaworld/reach-v3", obs=["state"])
    rng = np.random.default_rng(seed)
    imagined = {name: [] for name in PLANS}
    real = {name: [] for name in PLANS}
    for ep in range(episodes):
        warmup = rng.uniform(-1, 1, (prefix, 4)).astype(np.float32)
        for name, sign in PLANS.items():
            obs, _ = env.reset(seed=seed + ep)  # same goal and start for every plan
            for action in warmup:
                obs, *_ = env.step(action)
            to_goal = obs["state"][GOAL] - obs["state"][:3]
            action = np.zeros(4, np.float32)
            action[:3] = sign * to_goal / (np.linalg.norm(to_goal) + 1e-9)
            plan = np.repeat(action[None], horizon, 0)
            context = {"state": torch.as_tensor(obs["state"])[None, None]}
            out = model.imagine(context, actions=torch.as_tensor(plan)[None], horizon=horizon, decode=False)
            imagined[name].append(float(out["reward"].sum()))
            total = 0.0
            for a in plan:
                obs, reward, *_ = env.step(a)
                total += float(reward)
            real[name].append(total)
    env.close()
    ranked = float(np.mean(np.array(imagined["towards"]) > np.array(imagined["away"])))
    return {"horizon": horizon, "imagined": {k: round(float(np.mean(v)), 2) for k, v in imagined.items()},
            "real": {k: round(float(np.mean(v)), 2) for k, v in real.items()}, "towards_above_away": ranked}


def main() -> None:
    """Measure goal use of a saved WAM (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a save_pretrained folder (e.g. RUN/final) of a WAM trained on reach-v3")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--states", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=15, help="steps of the counterfactual plans")
    parser.add_argument("--label", default="")
    parser.add_argument("--seed", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = load_agent(args.model, device="cpu")
    if agent.name != "wam":
        raise SystemExit(f"{args.model} holds a {agent.name} agent; the probe reads the WAM's reward head")
    row = {"label": args.label, "model": str(args.model), **policy_goal_use(agent, args.episodes, args.steps, args.seed),
           "goal_distances_m": list(DISTANCES), "reward_vs_goal_distance": reward_vs_goal_distance(agent, args.states, args.seed),
           "counterfactual": counterfactual(agent, args.episodes, args.horizon, args.seed)}
    print(json.dumps(row))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
