"""``wam train``: flags generated from :class:`~wam.training.config.TrainConfig`; ``--resume RUN`` continues a run."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from wam.io.pretrained import CheckpointError, config_from_dict
from wam.training.config import TrainConfig


@dataclass
class TrainArgs(TrainConfig):
    """Train an agent online. Example: wam train --env metaworld/reach-v3 --obs state --steps 50000 --out runs/reach"""

    resume: str | None = None
    """Continue the run in this folder from its last checkpoint (its saved config is used; other flags except
    ``--extend-to`` are ignored). A copied or moved run folder resumes where it now is. Ctrl-C or SIGTERM writes a
    checkpoint at the current env step before stopping, so a resumed run loses nothing but the episodes in progress
    (environments are re-seeded with seed + env steps so far)."""
    extend_to: int | None = None
    """With ``--resume``: raise the run's budget to this many env steps (a finished run then trains on; the replay
    keeps its capacity, so a full one starts dropping its oldest steps)."""
    coupling: str | None = None
    """Shortcut for the chosen agent's ``coupling`` (``--wamq.coupling`` or ``--wam.coupling``: ``coupled`` or
    ``decoupled``)."""

    def to_config(self) -> TrainConfig:
        """The :class:`TrainConfig` these flags describe (shortcuts applied; ``--resume`` is not read here)."""
        fields = {k: getattr(self, k) for k in TrainConfig.__dataclass_fields__}
        if self.coupling is not None:
            agent_cfg = fields.get(self.agent)
            if not hasattr(agent_cfg, "coupling"):
                raise ValueError(f"--coupling applies to the WAM agents (wamq, wam); agent {self.agent!r} has none")
            fields[self.agent] = replace(agent_cfg, coupling=self.coupling)
        return TrainConfig(**fields)


def _load_run_config(run_dir: Path) -> TrainConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(f"cannot resume: no config.json in {run_dir}; is it a wam run folder?")
    try:
        return config_from_dict(TrainConfig, json.loads(path.read_text())["train"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"cannot resume: {path} is not a valid run config ({e!r}); restore it from a copy") from e


def train_cli(args: TrainArgs) -> dict[str, float]:
    """Run (or resume) training and print the final evaluation."""
    from wam.training.online import train
    from wam.training.signals import TrainingStopped

    if args.extend_to is not None and args.resume is None:
        raise ValueError("--extend-to needs --resume RUN (it extends an existing run's budget)")
    if args.resume is not None:
        # The folder given is the run, wherever it was first written (a copied or moved run resumes in place).
        cfg, resume = replace(_load_run_config(Path(args.resume)), out=str(args.resume)), True
        if args.extend_to is not None:  # the trainer records the new budget in the run's config.json
            if args.extend_to < cfg.steps:
                raise ValueError(
                    f"--extend-to {args.extend_to} is below the run's budget of {cfg.steps} env steps; "
                    "a budget can only grow"
                )
            cfg = replace(cfg, steps=args.extend_to)
    else:
        cfg, resume = args.to_config(), False
    try:
        summary = train(cfg, resume=resume)
    except TrainingStopped as e:
        print(f"wam: {e}", file=sys.stderr, flush=True)
        raise SystemExit(128 + e.signum) from None
    if not summary:  # a rank > 0 of a torchrun run: rank 0 evaluates and reports
        return summary
    print(
        f"final: success {summary['eval/success']:.0%} return {summary['eval/return']:.1f} "
        f"({summary['eval/episodes']:.0f} episodes, {summary['env_steps']:.0f} env steps) -> {cfg.out}"
    )
    _plot_curves(Path(cfg.out))
    return summary


def _plot_curves(run_dir: Path) -> None:
    """Draw the finished run's curves into ``curves.png``; a failure here is reported, never fatal (training is saved)."""
    from wam.evaluation.plots import plot_runs

    try:
        print(f"curves: {plot_runs([run_dir], run_dir / 'curves.png')}")
    except Exception as e:  # noqa: BLE001 — the run is complete; `wam plot` can retry
        print(
            f"wam: could not plot the curves ({type(e).__name__}: {e}); retry with `wam plot {run_dir}`",
            file=sys.stderr,
        )
