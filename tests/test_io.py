"""Checkpoint I/O: nested state without pickle, atomic writes, config round trips, clear errors."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from wam.io.pretrained import CheckpointError, config_from_dict, config_to_dict, read_config
from wam.io.state import load_state, save_state
from wam.training.config import TrainConfig


def test_optimizer_state_round_trip_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_state(opt.state_dict(), tmp_path / "opt")
    loaded = load_state(tmp_path / "opt")
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(loaded)
    for a, b in zip(opt.state.values(), fresh.state.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["step"], b["step"])
    assert b"pickle" not in (tmp_path / "opt.json").read_bytes()


def test_nested_state_with_numpy_and_tuples(tmp_path):
    state = {"a": (1, 2.5, "x"), "b": [np.arange(4), {"c": None, 3: torch.ones(2)}]}
    save_state(state, tmp_path / "s")
    out = load_state(tmp_path / "s")
    assert (
        out["a"] == (1, 2.5, "x")
        and np.array_equal(out["b"][0], np.arange(4))
        and torch.equal(out["b"][1][3], torch.ones(2))
    )


def test_train_config_round_trips_through_json():
    cfg = TrainConfig(env="metaworld/push-v3", obs=("proprio", "rgb"), steps=123)
    again = config_from_dict(TrainConfig, json.loads(json.dumps(config_to_dict(cfg))))
    assert again == cfg
    # A run saved before a field existed loads with its default (runs predating `antialias` were anti-aliased).
    old = {k: v for k, v in config_to_dict(replace(cfg, antialias=False)).items() if k != "antialias"}
    assert config_from_dict(TrainConfig, old).env_config().antialias is True
    assert replace(cfg, antialias=False).env_config().antialias is False


def test_unknown_config_fields_and_bad_json_raise(tmp_path):
    with pytest.raises(CheckpointError, match="unknown fields"):
        config_from_dict(TrainConfig, {"stepz": 3})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_config(tmp_path)


def test_rewinding_a_log_drops_what_came_after_the_checkpoint_and_keeps_appending(tmp_path):
    from wam.io.metrics import MetricsLogger, read_jsonl

    log = MetricsLogger(tmp_path, "episodes", tensorboard=False)
    for step in (10, 20, 30, 40):
        log.log(step, {"return": float(step)})
    log.rewind(25)  # resumed from a checkpoint at step 25: the episodes at 30 and 40 belong to a discarded future
    log.log(35, {"return": 1.0})
    log.close()
    assert [(r["step"], r["return"]) for r in read_jsonl(tmp_path / "episodes.jsonl")] == [
        (10, 10.0),
        (20, 20.0),
        (35, 1.0),
    ]
