"""Review probes: what a finished run's critic, policy and reward model do, measured on its own replay.

Four probes for a WAM run on MetaWorld ``reach-v3`` from state (the hand is at state[0:3], the goal at state[36:39],
so the direction that pays, hand → goal, is known at every step); weights and replay of its last checkpoint:

* ``wam/advantage_by_step``: on rollouts imagined as in training (stochastic policy, ``imag_starts`` starts per
  batch), the mean and std of (λ-return − value) at each imagination step k, the mean value and imagined reward per
  k, and the value a self-consistent critic would hold for that reward, r / (1 − γ). A mean far from 0 at k > 0, or
  a value far from r / (1 − γ), means the critic is not the fixed point of its own targets on imagined states.
* ``wam/history_dependence``: at the same real steps, the deterministic action and value when the policy sees 0, 3,
  7, 11 or 15 (= context − 1, as when acting) past steps (Δ against 0 past steps), and with the 15 past actions
  zeroed (Δ against the real ones). ``mode_std``, the spread of actions across states, is the scale for Δ.
* ``wam/goal_direction``: in fresh episodes, the first deterministic action for each goal and the cosine of the
  action's xyz with hand → goal over the first ``--steps`` steps; on replayed states (15 past steps) the same cosine
  for the policy's deterministic action and for the replayed (behaviour) action.
* ``wam/position_reward_error``: imagined reward with the real next actions, open loop, against the real reward.
  A rollout from a start with no history occupies trunk positions 1–30; one after 15 steps of history, 31–60. The
  reward and dynamics losses (open-loop ones included) only see positions up to 2·seq_len − 1 (31), so a larger
  error at 31–60 points at position embeddings the world model never trained. The third case starts a lone latent (no history) at position 30, to separate the
  position from the history.

One probe for a DreamerV3 run (any env), on posterior states of replayed sequences:

* ``dreamerv3/heads``: the reward head's prediction against the real reward (correlation, mean absolute error) and,
  for reward head and critic, the probability mass on far two-hot bins (|b| > 10) and the std across states of the
  part of the prediction the far and the near bins contribute. Computed in float64 (bins reach 5e8, and a float32
  sum over far bins is off by up to ~0.3); ``f32_max_abs_err`` is the agent's own float32 expectation's largest error.

    python benchmarks/review_probes.py wam --run runs/reach_v3/r16_starts256_s0 --label r16-s0
    python benchmarks/review_probes.py dreamerv3 --run runs/toy_reach2d/dreamerv3_r512_s0 --label toy-dv3

Each probe appends one row (``probe``, ``label``, ``run``, its numbers, ``time`` in UTC) to
``benchmarks/results/review_probes.jsonl`` and prints it. Seeds are fixed (``--seed``): reruns give the same numbers.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from wam.agents.registry import load_agent
from wam.constants import ACTION, IS_FIRST, IS_TERMINAL, MASK, REWARD
from wam.data.replay import Replay
from wam.envs import make
from wam.losses import lambda_returns, twohot_mean
from wam.models.objective import _branch_points
from wam.training.checkpoint import find_checkpoint

OUT = Path(__file__).resolve().parent / "results" / "review_probes.jsonl"
REACH = "metaworld/reach-v3"
HAND, GOAL = slice(0, 3), slice(36, 39)
HISTORIES = (0, 3, 7, 11)  # past steps seen, besides the longest the policy sees when acting (context − 1)
FAR_BIN = 10.0  # two-hot bins with |b| above this are "far" (DreamerV3 probe)


# ------------------------------------------------------------------ loading and sampling
def load_checked(run: Path, agent_name: str, env: str | None, seed: int) -> tuple[object, Replay, dict]:
    """The agent of the run's last checkpoint (CPU, eval mode), its replay (sampling seeded) and the run's config;
    exits with a message when the folder is not a finished ``agent_name`` run (on ``env``) with a saved replay."""
    if not (run / "config.json").is_file():
        raise SystemExit(f"{run} is not a run folder (no config.json); pass the folder `wam train --out` wrote, "
                         "e.g. runs/reach_v3/r16_starts256_s0")
    saved = json.loads((run / "config.json").read_text())
    train = saved["train"]
    if saved["agent"] != agent_name:
        hint = f"; probe it with `review_probes.py {saved['agent']} --run {run}`" if saved["agent"] in PROBES else ""
        raise SystemExit(f"{run} is a {saved['agent']} run, the `{agent_name}` probes need a {agent_name} run{hint}")
    if env is not None and (train["env"] != env or "state" not in train["obs"]):
        raise SystemExit(f"{run} trained on {train['env']} with obs {train['obs']}; the WAM probes read hand and goal "
                         f"from the state vector of {env}: pass a {env} run with 'state' among its obs")
    checkpoint = find_checkpoint(run)
    if checkpoint is None or not (checkpoint / "replay" / "replay.json").is_file():
        raise SystemExit(f"{run} has no complete checkpoint with a replay; the probes sample it. Train with "
                         "--checkpoint-replay (the default) until the first checkpoint is written")
    agent = load_agent(checkpoint / "agent", device="cpu")
    agent.eval()
    replay = Replay(agent.spec, train["replay_capacity"], train["num_envs"], seed=seed)
    replay.load(checkpoint / "replay")
    replay.rng = np.random.default_rng(seed)  # load() restores the training run's sampler state; use ours
    saved["checkpoint_env_steps"] = json.loads((checkpoint / "counters.json").read_text())["env_steps"]
    return agent, replay, saved


def episode_windows(replay: Replay, before: int, after: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random windows of replayed steps inside one episode: ``before`` steps of history, the start step and
    ``after`` steps. Returns env rows (count,) and ring indices (count, before + 1 + after)."""
    rows, windows = [], []
    offsets = np.arange(-before, after + 1)
    for env in range(replay.num_envs):
        n = int(replay.count[env])
        ring = (replay.head[env] - n + np.arange(n)) % replay.per_env  # oldest → newest
        episodes_begun = np.cumsum(replay.data[IS_FIRST][env, ring])
        start = np.arange(before, n - after)
        same_episode = episodes_begun[start + after] == episodes_begun[start - before]
        windows.append(ring[start[same_episode, None] + offsets])
        rows.append(np.full(int(same_episode.sum()), env))
    rows, windows = np.concatenate(rows), np.concatenate(windows)
    if len(rows) < count:
        raise SystemExit(f"the replay holds {len(rows)} windows of {before + 1 + after} steps inside one episode, "
                         f"fewer than the {count} asked for: pass --states {len(rows)} or less")
    pick = rng.choice(len(rows), count, replace=False)
    return rows[pick], windows[pick]


