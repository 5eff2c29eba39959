"""The ``wam`` command: ``train``, ``eval``, ``plot``, ``data collect`` and ``bench`` — flags generated from dataclasses by tyro."""

from __future__ import annotations

import os
import sys

import tyro


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``wam`` console script."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    argv = sys.argv[1:] if argv is None else argv
    from wam.cli.data import CollectArgs, collect_cli
    from wam.cli.evaluate import EvalArgs, eval_cli
    from wam.cli.plot import PlotArgs, plot_cli
    from wam.cli.train import TrainArgs, train_cli

    commands = {
        "train": (TrainArgs, train_cli),
        "eval": (EvalArgs, eval_cli),
        "plot": (PlotArgs, plot_cli),
        "data collect": (CollectArgs, collect_cli),
    }
    try:
        from wam.cli.bench import BenchArgs, bench_cli

        commands["bench"] = (BenchArgs, bench_cli)
    except ImportError as e:  # the bench extra (rliable) is optional
        bench_error = e
    else:
        bench_error = None
    if argv[:1] == ["bench"] and bench_error is not None:
        raise SystemExit(f"wam bench needs the bench extra: pip install 'wam[bench]' ({bench_error})")
    # "data collect" is a two-word command: fold it into one token for tyro.
    if argv[:2] == ["data", "collect"]:
        argv = ["data-collect"] + argv[2:]
    parsers = {name.replace(" ", "-"): cls for name, (cls, _) in commands.items()}
    args = tyro.extras.subcommand_cli_from_dict(parsers, args=argv, prog="wam")
    from wam.data.collect import NoExpertError
    from wam.data.lerobot_schema import DatasetError
    from wam.envs.registry import MissingSimulatorError
    from wam.io.pretrained import CheckpointError
    from wam.training.signals import TrainingDiverged

    for cls, fn in commands.values():
        if type(args) is cls:
            try:
                fn(args)
            except (
                ValueError,
                KeyError,
                FileExistsError,
                NoExpertError,
                DatasetError,
                CheckpointError,
                MissingSimulatorError,
                TrainingDiverged,
                OSError,  # e.g. a full disk: the message names the file; checkpoints stay atomic
            ) as e:
                # User errors: print the message, not a traceback (set WAM_DEBUG=1 to see it).
                if os.environ.get("WAM_DEBUG"):
                    raise
                raise SystemExit(f"wam: error: {e}") from None
            return


if __name__ == "__main__":
    main()
