"""Seconds per DreamerV3 update, and how many PyTorch operators one update dispatches (issue: baselines).

Why: the DMC check of ``benchmarks/dv3_dmc.py`` needs ~25k updates of ``size12m``. On the H200 that was lent to one
session, two such runs side by side made 2.5 updates/s each (``benchmarks/results/dv3_dmc.md``), so one run would
need ~2.8 h of GPU. This script shows where an update's time goes: it times full updates on a random batch shaped
like DMC proprio training (B=16, T=64, a 5-d observation, a 1-d action) and counts the operator calls of one update
(``torch.profiler``). When seconds per update is close to operators × the per-operator dispatch cost, the update is
bound by Python / dispatch overhead (fixable with CUDA graphs or ``torch.compile``), not by arithmetic; the row's
``matmul_share`` (the profiled time's share in matrix products) tells the same from the other side.

    python benchmarks/dv3_update_speed.py --sizes debug size1m --updates 3
    python benchmarks/dv3_update_speed.py --device cuda --sizes size1m size12m --updates 20 --profile
    python benchmarks/dv3_update_speed.py --sizes size1m --no-action-norm --actor-grad reinforce backprop

Appends one row per size to ``benchmarks/results/dv3_update_speed.jsonl`` (with the load average: other jobs on the
machine slow CPU numbers down).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from wam.agents.dreamerv3.agent import DreamerV3Agent
from wam.agents.dreamerv3.config import DreamerV3Config
from wam.agents.spec import EnvSpec
from wam.data.synthetic import random_batch

OUT = Path(__file__).resolve().parent / "results" / "dv3_update_speed.jsonl"
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(size: str, updates: int, device: str = "cpu", profile: bool = False, **overrides) -> dict:
    """Time ``updates`` DreamerV3 updates of preset ``size`` (after two warm-ups) and count one update's operators.

    ``overrides`` are ``DreamerV3Config`` fields on top of the preset (e.g. ``actor_grad="backprop"``).
    """
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    spec = EnvSpec(obs_shapes={"proprio": [5]}, action_dim=1)
    torch.manual_seed(0)
    agent = DreamerV3Agent(DreamerV3Config.preset(size, **overrides), spec).to(device)
    cfg = agent.config
    batch = random_batch(spec, cfg.batch_size, cfg.seq_len)
    for _ in range(2):
        agent.update(batch)
    _sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with torch_profile(activities=activities) as prof:
        agent.update(batch)
        _sync(device)
    events = prof.key_averages()
    operators = sum(e.count for e in events if e.key.startswith("aten::"))
    kernels = sum(e.count for e in events if getattr(e, "device_type", None) is not None
                  and str(e.device_type).endswith("CUDA") and not e.key.startswith("aten::"))
    # Share of the profiled time spent in matrix products: high means arithmetic-bound, low means overhead-bound.
    timed = "self_device_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    total = sum(getattr(e, timed, 0) for e in events) or 1
    matmul_share = sum(getattr(e, timed, 0) for e in events if e.key in MATMUL_OPS) / total
    if profile:
        sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
        print(events.table(sort_by=sort, row_limit=20))
    t0 = time.perf_counter()
    for _ in range(updates):
        agent.update(batch)
    _sync(device)
    seconds = (time.perf_counter() - t0) / updates
    params = sum(p.numel() for p in agent.parameters() if p.requires_grad)
    return {"size": size, "actor_grad": cfg.actor_grad, "action_norm": cfg.action_norm, "params": params,
            "batch": [cfg.batch_size, cfg.seq_len], "seconds_per_update": round(seconds, 4),
            "updates": updates, "aten_ops_per_update": operators, "cuda_kernels_per_update": kernels,
            "us_per_op": round(1e6 * seconds / max(operators, 1), 2), "matmul_share": round(matmul_share, 3),
            "device": device,
            "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads(), "load_avg_1min": round(os.getloadavg()[0], 2),
            "torch": torch.__version__, "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main() -> None:
    """Parse flags, measure each size and append the rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["debug", "size1m"])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="print the operators that take the most time")
    parser.add_argument("--actor-grad", nargs="+", default=["reinforce"], choices=["reinforce", "backprop"],
                        help="actor gradient estimator(s) to time, each on every size")
    parser.add_argument("--no-action-norm", action="store_true", help="action embedding without its RMSNorm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        for actor_grad in args.actor_grad:
            row = measure(size, args.updates, args.device, args.profile, actor_grad=actor_grad,
                          action_norm=not args.no_action_norm)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