def gather(replay: Replay, rows: np.ndarray, windows: np.ndarray) -> dict[str, Tensor]:
    """Replay entries of the windows from :func:`episode_windows`: each key (count, L, ...)."""
    return {key: torch.as_tensor(arr[rows[:, None], windows]) for key, arr in replay.data.items()}


def cosine(x: Tensor, y: Tensor) -> Tensor:
    """Row-wise cosine of x (N, 3) and y (N, 3)."""
    return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1) + 1e-9)


def to_goal(state: Tensor) -> Tensor:
    """Hand → goal vectors (..., 3) of reach-v3 states (..., 39)."""
    return state[..., GOAL].float() - state[..., HAND].float()


def rounded(x: Tensor | np.ndarray, digits: int = 3) -> list[float]:
    """A 1-d tensor or array as a JSON list of rounded floats."""
    return [round(float(v), digits) for v in np.asarray(x).reshape(-1)]


@torch.no_grad()
def policy_and_value(model, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Deterministic action (N, A) and value (N,) at the last step of real sequences z (N, L, D), a (N, L, A)."""
    h, _, _ = model.observe(z, a, torch.ones(z.shape[:2], dtype=torch.bool))
    return model.policy(h[:, -1]).mode(), model.value.mean(h[:, -1])


# ------------------------------------------------------------------ WAM probes
@torch.no_grad()
def advantage_by_step(model, replay: Replay, batches: int, batch_size: int, seq_len: int) -> dict:
    """Per imagination step k: (λ-return − value) mean and std, value and imagined reward (see module docstring)."""
    cfg = model.config
    adv, value, reward, start = [], [], [], []
    for _ in range(batches):
        batch = {k: torch.as_tensor(v) for k, v in replay.sample(batch_size, seq_len).items()}
        z = model.encode(batch)  # (B, T, D)
        h, _, cache = model.observe(z, model.action_features(batch[ACTION]), batch[MASK].bool())
        b, t, start_cache = _branch_points(batch[MASK].bool() & ~batch[IS_TERMINAL].bool(), cfg.imag_starts, cache)
        roll = model.rollout(start_cache, h[b, t], z[b, t], 2 * t, cfg.horizon)
        v = model.value.mean(roll["h"])  # (N, H+1)
        returns = lambda_returns(roll["reward"], v, roll["cont"], cfg.gamma, cfg.lam)  # (N, H)
        adv.append(returns - v[:, :-1])
        value.append(v)
        reward.append(roll["reward"])
        start.append(t)
    adv, value, reward, start = (torch.cat(x) for x in (adv, value, reward, start))
    bands = ((0, 5), (5, 10), (10, seq_len))
    return {"rollouts": len(adv), "gamma": cfg.gamma, "lam": cfg.lam,
            "adv_mean_k": rounded(adv.mean(0)), "adv_std_k": rounded(adv.std(0)),
            "value_k": rounded(value.mean(0), 2), "reward_k": rounded(reward.mean(0)),
            "value_mean": round(float(value.mean()), 2), "reward_mean": round(float(reward.mean()), 3),
            "self_consistent_value": round(float(reward.mean()) / (1 - cfg.gamma), 2),
            "adv0_by_start_step": {f"{lo}-{hi - 1}": round(float(adv[(start >= lo) & (start < hi), 0].mean()), 3)
                                   for lo, hi in bands}}


@torch.no_grad()
def history_dependence(model, replay: Replay, states: int, rng: np.random.Generator) -> dict:
    """Δ deterministic action and value at the same real steps as the history seen grows, and with zeroed actions."""
    longest = model.config.context - 1  # what act_step shows the policy
    histories = sorted({k for k in HISTORIES if k < longest} | {longest})
    rows, windows = episode_windows(replay, longest, 0, states, rng)
    data = gather(replay, rows, windows)
    z, a = model.encode(data), model.action_features(data[ACTION])  # (N, longest + 1, D), (N, longest + 1, A)
    goal_dir = to_goal(data["state"][:, -1])
    seen = {k: policy_and_value(model, z[:, longest - k:], a[:, longest - k:]) for k in histories}
    mode0, value0 = seen[0]
    by_history = {str(k): {"d_mode": round(float((mode - mode0).norm(dim=1).mean()), 3),
                           "value": round(float(value.mean()), 2),
                           "d_value": round(float((value - value0).abs().mean()), 2),
                           "value_corr": round(float(np.corrcoef(value.numpy(), value0.numpy())[0, 1]), 3) if k else 1.0,
                           "cos_goal": round(float(cosine(mode[:, :3], goal_dir).mean()), 3)}
                  for k, (mode, value) in seen.items()}
    full_mode, full_value = seen[longest]
    zero_mode, zero_value = policy_and_value(model, z, torch.zeros_like(a))
    return {"states": states, "mode_std": rounded(mode0.std(0)), "value_std": round(float(value0.std()), 2),
            "by_history": by_history,
            "zeroed_actions": {"d_mode": round(float((zero_mode - full_mode).norm(dim=1).mean()), 3),
                               "d_value": round(float((zero_value - full_value).abs().mean()), 2),
                               "cos_goal": round(float(cosine(zero_mode[:, :3], goal_dir).mean()), 3)}}


@torch.no_grad()
def goal_direction(agent, replay: Replay, obs_keys: list[str], episodes: int, steps: int, states: int, seed: int,
                   rng: np.random.Generator) -> dict:
    """First action per goal and cos(action, hand → goal) in fresh episodes, and on replayed states."""
    env = make(REACH, obs=obs_keys)
    runs = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        state, is_first = agent.init_state(1), np.ones(1, bool)
        cosines, distances = [], []
        for t in range(steps):
            action, state = agent.act({k: np.asarray(obs[k])[None] for k in obs_keys}, state, is_first, deterministic=True)
            is_first[:] = False
            direction = to_goal(torch.as_tensor(obs["state"]))
            cosines.append(float(cosine(torch.as_tensor(action[0, :3]), direction)))
            distances.append(float(direction.norm()))
            if t == 0:
                runs.append({"goal": rounded(obs["state"][GOAL]), "first_action": rounded(action[0])})
            obs, *_ = env.step(action[0])
        runs[-1].update(cos=round(float(np.mean(cosines)), 3), dist_start=round(distances[0], 3),
                        dist_end=round(distances[-1], 3))
    env.close()
    rows, windows = episode_windows(replay, agent.model.config.context - 1, 0, states, rng)
    data = gather(replay, rows, windows)
    mode, _ = policy_and_value(agent.model, agent.model.encode(data), agent.model.action_features(data[ACTION]))
    goal_dir = to_goal(data["state"][:, -1])
    return {"steps": steps, "episodes": runs, "cos_mean": round(float(np.mean([r["cos"] for r in runs])), 3),
            "first_action_spread": round(float(np.std([r["first_action"] for r in runs], axis=0).mean()), 3),
            "replay_states": states,
            "replay_cos_policy": round(float(cosine(mode[:, :3], goal_dir).mean()), 3),
            "replay_cos_behaviour": round(float(cosine(data[ACTION][:, -1, :3].float(), goal_dir).mean()), 3)}


@torch.no_grad()
def position_reward_error(model, replay: Replay, states: int, rng: np.random.Generator) -> dict:
    """Open-loop imagined vs real reward (and latent) with the real actions, at trunk positions 1–30 and 31–60
    (context 16, horizon 15), and from a lone start latent at position 30."""
    history, horizon = model.config.context - 1, model.config.horizon
    rows, windows = episode_windows(replay, history, horizon, states, rng)
    data = gather(replay, rows, windows)
    z, a = model.encode(data), model.action_features(data[ACTION])  # (N, history + 1 + H, ...)
    actions, real_reward = data[ACTION][:, history:-1], data[REWARD][:, history + 1:].float()  # (N, H, A), (N, H)
    real_z = z[:, history + 1:]
    ones = torch.ones(states, 1, dtype=torch.bool)
    starts = {}
    # History 0 (positions 1..2H) and full history (2·history + 1 ..): the prefix cache sees tokens up to z_start.
    late = f"pos_{2 * history + 1}_{2 * history + 2 * horizon}"
    for name, k in ((f"pos_1_{2 * horizon}_no_history", 0), (f"{late}_history_{history}", history)):
        h, _, cache = model.observe(z[:, history - k:history + 1], a[:, history - k:history + 1],
                                    torch.ones(states, k + 1, dtype=torch.bool))
        cache.valid[:, 2 * k + 1:] = False  # the start step's action token: the rollout feeds it again
        starts[name] = (cache, h[:, -1], torch.full((states,), 2 * k))
    pos = torch.full((states,), 2 * history)
    out, cache = model.trunk.forward_cached(model._z_token(z[:, history], pos).unsqueeze(1), ones, None)
    starts[f"{late}_no_history"] = (cache, out[:, 0], pos)
    result = {"states": states, "horizon": horizon, "real_reward_mean": round(float(real_reward.mean()), 3),
              "real_sum_mean": round(float(real_reward.sum(1).mean()), 2)}
    for name, (cache, h0, pos0) in starts.items():
        roll = model.rollout(cache, h0, z[:, history], pos0, horizon, actions=actions)
        error = (roll["reward"] - real_reward).abs()  # (N, H)
        result[name] = {"abs_err": round(float(error.mean()), 3), "abs_err_k": rounded(error.mean(0), 2),
                        "imagined_sum_mean": round(float(roll["reward"].sum(1).mean()), 2),
                        "z_mse_k": rounded((roll["z"] - real_z).pow(2).mean(-1).mean(0))}
    return result


# ------------------------------------------------------------------ DreamerV3 probe
def twohot_parts(logits: Tensor, bins: Tensor) -> dict[str, Tensor]:
    """Probability on far bins and the far / near bins' share of the expected value, per row, in float64."""
    probs, bins = logits.double().softmax(-1), bins.double()
    far = bins.abs() > FAR_BIN
    return {"far_mass": probs[:, far].sum(-1), "far": probs[:, far] @ bins[far], "near": probs[:, ~far] @ bins[~far]}


def head_summary(parts: dict[str, Tensor], as_trained: Tensor) -> dict[str, float]:
    """Means and stds across states of :func:`twohot_parts`, and the largest gap between the float64 expectation and
    ``as_trained``, the float32 one the agent computes (:func:`wam.losses.twohot_mean`)."""
    total = parts["far"] + parts["near"]
    return {"far_mass": round(float(parts["far_mass"].mean()), 5),
            "max_far_mass": round(float(parts["far_mass"].max()), 5),
            "mean": round(float(total.mean()), 4), "std": round(float(total.std()), 4),
            "far_mean": round(float(parts["far"].mean()), 4), "far_std": round(float(parts["far"].std()), 4),
            "near_mean": round(float(parts["near"].mean()), 4), "near_std": round(float(parts["near"].std()), 4),
            "f32_max_abs_err": round(float((as_trained.double() - total).abs().max()), 4)}


@torch.no_grad()
def dreamer_heads(agent, replay: Replay, batches: int) -> dict:
    """Reward head vs real reward, and far-bin mass / far vs near contributions of reward head and critic."""
    cfg = agent.config
    reward_logits, critic_logits, real = [], [], []
    for _ in range(batches):
        batch = {k: torch.as_tensor(v) for k, v in replay.sample(cfg.batch_size, cfg.seq_len).items()}
        _, _, post = agent.world_model_losses(batch)
        mask = post["mask"]
        reward_logits.append(agent.reward_head(post["feat"])[mask])  # (M, K)
        critic_logits.append(agent.critic(post["feat"])[mask])
        real.append(batch[REWARD].float()[mask])
    real, reward_logits, critic_logits = torch.cat(real).double(), torch.cat(reward_logits), torch.cat(critic_logits)
    reward = twohot_parts(reward_logits, agent.bins)
    predicted = reward["far"] + reward["near"]
    return {"states": len(real), "far_bin": FAR_BIN,
            "real_reward_mean": round(float(real.mean()), 4), "real_reward_std": round(float(real.std()), 4),
            "reward_corr": round(float(np.corrcoef(predicted.numpy(), real.numpy())[0, 1]), 3),
            "reward_near_corr": round(float(np.corrcoef(reward["near"].numpy(), real.numpy())[0, 1]), 3),
            "reward_mae": round(float((predicted - real).abs().mean()), 4),
            "reward_head": head_summary(reward, twohot_mean(reward_logits, agent.bins)),
            "critic": head_summary(twohot_parts(critic_logits, agent.bins), twohot_mean(critic_logits, agent.bins))}


# ------------------------------------------------------------------ entry point
def run_wam(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The four WAM probes on a reach-v3 run: one result dict per probe, and the run's config."""
    agent, replay, saved = load_checked(args.run, "wam", REACH, args.seed)
    model, train = agent.model, saved["train"]
    rng = np.random.default_rng(args.seed)
    return [
        {"probe": "wam/advantage_by_step",
         **advantage_by_step(model, replay, args.batches, train["wam"]["batch_size"], train["wam"]["seq_len"])},
        {"probe": "wam/history_dependence", **history_dependence(model, replay, args.states, rng)},
        {"probe": "wam/goal_direction", **goal_direction(agent, replay, list(train["obs"]), args.episodes, args.steps,
                                                         args.states, 10_000 + args.seed, rng)},
        {"probe": "wam/position_reward_error", **position_reward_error(model, replay, args.states, rng)},
    ], saved


def run_dreamerv3(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The DreamerV3 head probe: one result dict, and the run's config."""
    agent, replay, saved = load_checked(args.run, "dreamerv3", None, args.seed)
    return [{"probe": "dreamerv3/heads", **dreamer_heads(agent, replay, args.batches)}], saved


PROBES = {"wam": run_wam, "dreamerv3": run_dreamerv3}


def main() -> None:
    """Run one agent's probes and append a row per probe (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="agent", required=True)
    for name in PROBES:
        sub = commands.add_parser(name, help=f"probes of a {name} run")
        sub.add_argument("--run", type=Path, required=True, help="a finished run folder whose checkpoint holds a replay")
        sub.add_argument("--batches", type=int, default=4, help="replay batches (the run's batch size and length)")
        sub.add_argument("--label", default="")
        sub.add_argument("--seed", type=int, default=0)
        if name == "wam":
            sub.add_argument("--states", type=int, default=512, help="replayed states per window probe")
            sub.add_argument("--episodes", type=int, default=4, help="fresh episodes (one goal each)")
            sub.add_argument("--steps", type=int, default=100, help="steps per fresh episode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    results, saved = PROBES[args.agent](args)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for result in results:
        row = {"probe": result.pop("probe"), "label": args.label, "run": str(args.run), "env": saved["train"]["env"],
               "checkpoint_env_steps": saved["checkpoint_env_steps"], "seed": args.seed, **result,
               "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        print(json.dumps(row), flush=True)
        with OUT.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
