"""LeRobot v3.0 writer / reader and the sequence sampler, on small synthetic episodes (no simulator)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pyarrow.parquet as pq
import pytest

from wam.data.episodes import EpisodeDataset
from wam.data.lerobot import LeRobotWriter
from wam.data.lerobot_schema import CODEBASE_VERSION, DatasetError
from wam.data.sequences import SequenceSampler

H = W = 16
OBS_SPACE = gym.spaces.Dict(
    {
        "rgb": gym.spaces.Box(0, 255, (H, W, 3), np.uint8),
        "depth": gym.spaces.Box(0.0, 10.0, (H, W, 1), np.float32),
        "proprio": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
        "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
        "task": gym.spaces.Discrete(3),
    }
)
ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
BATCH_KEYS = {
    "rgb",
    "depth",
    "proprio",
    "state",
    "task",
    "action",
    "reward",
    "is_first",
    "is_last",
    "is_terminal",
    "mask",
}


def fake_episode(length: int, rng: np.random.Generator, terminal: bool = False) -> dict[str, np.ndarray]:
    """``length`` rows in the step convention, with random values of the right dtypes."""
    # Smooth images so the lossy codec has something realistic to compress.
    ramp = np.linspace(0, 200, W, dtype=np.float32)[None, :, None] + rng.uniform(0, 50, (length, 1, 1, 3))
    rgb = np.broadcast_to(ramp, (length, H, W, 3)).astype(np.uint8)
    ep = {
        "rgb": rgb,
        "depth": rng.uniform(0.0, 10.0, (length, H, W, 1)).astype(np.float32),
        "proprio": rng.normal(size=(length, 4)).astype(np.float32),
        "state": rng.normal(size=(length, 7)).astype(np.float32),
        "task": np.full(length, rng.integers(3), np.int64),
        "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32),
        "reward": rng.normal(size=length).astype(np.float32),
        "is_first": np.arange(length) == 0,
        "is_last": np.arange(length) == length - 1,
        "is_terminal": (np.arange(length) == length - 1) & terminal,
        "success": rng.random(length) < 0.3,
    }
    ep["action"][-1] = 0
    ep["reward"][0] = 0
    return ep


def write(root, episodes, **kwargs):
    with LeRobotWriter(root, OBS_SPACE, ACTION_SPACE, fps=20, env_name="fake/task", **kwargs) as writer:
        for i, ep in enumerate(episodes):
            writer.add_episode(ep, task=f"task-{i % 2}")
    return root


@pytest.fixture(scope="module")
def episodes():
    rng = np.random.default_rng(0)
    return [fake_episode(n, rng, terminal=(n == 3)) for n in (6, 11, 3)]


@pytest.fixture(scope="module")
def lossless_dir(tmp_path_factory, episodes):
    return write(tmp_path_factory.mktemp("data") / "ds", episodes, rgb_lossless=True)


def test_round_trip_is_exact(lossless_dir, episodes):
    ds = EpisodeDataset(lossless_dir)
    assert ds.num_episodes == 3 and len(ds) == 20 and ds.obs_keys == ["rgb", "depth", "proprio", "state", "task"]
    assert ds.tasks == ["task-0", "task-1"]
    for i, ep in enumerate(episodes):
        got = ds.episode(i)
        for key in (
            "rgb",
            "proprio",
            "state",
            "task",
            "action",
            "reward",
            "is_first",
            "is_last",
            "is_terminal",
            "success",
        ):
            np.testing.assert_array_equal(got[key], ep[key], err_msg=key)
            assert got[key].dtype == ep[key].dtype, key
        # Depth is stored as whole millimetres: exact to that quantisation, never off by more than 0.5 mm.
        expected = np.rint(ep["depth"].astype(np.float64) * 1000).astype(np.uint16).astype(np.float32) / np.float32(
            1000
        )
        np.testing.assert_array_equal(got["depth"], expected)
        assert np.abs(got["depth"] - ep["depth"]).max() <= 0.0005 + 1e-6
        assert got["depth"].dtype == np.float32


def test_lossy_rgb_is_close(tmp_path, episodes):
    ds = EpisodeDataset(write(tmp_path / "ds", episodes[:2]))
    err = np.abs(ds.episode(1)["rgb"].astype(int) - episodes[1]["rgb"].astype(int))
    assert err.mean() < 4, err.mean()
    np.testing.assert_array_equal(ds.episode(1)["state"], episodes[1]["state"])


def test_info_and_meta_follow_lerobot_v3(lossless_dir, episodes):
    info = json.loads((lossless_dir / "meta/info.json").read_text())
    assert info["codebase_version"] == CODEBASE_VERSION == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"], info["fps"]) == (3, 20, 2, 20)
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    for name in (
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
        "next.reward",
        "next.done",
        "action",
    ):
        assert {"dtype", "shape", "names"} <= set(feats[name]), name
    assert feats["observation.images.rgb"]["dtype"] == "video" and feats["observation.images.rgb"]["shape"] == [H, W, 3]
    assert feats["observation.images.depth"]["info"]["video.is_depth_map"] is True
    assert feats["observation.state"] == {
        "dtype": "float32",
        "shape": [7],
        "names": [f"state_{i}" for i in range(7)],
        "fps": 20,
    }
    for key in ("observation.images.rgb", "observation.images.depth"):
        assert (lossless_dir / info["video_path"].format(video_key=key, chunk_index=0, file_index=0)).is_file()
    data = pq.read_table(lossless_dir / info["data_path"].format(chunk_index=0, file_index=0)).to_pydict()
    assert data["index"] == list(range(20)) and data["frame_index"][:7] == [0, 1, 2, 3, 4, 5, 0]
    # LeRobot's next.reward is our reward shifted back by one row; next.done marks the last transition and the final row.
    np.testing.assert_allclose(data["next.reward"][:6], list(episodes[0]["reward"][1:]) + [0.0])
    assert data["next.done"][:6] == [False] * 4 + [True, True]
    eps = pq.read_table(lossless_dir / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert (
        eps["length"] == [6, 11, 3]
        and eps["dataset_from_index"] == [0, 6, 17]
        and eps["dataset_to_index"] == [6, 17, 20]
    )
    assert eps["tasks"] == [["task-0"], ["task-1"], ["task-0"]]
    assert eps["videos/observation.images.rgb/from_timestamp"] == [0.0, 6 / 20, 17 / 20]
    assert eps["success"] == [bool(ep["success"].any()) for ep in episodes]
    tasks = pq.read_table(lossless_dir / "meta/tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0, 1], "task": ["task-0", "task-1"]}
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    stats = json.loads((lossless_dir / "meta/stats.json").read_text())
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count"} and stats["action"]["count"] == [20]
    assert np.array(stats["observation.images.rgb"]["mean"]).shape == (3, 1, 1)
    all_state = np.concatenate([ep["state"] for ep in episodes])
    np.testing.assert_allclose(stats["observation.state"]["mean"], all_state.mean(0), rtol=1e-5, atol=1e-6)


def test_files_roll_over_and_still_read(tmp_path, episodes):
    root = write(tmp_path / "ds", episodes, rgb_lossless=True, data_file_mb=1e-6, video_file_mb=1e-6)
    assert len(list((root / "data/chunk-000").glob("file-*.parquet"))) == 3
    assert len(list((root / "videos/observation.images.depth/chunk-000").glob("file-*.mp4"))) == 3
    ds = EpisodeDataset(root)
    np.testing.assert_array_equal(ds.episode(2)["rgb"], episodes[2]["rgb"])
    np.testing.assert_array_equal(ds.episode(1)["action"], episodes[1]["action"])


def test_sampler_shapes_and_padding(lossless_dir):
    ds = EpisodeDataset(lossless_dir)
    sampler = SequenceSampler(ds, seq_len=5, batch_size=8, seed=0)
    assert sampler.num_windows == 2 + 7 + 1  # lengths 6, 11 and the padded 3
    batch = sampler.sample()
    assert set(batch) == BATCH_KEYS
    assert batch["rgb"].shape == (8, 5, H, W, 3) and batch["rgb"].dtype == np.uint8
    assert batch["depth"].shape == (8, 5, H, W, 1) and batch["depth"].dtype == np.float32
    assert batch["state"].shape == (8, 5, 7) and batch["action"].shape == (8, 5, 2) and batch["task"].shape == (8, 5)
    for key in ("reward", "is_first", "is_last", "is_terminal", "mask"):
        assert batch[key].shape == (8, 5), key
    assert batch["is_first"][:, 1:].sum() == 0  # windows never cross an episode start
    # The short episode's window: 3 real steps, then zero padding with mask False.
    short = sampler.windows(np.array([sampler.num_windows - 1]))
    np.testing.assert_array_equal(short["mask"][0], [True, True, True, False, False])
    np.testing.assert_array_equal(short["state"][0, :3], ds.episode(2)["state"])
    assert not short["state"][0, 3:].any() and not short["is_last"][0, 3:].any()
    assert short["is_terminal"][0, 2] and short["is_last"][0, 2]
    full = sampler.windows(np.array([3]))  # second window of episode 1 starts at its frame 1
    np.testing.assert_array_equal(full["proprio"][0], ds.episode(1)["proprio"][1:6])


def test_missing_or_corrupt_dataset_says_what_to_do(tmp_path, lossless_dir):
    with pytest.raises(DatasetError, match="wam data collect"):
        EpisodeDataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no meta/info.json"):
        EpisodeDataset(tmp_path / "empty")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(lossless_dir, broken)
    video = broken / "videos/observation.images.rgb/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[: len(video.read_bytes()) // 3])
    with pytest.raises(DatasetError, match="collect the dataset again"):
        EpisodeDataset(broken)
    video.unlink()
    with pytest.raises(DatasetError, match="missing video"):
        EpisodeDataset(broken)
    info = json.loads((broken / "meta/info.json").read_text())
    (broken / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(DatasetError, match="v2.1"):
        EpisodeDataset(broken)


def test_writer_refuses_bad_input_and_cleans_up(tmp_path, episodes):
    root = tmp_path / "ds"
    bad = dict(episodes[0], action=episodes[0]["action"].copy())
    bad["action"][-1] = 1.0
    with pytest.raises(ValueError, match="action must be zeros"):
        write(root, [episodes[1], bad])
    assert not root.exists() and not list(tmp_path.iterdir()), "a failed write must leave nothing behind"
    write(root, episodes[:1])
    with pytest.raises(FileExistsError, match="--overwrite"):
        write(root, episodes[:1])
    write(root, episodes[1:2], overwrite=True)
    assert EpisodeDataset(root).lengths.tolist() == [11]
