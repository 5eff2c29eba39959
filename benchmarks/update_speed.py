"""Seconds per WAM update on this machine, by size preset and imagination starts (one thread, synthetic batch).

Times full optimiser steps (world-model and actor-critic losses, backward, AdamW) on a random batch shaped like
MetaWorld state training (39-d state, 4-d action, B=16, T=16), after two warm-up steps. With ``--profile`` it also
prints the operators that take the most time (``torch.profiler``). ``--device cuda`` times on a GPU, with the
forward pass in bfloat16 autocast as the WAM agent trains there (``--no-autocast`` for float32).

    python benchmarks/update_speed.py --sizes tiny small --starts 32 256
    python benchmarks/update_speed.py --device cuda --sizes small base large --starts 32 256

Appends one row per (size, starts) to ``benchmarks/results/update_speed.jsonl`` with the machine's load average:
other jobs on the machine slow these numbers down, so compare rows taken side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from wam.envs.spec import EnvSpec
from wam.data.synthetic import random_batch
from wam.models.config import WAMConfig
from wam.models.world_action_model import WorldActionModel

OUT = Path(__file__).resolve().parent / "results" / "update_speed.jsonl"


def seconds_per_update(
    size: str, starts: int, updates: int, profile: bool = False, device: str = "cpu", autocast: bool = True
) -> float:
    """Mean wall-clock seconds of ``updates`` optimiser steps of a ``size`` model imagining from ``starts`` states
    (on CUDA with the forward pass in bfloat16 autocast unless ``autocast`` is False)."""
    spec = EnvSpec(obs_shapes={"state": [39]}, action_dim=4)
    torch.manual_seed(0)
    model = WorldActionModel(WAMConfig.preset(size, spec=spec, context=16, imag_starts=starts)).to(device)
    opt = torch.optim.AdamW(model.parameters(), 3e-4)
    batch = {k: v.to(device) for k, v in random_batch(spec, 16, 16).items()}
    cuda = device.startswith("cuda")

    def step() -> None:
        with torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda and autocast):
            loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=15))
    t0 = time.perf_counter()
    for _ in range(updates):
        step()
    return (time.perf_counter() - t0) / updates


def main() -> None:
    """Parse flags, time each (size, starts) pair and append the rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--starts", nargs="+", type=int, default=[32])
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-autocast", action="store_true", help="on CUDA: float32 instead of bfloat16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        for starts in args.starts:
            load_before = os.getloadavg()[0]
            seconds = seconds_per_update(size, starts, args.updates, args.profile, args.device, not args.no_autocast)
            row = {
                "size": size,
                "imag_starts": starts,
                "seconds_per_update": round(seconds, 4),
                "updates": args.updates,
                "threads": 1,
                "device": args.device,
                "autocast": "bf16" if args.device.startswith("cuda") and not args.no_autocast else "off",
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "torch": torch.__version__,
                "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            }
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row))


if __name__ == "__main__":
    main()
