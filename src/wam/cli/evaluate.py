"""``wam eval RUN_OR_CHECKPOINT``: evaluate a saved agent with the shared protocol, optionally recording a video."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from wam.io.pretrained import CONFIG_NAME, CheckpointError
from wam.models.planning import MPPIConfig


@dataclass
class EvalArgs:
    """Evaluate a run folder (uses ``final/`` or its last checkpoint) or a ``save_pretrained`` folder."""

    path: tyro.conf.Positional[str]
    """Run folder or pretrained folder."""
    episodes: int = 10
    """Episodes to run."""
    envs: int = 1
    """Environments stepped together."""
    video: str | None = None
    """Write the first episode to this mp4."""
    seed: int = 10_000
    """Seed of the evaluation environments."""
    device: str = "auto"
    """``auto``, ``cpu`` or ``cuda``."""
    threads: int = 1
    """Torch CPU threads. One is fastest for these small networks, and far faster than torch's default of every core
    when another process is busy (an ``act()`` call: 2.6 ms on one thread vs 130 ms on two beside a training run)."""
    stochastic: bool = False
    """Sample actions from the policy instead of taking its mode (the benchmarks' protocol is deterministic)."""
    plan: bool = False
    """Act by MPPI planning in the model's imagination (WAM agents with box actions; slower per step)."""
    mppi: MPPIConfig = field(default_factory=MPPIConfig)
    """Planner settings used with ``--plan``."""


def _find_weights(path: Path) -> tuple[Path, dict]:
    """(pretrained folder, run config) for a run folder or a pretrained folder."""
    if (path / CONFIG_NAME).is_file() and (path / "model.safetensors").is_file():
        run_dir = path.parent
    else:
        run_dir = path
    candidates = [path, run_dir / "final", run_dir / "checkpoint" / "agent"]
    weights = next((c for c in candidates if (c / "model.safetensors").is_file()), None)
    if weights is None:
        raise CheckpointError(
            f"no saved agent under {path}; expected a run folder with final/ or checkpoint/, or a save_pretrained folder"
        )
    run_config = run_dir / "config.json"
    if not run_config.is_file():
        raise CheckpointError(
            f"{run_dir} has no config.json telling which environment to evaluate on; pass the run "
            "folder that `wam train --out` wrote (it holds config.json next to final/ and checkpoint/)"
        )
    try:
        run = json.loads(run_config.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{run_config} is not valid JSON ({e}); restore it from the run that wrote it") from e
    if not isinstance(run, dict) or not isinstance(run.get("train"), dict):
        raise CheckpointError(f"{run_config} is not a run config written by `wam train` (it has no 'train' section)")
    return weights, run


def eval_cli(args: EvalArgs) -> dict[str, float]:
    """Load the agent and its environment settings, evaluate, print and return the summary."""
    from wam.agents.registry import load_agent
    from wam.evaluation.evaluate import evaluate
    from wam.envs import make_vector
    from wam.io.pretrained import config_from_dict
    from wam.training.config import TrainConfig
    from wam.training.online import resolve_device

    if args.threads < 1:
        raise ValueError(f"--threads {args.threads} must be >= 1")
    import torch

    torch.set_num_threads(args.threads)
    weights, run = _find_weights(Path(args.path))
    train_cfg = config_from_dict(TrainConfig, run["train"])
    train_cfg.seed = args.seed
    agent = load_agent(weights, device=str(resolve_device(args.device)))
    if args.plan:
        if agent.name != "wam" or agent.spec.discrete:
            raise ValueError(
                f"--plan needs a WAM agent with box actions; {args.path} holds a {agent.name} agent"
                f"{' with discrete actions' if agent.spec.discrete else ''}"
            )
        agent.planner = args.mppi
    envs = make_vector(train_cfg.env_config(), args.envs, asynchronous=False)
    try:
        summary = evaluate(
            agent, envs, args.episodes, seed=args.seed, deterministic=not args.stochastic, video=args.video
        ).summary()
    finally:
        envs.close()
    policy = "stochastic" if args.stochastic else "deterministic"
    print(
        f"{train_cfg.env}: success {summary['eval/success']:.0%}, return {summary['eval/return']:.1f} over {args.episodes} "
        f"episodes ({policy} policy)"
    )
    return summary
