"""Learning-curve plots of run folders: reading logs, choosing panels, errors, and the `wam plot` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wam.cli.main import main
from wam.evaluation.plots import _labels, choose_panels, load_curve, plot_runs, select_metrics


def write_run(run: Path, success: list[float], metrics: dict[str, list[float]]) -> Path:
    """A fake run folder: one evaluation per 1000 env steps, one metrics row per 500."""
    run.mkdir(parents=True)
    with (run / "eval.jsonl").open("w") as f:
        for i, s in enumerate(success):
            f.write(
                json.dumps({"step": 1000 * i, "env_steps": 1000 * i, "eval/success": s, "eval/return": 10 * s}) + "\n"
            )
    n = len(next(iter(metrics.values())))
    with (run / "metrics.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"step": 500 * (i + 1), "time": 0.0, **{k: v[i] for k, v in metrics.items()}}) + "\n")
    return run


def test_load_curve_keeps_the_last_row_of_a_repeated_step_and_drops_nulls(tmp_path):
    path = tmp_path / "eval.jsonl"
    rows = [
        {"step": 0, "eval/return": 1.0},
        {"step": 10, "eval/return": 2.0, "note": "x"},
        {"step": 10, "eval/return": 3.0, "eval/success": None},
        {"step": 20, "eval/return": 4.0},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"step": 30, "eval/ret')  # a crash's cut-off line
    assert load_curve(path) == {"eval/return": [(0, 1.0), (10, 3.0), (20, 4.0)]}


def test_panels_drop_a_success_signal_that_is_always_zero(tmp_path):
    trains = [{"loss/a": [(1, 1.0)], "loss/b": [(1, 1.0)], "train/return": [(1, 0.0)]}]
    zero = [{"eval/success": [(0, 0.0), (10, 0.0)], "eval/return": [(0, 5.0)]}]
    some = [{"eval/success": [(0, 0.0), (10, 0.5)], "eval/return": [(0, 5.0)]}]
    assert choose_panels(zero, trains, ["train/return", "loss/*"]) == [
        ("eval/return", "evaluation"),
        ("train/return", "training"),
        ("loss/a", "training"),
        ("loss/b", "training"),
    ]
    assert choose_panels(zero + some, trains, ["loss/b"])[0] == ("eval/success", "evaluation")
    with pytest.raises(ValueError, match=r"no training metric matches \['wm/\*'\]; the runs log: loss/a, loss/b"):
        choose_panels(some, trains, ["wm/*"])
    assert select_metrics(["b", "a/1", "a/2"], ["b", "a/*", "b"]) == ["b", "a/1", "a/2"]
    # The default metrics are those of train/return and loss/* that the runs have: no error for the others.
    assert choose_panels(some, [{"loss/a": [(1, 1.0)], "wm/kl": [(1, 1.0)]}]) == [
        ("eval/success", "evaluation"),
        ("eval/return", "evaluation"),
        ("loss/a", "training"),
    ]


def test_plot_runs_writes_a_png_and_rejects_folders_that_are_not_runs(tmp_path):
    a = write_run(
        tmp_path / "wam" / "seed0", [0.0, 0.5], {"loss/total": [3.0, 2.0, 1.0], "train/return": [1.0, 2.0, 3.0]}
    )
    b = write_run(
        tmp_path / "dreamerv3" / "seed0", [0.0, 0.2], {"loss/total": [4.0, 3.0, 2.0], "train/return": [1.0, 1.0, 1.0]}
    )
    out = plot_runs([a, b], tmp_path / "plots" / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _labels([a, b]) == ["wam/seed0", "dreamerv3/seed0"]
    with pytest.raises(ValueError, match="is not a folder"):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither eval.jsonl nor metrics.jsonl"):
        plot_runs([tmp_path / "empty"], tmp_path / "x.png")


def test_wam_plot_command(tmp_path, capsys):
    run = write_run(tmp_path / "run", [0.0, 1.0], {"loss/total": [2.0, 1.0]})
    main(["plot", str(run)])
    assert (run / "curves.png").is_file() and f"wrote {run / 'curves.png'}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no training metric matches"):
        main(["plot", str(run), "--metrics", "nothing/*", "--out", str(tmp_path / "x.png")])
