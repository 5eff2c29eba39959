"""Diagnostic: on MetaWorld ``reach-v3`` (obs=state), which way do the world model and the actor loss push actions?

The goal is in the state (indices 36:39) and the hand at 0:3, so at every replayed start state the direction that
pays is known: hand → goal. On batches of a finished WAM run's replay (its last checkpoint), in the training
contexts the actor loss uses (:func:`wam.models.objective._branch_points`), it measures the mean cosine with that
direction (and the fraction of starts where it is positive) of

* ``model_reward``: d(Σ imagined reward over the horizon) / d(first action), the policy's own actions held fixed;
* ``model_value``: d(V(h_H)) / d(first action) — what the critic's bootstrap says;
* ``actor[...]``: the ascent direction of the actor loss on the policy's pre-tanh mean at the start states, for
  each estimator, with the run's entropy bonus and without it.

If the model terms point at the goal but the actor's ascent does not, the actor loss loses the model's signal.
Two checks of what the actor could use, on the same batches: ``reward_fit`` — the reward head on the real sequence
(teacher-forced), its correlation with the replayed rewards and its mean prediction per band of real reward; and
``goal_in_h`` — how well a linear map (least squares on 3/4 of the states, scored on the rest) reads hand → goal
from ``h`` (what the policy reads) and from the encoder latent ``z``: mean error in metres and mean cosine.

    python benchmarks/actor_signal.py --run runs/bench/quick-state/wam/metaworld-reach-v3/seed0 --label grid-seed0-50k

Appends one row per call to ``benchmarks/results/actor_signal.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from staged_actor import freeze_world_model, load_run
from wam.constants import ACTION, IS_TERMINAL, MASK, REWARD
from wam.models import objective
from wam.models.nn.tokenizers import prepare_obs

OUT = Path(__file__).resolve().parent / "results" / "actor_signal.jsonl"
HAND, GOAL = slice(0, 3), slice(36, 39)


def _cosines(vectors: np.ndarray, directions: np.ndarray) -> dict[str, float]:
    """Mean cosine of each row with its direction, and the fraction of positive ones."""
    cos = (vectors * directions).sum(1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(directions, axis=1) + 1e-12)
    return {"cos": round(float(cos.mean()), 3), "positive": round(float((cos > 0).mean()), 3)}


def model_gradients(model, batch: dict[str, torch.Tensor], starts: int) -> dict[str, dict[str, float]]:
    """Cosines of d(imagined reward sum) and d(V(h_H)) w.r.t. the first action with hand → goal, in training contexts."""
    params = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    z = model.encoder(prepare_obs(batch, model.spec))
    h, _, cache = model.observe(z, model.action_features(batch[ACTION]), batch[MASK].bool())
    b, t, start_cache = objective._branch_points(batch[MASK].bool() & ~batch[IS_TERMINAL].bool(), starts, cache)
    state = batch["state"][b, t].float()
    to_goal = (state[:, GOAL] - state[:, HAND]).numpy()
    horizon = model.config.horizon
    with torch.no_grad():
        planned = model.rollout(start_cache, h[b, t], z[b, t], 2 * t, horizon)["action"]
    actions = planned.clone().requires_grad_(True)
    roll = model.rollout(start_cache, h[b, t], z[b, t], 2 * t, horizon, actions=actions, detach_inputs=False)
    out = {}
    for name, target in (("model_reward", roll["reward"].sum()), ("model_value", model.value.mean(roll["h"][:, -1]).sum())):
        grad = torch.autograd.grad(target, actions, retain_graph=True)[0][:, 0, :3].numpy()
        out[name] = _cosines(grad, to_goal)
    for p, flag in zip(model.parameters(), params):
        p.requires_grad_(flag)
    return out


@torch.no_grad()
def reward_fit_and_features(model, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Teacher-forced predicted and real rewards of the batch's transitions, and (h, z, hand → goal) at real steps."""
    z = model.encoder(prepare_obs(batch, model.spec))
    h, g, _ = model.observe(z, model.action_features(batch[ACTION]), batch[MASK].bool())
    valid = batch[MASK].bool()
    transition = valid[:, 1:]
    predicted = model.reward.mean(g[:, :-1])[transition].numpy()
    real = batch[REWARD][:, 1:].float()[transition].numpy()
    state = batch["state"][valid].float()
    features = {"h": model._policy_input(h)[valid].numpy(), "z": z[valid].numpy(),
                "to_goal": (state[:, GOAL] - state[:, HAND]).numpy()}
    return predicted, real, features


