"""Replay: windows never cross episodes, masks pad short episodes, save → load is exact."""

import json

import numpy as np
import pytest

from wam.envs.spec import EnvSpec
from wam.data.replay import Replay
from wam.io.pretrained import CheckpointError


def fill(replay: Replay, lengths: list[int]) -> None:
    """Write episodes of the given lengths into env 0 with state = (episode id, step)."""
    for ep, length in enumerate(lengths):
        for t in range(length + 1):  # length actions -> length + 1 observations
            replay.add(
                {
                    "state": np.array([[ep, t]], np.float32),
                    "rgb": np.full((1, 16, 16, 3), ep, np.uint8),
                    "action": np.zeros((1, 2), np.float32),
                    "reward": np.array([float(t)], np.float32),
                    "is_first": np.array([t == 0]),
                    "is_last": np.array([t == length]),
                    "is_terminal": np.array([False]),
                }
            )


def test_windows_stay_inside_one_episode_and_mask_padding():
    replay = Replay(EnvSpec({"state": [2], "rgb": [16, 16, 3]}, 2, False), capacity=1000, num_envs=1)
    fill(replay, [3, 20, 2, 30])
    batch = replay.sample(256, 8)
    assert batch["state"].shape == (256, 8, 2) and batch["rgb"].dtype == np.uint8 and batch["mask"].shape == (256, 8)
    for b in range(256):
        valid = batch["mask"][b]
        assert valid[0]
        assert not np.any(np.diff(valid.astype(int)) > 0), "mask must be a prefix"
        episodes = batch["state"][b, valid, 0]
        assert np.all(episodes == episodes[0])
        steps = batch["state"][b, valid, 1]
        assert np.all(np.diff(steps) == 1)


def test_ring_buffer_evicts_oldest_and_reports_memory():
    replay = Replay(EnvSpec({"state": [2]}, 2, False), capacity=50, num_envs=1)
    fill(replay, [30, 30])
    assert len(replay) == 50
    assert replay.nbytes > 0
    assert replay.sample(64, 4)["state"][..., 0].min() >= 0


def test_save_load_round_trip_is_exact(tmp_path):
    spec = EnvSpec({"state": [2], "rgb": [16, 16, 3]}, 2, False)
    replay = Replay(spec, capacity=200, num_envs=1, seed=3)
    fill(replay, [10, 15])
    replay.save(tmp_path)
    other = Replay(spec, capacity=200, num_envs=1, seed=99)
    other.load(tmp_path)
    a, b = replay.sample(16, 5), other.sample(16, 5)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_wrong_leading_dim_and_empty_sampling_raise():
    replay = Replay(EnvSpec({"state": [2]}, 2, False), capacity=10, num_envs=2)
    with pytest.raises(RuntimeError, match="empty"):
        replay.sample(1, 2)
    with pytest.raises(ValueError, match="num_envs"):
        fill(replay, [1])


def test_save_stores_only_written_rows_and_round_trips_after_a_wrap(tmp_path):
    spec = EnvSpec({"state": [2]}, 2, False)
    early = Replay(spec, capacity=100_000, num_envs=1)
    fill(early, [10])
    early.save(tmp_path / "early")
    assert (tmp_path / "early" / "replay.safetensors").stat().st_size < 2_000  # 11 rows, not 100k
    wrapped = Replay(spec, capacity=50, num_envs=1, seed=1)
    fill(wrapped, [30, 30])  # 62 rows into 50: the ring has wrapped, so every row is stored
    wrapped.save(tmp_path / "wrapped")
    for source, directory in ((early, "early"), (wrapped, "wrapped")):
        other = Replay(spec, capacity=source.per_env, num_envs=1, seed=99)
        other.data["state"][:] = 7.0  # stale rows past the stored ones must not survive the load
        other.load(tmp_path / directory)
        for key in source.data:
            assert np.array_equal(source.data[key], other.data[key]), (directory, key)
        assert np.array_equal(source.head, other.head) and np.array_equal(source.count, other.count)


def test_load_rejects_a_replay_of_another_capacity_or_with_bad_pointers(tmp_path):
    spec = EnvSpec({"state": [2]}, 2, False)
    replay = Replay(spec, capacity=50, num_envs=1)
    fill(replay, [30, 30])
    replay.save(tmp_path)
    for capacity in (40, 60):
        with pytest.raises(CheckpointError, match="capacity"):
            Replay(spec, capacity=capacity, num_envs=1).load(tmp_path)
    # A checkpoint from before the ring's size was recorded (it stored every row) still loads, into the same capacity.
    meta = json.loads((tmp_path / "replay.json").read_text())
    del meta["per_env"]
    (tmp_path / "replay.json").write_text(json.dumps(meta))
    Replay(spec, capacity=50, num_envs=1).load(tmp_path)
    with pytest.raises(CheckpointError, match="capacity"):
        Replay(spec, capacity=60, num_envs=1).load(tmp_path)
    meta = (tmp_path / "replay.json").read_text().replace('"count": [50]', '"count": [51]')
    (tmp_path / "replay.json").write_text(meta)
    with pytest.raises(CheckpointError, match="inconsistent"):
        Replay(spec, capacity=50, num_envs=1).load(tmp_path)
