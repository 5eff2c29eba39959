"""Diagnostic: how fast does the WAM world model learn to predict reward, next to a plain MLP on raw state?

Trains a fresh WAM on world-model losses only (actor/critic weights 0) on the replay saved in a run's
checkpoint, and, on the same batches, an MLP regressing reward from the raw state. Every ``--every`` updates it
reports the correlation between predicted and real rewards on held-out windows, and how well the one-step
next-latent prediction decodes back to the real next state (``pred_err``, mean |error| in symlog units) next to
"nothing moves" (``copy_err``: the current state as the guess) and plain reconstruction (``recon_err``).

    python benchmarks/wm_probe.py --run runs/bench_state/wam_reach-v3_s0 --updates 800
    python benchmarks/wm_probe.py --run runs/bench_state/wam_reach-v3_s0 --updates 800 --no-reward-on-latent
    python benchmarks/wm_probe.py --run runs/explore/res_reinforce --updates 750 --every 250 [--residual-dynamics]

Writes ``benchmarks/results/wm_probe.jsonl`` (one row per report) and prints a table.
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
from wam.io.pretrained import config_from_dict
from wam.models.nn.tokenizers import mlp, prepare_obs
from wam.training.config import TrainConfig

OUT = Path(__file__).resolve().parent / "results" / "wm_probe.jsonl"


def correlation(pred: torch.Tensor, real: torch.Tensor) -> float:
    """Pearson correlation of two flat tensors."""
    return float(np.corrcoef(pred.numpy(), real.numpy())[0, 1])


def main() -> None:
    """Run the probe (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder whose checkpoint holds a replay")
    parser.add_argument("--updates", type=int, default=800)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reward-on-latent", action="store_true", help="train the reward head on g_t only (the old default)")
    parser.add_argument("--residual-dynamics", action="store_true", help="predict z_{t+1} as z_t plus a change (WAMConfig.residual_dynamics)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    saved = json.loads((args.run / "config.json").read_text())
    spec, train = EnvSpec(**saved["spec"]), config_from_dict(TrainConfig, saved["train"])
    if "state" not in spec.obs_shapes:
        raise SystemExit("the probe compares against raw state; use a run trained with --obs state")
    replay = Replay(spec, train.replay_capacity, train.num_envs, seed=args.seed)
    replay.load(args.run / "checkpoint" / "replay")
    extra = {"residual_dynamics": args.residual_dynamics}
    agent = WAMAgent(WAMAgentConfig(lr=args.lr, seq_len=train.wam.seq_len, batch_size=train.wam.batch_size, extra=extra), spec)
    model = agent.model
    model.config.loss_scales.update(actor=0.0, critic=0.0, slow_critic=0.0)
    model.config.imag_starts, model.config.horizon = 1, 1  # imagination is unused with zero actor/critic weights
    model.config.reward_on_latent = not args.no_reward_on_latent
    probe = mlp(spec.obs_shapes["state"][0], 256, 1)
    probe_opt = torch.optim.Adam(probe.parameters(), lr=args.lr)
    held_out = {k: torch.as_tensor(v) for k, v in replay.sample(64, model.config.context).items()}
    rows, t0 = [], time.time()
    for step in range(args.updates + 1):
        batch = {k: torch.as_tensor(v) for k, v in replay.sample(agent.config.batch_size, model.config.context).items()}
        agent.update(batch)
        mask = batch["mask"].bool()
        probe_loss = (probe(batch["state"]).squeeze(-1) - batch["reward"]).pow(2)[mask].mean()
        probe_opt.zero_grad()
        probe_loss.backward()
        probe_opt.step()
        if step % args.every:
            continue
        with torch.no_grad():
            inputs = prepare_obs(held_out, spec)
            z = model.encoder(inputs)
            _, g, _ = model.observe(z, model.action_features(held_out["action"]), held_out["mask"].bool())
            valid = held_out["mask"][:, 1:].bool()
            real = held_out["reward"][:, 1:][valid]
            next_state = inputs["state"][:, 1:]

            def error(guess: torch.Tensor) -> float:
                return float((guess - next_state).abs().mean(-1)[valid].mean())

            predicted = model.decoder(model.next_latent(g[:, :-1], z[:, :-1]))["state"]
            row = {"update": step, "wam_reward_corr": correlation(model.reward.mean(g[:, :-1])[valid], real),
                   "mlp_on_state_corr": correlation(probe(held_out["state"][:, 1:]).squeeze(-1)[valid], real),
                   "pred_err": error(predicted), "copy_err": error(inputs["state"][:, :-1]),
                   "recon_err": error(model.decoder(z[:, 1:])["state"]),
                   "seconds": time.time() - t0, "run": str(args.run), "lr": args.lr,
                   "reward_on_latent": model.config.reward_on_latent, "residual_dynamics": args.residual_dynamics}
        rows.append(row)
        print(f"{step:5d}  WAM reward head r={row['wam_reward_corr']:.3f}   MLP on raw state r={row['mlp_on_state_corr']:.3f}   "
              f"next-state error {row['pred_err']:.3f} (copy {row['copy_err']:.3f}, reconstruction {row['recon_err']:.3f})", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