def linear_readout(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares map x → y fitted on the first 3/4 of the rows, scored on the rest (error in y's units, cosine)."""
    n = len(x) * 3 // 4
    x1 = np.c_[x, np.ones(len(x))]
    weights, *_ = np.linalg.lstsq(x1[:n], y[:n], rcond=None)
    predicted = x1[n:] @ weights
    return {"error_m": round(float(np.linalg.norm(predicted - y[n:], axis=1).mean()), 4),
            "baseline_error_m": round(float(np.linalg.norm(y[n:] - y[:n].mean(0), axis=1).mean()), 4),
            **_cosines(predicted, y[n:])}


def actor_ascent(agent, batch: dict[str, torch.Tensor], estimator: str, entropy: float, seed: int) -> dict[str, float]:
    """Cosine with hand → goal of the actor loss's ascent direction on the policy mean at the rollouts' start states."""
    model = agent.model
    model.config.actor_grad, model.config.entropy = estimator, entropy
    captured: dict[str, object] = {"outputs": []}
    branch = objective._branch_points

    def recording_branch(*args, **kwargs):
        result = branch(*args, **kwargs)
        captured["starts"] = result[:2]
        return result

    def keep_output(_module, _inputs, output):
        output.retain_grad()
        captured["outputs"].append(output)

    handle = model.policy.net.register_forward_hook(keep_output)
    objective._branch_points = recording_branch
    try:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)
        loss, _ = model(batch)
        loss.backward()
    finally:
        objective._branch_points = branch
        handle.remove()
    b, t = captured["starts"]
    state = batch["state"][b, t].float()
    to_goal = (state[:, GOAL] - state[:, HAND]).numpy()
    # The policy at the start states is evaluated twice: when the rollout samples the first action (first call,
    # (N, 2A)) and when the loss reads log-probabilities / entropy over all imagined states (last call, (N, H+.., 2A)).
    first, last = captured["outputs"][0], captured["outputs"][-1]
    grad = sum(g for g in (first.grad, None if last.grad is None else last.grad[:, 0]) if g is not None)
    return _cosines(-grad[:, :3].numpy(), to_goal)


def main() -> None:
    """Measure the direction of the model's and the actor's action gradients (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a WAM reach-v3 run whose checkpoint holds a replay")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--label", default="")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (imagination, policy samples); "
                        "replay sampling continues the run's own sampler state, restored with the replay")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    agent, replay, saved = load_run(args.run, args.seed)
    if saved["train"]["env"] != "metaworld/reach-v3" or "state" not in saved["train"]["obs"]:
        raise SystemExit(f"{args.run} is not a reach-v3 run from state; the probe reads the goal from the state")
    run_entropy = agent.model.config.entropy
    freeze_world_model(agent, fresh_actor=False)  # only policy and value take gradient; model losses off
    rows: dict[str, list[dict[str, float]]] = {}
    for i in range(args.batches):
        batch = {k: torch.as_tensor(v) for k, v in replay.sample(agent.config.batch_size, agent.config.seq_len).items()}
        for name, value in model_gradients(agent.model, batch, agent.model.config.imag_starts).items():
            rows.setdefault(name, []).append(value)
        for estimator in ("reinforce", "pathwise"):
            for entropy in (run_entropy, 0.0):
                name = f"actor[{estimator}, entropy {entropy:g}]"
                rows.setdefault(name, []).append(actor_ascent(agent, batch, estimator, entropy, args.seed + i))
    summary = {name: {k: round(float(np.mean([v[k] for v in values])), 3) for k in values[0]} for name, values in rows.items()}
    predicted, real, features = zip(*(reward_fit_and_features(agent.model, {
        k: torch.as_tensor(v) for k, v in replay.sample(agent.config.batch_size, agent.config.seq_len).items()})
        for _ in range(4 * args.batches)))
    predicted, real = np.concatenate(predicted), np.concatenate(real)
    bands = ((0, 1), (1, 2), (2, 4), (4, 7), (7, 11))
    reward_fit = {"corr": round(float(np.corrcoef(predicted, real)[0, 1]), 3), "bands": [
        {"real": [lo, hi], "count": int(((real >= lo) & (real < hi)).sum()),
         "predicted_mean": round(float(predicted[(real >= lo) & (real < hi)].mean()), 2) if ((real >= lo) & (real < hi)).any() else None}
        for lo, hi in bands]}
    to_goal = np.concatenate([f["to_goal"] for f in features])
    goal_in_h = {name: linear_readout(np.concatenate([f[name] for f in features]), to_goal) for name in ("h", "z")}
    row = {"label": args.label, "run": str(args.run), "batches": args.batches, **summary, "reward_fit": reward_fit,
           "goal_in_h": goal_in_h}
    print(json.dumps(row, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
