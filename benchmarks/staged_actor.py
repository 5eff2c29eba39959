"""Diagnostic: with a finished run's world model held fixed, can the actor-critic learn the task in imagination?

Loads a WAM run's last training checkpoint (model and replay), freezes everything except the policy and value
heads, switches the model to ``decoupled`` (the heads read a stop-gradient latent) and turns the model losses off.
It then trains actor and critic only, on rollouts imagined from the saved replay, and evaluates the policy in the
run's own environment every ``--eval-every`` actor updates. ``--fresh-actor`` re-initialises the two heads first.

Each evaluation also measures the world model on the policy's own behaviour (``imagined`` vs ``real``): the
reward it predicts over ``--gap-horizon`` steps imagined open-loop from a real state with the actions the policy
really took next, against the rewards the environment gave. A policy that gets worse while ``imagined`` grows
above ``real`` is exploiting model errors.

``--no-bootstrap`` computes the actor's (and critic's) λ-returns with every critic value replaced by 0: the actor
then maximises the imagined reward over the horizon alone. If it learns with that and not with the critic, the
critic is what misleads it.

If the policy learns here but not in the online run, the limit is the number of actor updates (or the joint
dynamics of training both); if it does not learn here either, the world model (or the actor-critic itself) is.

    python benchmarks/staged_actor.py --run runs/bench/quick-state/wam/metaworld-reach-v3/seed0 \\
        --actor-updates 2000 --label reach-seed0-50k

Appends one row per evaluation to ``benchmarks/results/staged_actor.jsonl`` as it goes (a killed probe keeps its
curve so far); rows of one call share ``label`` and ``started``.
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
from wam.io.state import load_state
from wam.losses import lambda_returns
from wam.models import objective
from wam.training.checkpoint import find_checkpoint

OUT = Path(__file__).resolve().parent / "results" / "staged_actor.jsonl"
MODEL_LOSSES = ("dyn", "rec", "reward", "cont")
#: Training metrics averaged over the updates between two evaluations (imagined return and reward, entropy).
TRAIN_METRICS = ("imag/return", "imag/reward", "imag/return_scale", "actor/entropy")


def load_run(run: Path, seed: int) -> tuple[WAMAgent, Replay, dict]:
    """The agent (model weights of the run's last checkpoint, fresh optimiser) and its replay."""
    saved = json.loads((run / "config.json").read_text())
    if saved["agent"] != "wam":
        raise SystemExit(f"{run} is a {saved['agent']} run; the probe needs a WAM run")
    checkpoint = find_checkpoint(run)
    if checkpoint is None or not (checkpoint / "replay" / "replay.json").is_file():
        raise SystemExit(f"{run} has no checkpoint with a replay (train with --checkpoint-replay)")
    spec = EnvSpec(**saved["spec"])
    agent = WAMAgent(WAMAgentConfig(**saved["train"]["wam"]), spec)
    agent.load_state_dict(load_state(checkpoint / "agent_full")["agent"])
    replay = Replay(spec, saved["train"]["replay_capacity"], saved["train"]["num_envs"], seed=seed)
    replay.load(checkpoint / "replay")
    return agent, replay, saved


def freeze_world_model(agent: WAMAgent, fresh_actor: bool) -> None:
    """Only the policy and value heads keep learning; model losses off; heads read a stop-gradient latent."""
    model = agent.model
    if fresh_actor:
        fresh = type(model)(model.config)
        for name in ("policy", "value", "slow_value"):
            getattr(model, name).load_state_dict(getattr(fresh, name).state_dict())
        model.return_norm.load_state_dict(fresh.return_norm.state_dict())
    heads = {id(p) for module in (model.policy, model.value) for p in module.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in heads)
    model.config.coupling = "decoupled"
    model.config.loss_scales.update({name: 0.0 for name in MODEL_LOSSES})


@torch.no_grad()
def imagination_gap(agent: WAMAgent, env_name: str, obs_keys: tuple[str, ...], horizon: int, seed: int,
                    episodes: int = 4, starts: tuple[int, ...] = (0, 25, 50, 75)) -> dict[str, float]:
    """Predicted vs real reward summed over ``horizon`` steps after real states of the deterministic policy, and the
    critic's value at each episode's first state vs the real discounted return of the episode (truncated at its
    end, so a lower bound for γ close to 1; the correlation is across episodes, i.e. goals)."""
    env = make(env_name, obs=list(obs_keys))
    predicted, real, values, returns = [], [], [], []
    gamma = agent.model.config.gamma
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        state, is_first = agent.init_state(1), np.ones(1, bool)
        observations, actions, rewards = [], [], []
        while True:
            action, state = agent.act({k: np.asarray(obs[k])[None] for k in obs_keys}, state, is_first, deterministic=True)
            is_first[:] = False
            observations.append(obs)
            actions.append(action[0])
            obs, reward, terminated, truncated, _ = env.step(action[0])
            rewards.append(reward)
            if terminated or truncated:
                break
        for t in starts:
            if t + horizon > len(rewards):
                continue
            context = {k: torch.as_tensor(np.asarray(observations[t][k]))[None, None] for k in obs_keys}
            plan = torch.as_tensor(np.array(actions[t:t + horizon]))[None]
            out = agent.model.imagine(context, actions=plan, horizon=horizon, decode=False)
            predicted.append(float(out["reward"].sum()))
            real.append(float(sum(rewards[t:t + horizon])))
            if t == 0:  # the whole episode lies ahead: its discounted return is the value's target
                values.append(float(out["value"][0, 0]))
                returns.append(float(np.sum(np.array(rewards) * gamma ** np.arange(len(rewards)))))
    env.close()
    return {"imagined": float(np.mean(predicted)), "real": float(np.mean(real)), "value": float(np.mean(values)),
            "real_return": float(np.mean(returns)), "value_return_corr": float(np.corrcoef(values, returns)[0, 1])}


def _returns_without_bootstrap(reward, value, cont, gamma, lam):
    """λ-returns with every value set to 0: the discounted reward over the imagined horizon only."""
    return lambda_returns(reward, torch.zeros_like(value), cont, gamma, lam)


def main() -> None:
    """Train the actor-critic on a fixed world model and record its evaluation curve (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a WAM run folder whose checkpoint holds a replay")
    parser.add_argument("--actor-updates", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--fresh-actor", action="store_true", help="re-initialise policy and value heads first")
    parser.add_argument("--actor-grad", choices=["reinforce", "pathwise"], default=None,
                        help="policy-gradient estimator for the probe (default: the run's)")
    parser.add_argument("--gap-horizon", type=int, default=15, help="steps of the imagined-vs-real reward comparison")
    parser.add_argument("--entropy", type=float, default=None, help="entropy bonus for the probe (default: the run's)")
    parser.add_argument("--imag-starts", type=int, default=None, help="imagination starts per update (default: the run's)")
    parser.add_argument("--no-bootstrap", action="store_true",
                        help="returns without critic values: the imagined reward over the horizon only")
    parser.add_argument("--label", default="")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (imagination, policy samples) and evaluation "
                        "seed; replay sampling continues the run's own sampler state, restored with the replay")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    agent, replay, saved = load_run(args.run, args.seed)
    freeze_world_model(agent, args.fresh_actor)
    if args.actor_grad:
        agent.model.config.actor_grad = args.actor_grad
    if args.entropy is not None:
        agent.model.config.entropy = args.entropy
    if args.imag_starts is not None:
        agent.model.config.imag_starts = args.imag_starts
    if args.no_bootstrap:  # this process only trains on imagined rollouts, so patching the objective's module is enough
        objective.lambda_returns = _returns_without_bootstrap
    train = saved["train"]
    envs = make_vector(EnvConfig(name=train["env"], obs=tuple(train["obs"]), image_size=train["image_size"],
                                 action_repeat=train["action_repeat"], seed=10_000 + args.seed), 1, asynchronous=False)
    meta = {"label": args.label, "run": str(args.run), "env": train["env"], "fresh_actor": args.fresh_actor,
            "actor_grad": agent.model.config.actor_grad,
            "bootstrap": not args.no_bootstrap, "entropy": agent.model.config.entropy,
            "imag_starts": agent.model.config.imag_starts,
            "replay_steps": len(replay), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    window: list[dict[str, float]] = []  # training metrics since the last evaluation
    for step in range(args.actor_updates + 1):
        if step % args.eval_every == 0:
            result = evaluate(agent, envs, args.episodes, seed=10_000 + args.seed).summary()
            gap = imagination_gap(agent, train["env"], tuple(train["obs"]), args.gap_horizon, seed=20_000 + args.seed)
            row = {**meta, "actor_updates": step, "success": result["eval/success"], "return": result["eval/return"],
                   **{f"{k}_{args.gap_horizon}": v for k, v in gap.items()},
                   **{f"train/{k}": float(np.mean([m[k] for m in window])) for k in TRAIN_METRICS if window},
                   "seconds": round(time.time() - t0, 1)}
            window = []
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
        if step < args.actor_updates:
            batch = replay.sample(agent.config.batch_size, agent.config.seq_len)
            window.append(agent.update({k: torch.as_tensor(v) for k, v in batch.items()}))
    envs.close()


if __name__ == "__main__":
    main()
