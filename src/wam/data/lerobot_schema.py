"""The LeRobot v3.0 dataset format: layout, features, statistics and the validation of ``meta/info.json``.

:class:`~wam.data.lerobot.LeRobotWriter` writes this format (pyarrow + the ffmpeg of imageio, no ``lerobot``);
:class:`~wam.data.episodes.EpisodeDataset` reads it.

Layout (``{chunk}``/``{file}`` are 3-digit; a new file starts when one grows past ``*_files_size_in_mb``)::

    meta/info.json                                    schema, fps, counts, path templates, our "wam" block
    meta/stats.json                                   min / max / mean / std / count of every numeric feature
    meta/tasks.parquet                                task string -> task_index
    meta/episodes/chunk-000/file-000.parquet          one row per episode: length, frame range, file + video offsets
    data/chunk-000/file-000.parquet                   one row per frame
    videos/observation.images.rgb/chunk-000/file-000.mp4     H.264, lossy (or lossless RGB on request)
    videos/observation.images.depth/chunk-000/file-000.mp4   FFV1, uint16 millimetres, lossless

Step convention (``wam.agents.base``): row ``t`` holds obs_t, the action taken at obs_t, and ``reward`` received
on arriving at obs_t. Each episode also stores its final observation as a last row with a zero action, so an
episode of T environment steps has T+1 rows. LeRobot's ``next.*`` columns are written too, shifted by one:
``next.reward[t] = reward[t+1]`` (0 on the last row), ``next.done[t] = is_last[t+1]`` (True on the last row),
``next.success[t] = success[t+1]`` (the last row repeats its own). See docs/data.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow as pa

from wam.constants import (
    ACTION,
    DEPTH,
    IS_FIRST,
    IS_LAST,
    IS_TERMINAL,
    OBS_KEYS,
    PROPRIO,
    REWARD,
    RGB,
    STATE,
    SUCCESS,
    TASK,
)
from wam.data import video as vid

CODEBASE_VERSION = "v3.0"
#: Version of the ``wam`` block of info.json (our extra columns and their meaning).
WAM_FORMAT_VERSION = 1
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100.0
VIDEO_FILE_MB = 500.0
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"

#: Our observation keys -> LeRobot feature names.
FEATURE_KEYS: dict[str, str] = {
    RGB: "observation.images.rgb",
    DEPTH: "observation.images.depth",
    PROPRIO: "observation.proprio",
    STATE: "observation.state",
    TASK: "observation.task",
}
#: Per-step keys of the batch convention besides observations, stored under the same names.
STEP_KEYS: tuple[str, ...] = (ACTION, REWARD, IS_FIRST, IS_LAST, IS_TERMINAL)


class DatasetError(RuntimeError):
    """A dataset directory is missing, incomplete or corrupt; the message says what to do."""


def _scalar(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [1], "names": None}


def build_features(
    obs_space: gym.spaces.Dict, action_space: gym.Space, fps: float, rgb_lossless: bool = False
) -> dict[str, dict]:
    """The ``features`` block of info.json for an environment's observation and action spaces."""
    feats: dict[str, dict] = {}
    for key, space in obs_space.spaces.items():
        if key not in FEATURE_KEYS:
            raise ValueError(f"cannot store observation key {key!r}; known keys are {list(OBS_KEYS)}")
        name = FEATURE_KEYS[key]
        if key in (RGB, DEPTH):
            h, w, c = space.shape
            codec = vid.CODECS["depth" if key == DEPTH else ("rgb_lossless" if rgb_lossless else "rgb")]
            info = {
                "video.fps": fps,
                "video.height": h,
                "video.width": w,
                "video.channels": c,
                "video.codec": codec.codec,
                "video.pix_fmt": codec.pix_fmt,
                "video.is_depth_map": key == DEPTH,
                "video.lossless": codec.lossless,
                "has_audio": False,
            }
            if key == DEPTH:
                info.update({"video.depth_unit": "mm", "video.depth_scale_m": vid.DEPTH_SCALE_M})
            feats[name] = {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"], "info": info}
        elif key == TASK:
            feats[name] = _scalar("int64")
        else:
            feats[name] = {
                "dtype": "float32",
                "shape": [int(space.shape[0])],
                "names": [f"{key}_{i}" for i in range(space.shape[0])],
            }
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        n = int(action_space.shape[0])
        feats[ACTION] = {"dtype": "float32", "shape": [n], "names": [f"action_{i}" for i in range(n)]}
    elif isinstance(action_space, gym.spaces.Discrete):
        feats[ACTION] = _scalar("int64")
    else:
        raise ValueError(f"can only store 1-d Box or Discrete actions, got {action_space}")
    for name, dtype in [
        ("next.reward", "float32"),
        ("next.done", "bool"),
        ("next.success", "bool"),
        (REWARD, "float32"),
        (IS_FIRST, "bool"),
        (IS_LAST, "bool"),
        (IS_TERMINAL, "bool"),
        (SUCCESS, "bool"),
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ]:
        feats[name] = _scalar(dtype)
    for ft in feats.values():
        if ft["dtype"] != "video":
            ft["fps"] = fps
    return feats


class FeatureStats:
    """Running min / max / mean / std per feature (images per channel, as LeRobot: shape (C, 1, 1))."""

    def __init__(self) -> None:
        self.acc: dict[str, dict[str, Any]] = {}

    def add(self, name: str, x: np.ndarray, image: bool = False) -> None:
        """Fold one episode's values of feature ``name`` (frames first; images per channel) into the running sums."""
        x = np.asarray(x, np.float64)
        x = x.reshape(len(x), -1, x.shape[-1]) if image else x.reshape(len(x), 1, -1)  # (frames, pixels, channels)
        new = {
            "frames": len(x),
            "n": x.shape[0] * x.shape[1],
            "sum": x.sum((0, 1)),
            "sq": (x * x).sum((0, 1)),
            "min": x.min((0, 1)),
            "max": x.max((0, 1)),
            "image": image,
        }
        old = self.acc.setdefault(name, new)
        if old is not new:
            for k in ("frames", "n", "sum", "sq"):
                old[k] = old[k] + new[k]
            old["min"], old["max"] = np.minimum(old["min"], new["min"]), np.maximum(old["max"], new["max"])

    def to_json(self) -> dict[str, dict[str, list]]:
        """Per-feature mean / std / min / max / count as LeRobot's ``stats.json`` lays them out."""
        out = {}
        for name, a in self.acc.items():
            mean = a["sum"] / a["n"]
            std = np.sqrt(np.maximum(a["sq"] / a["n"] - mean * mean, 0.0))
            shape = (-1, 1, 1) if a["image"] else (-1,)
            out[name] = {
                k: np.reshape(v, shape).tolist()
                for k, v in (("min", a["min"]), ("max", a["max"]), ("mean", mean), ("std", std))
            }
            out[name]["count"] = [a["frames"]]  # LeRobot counts frames, also for images
        return out


def arrow_type(ft: dict) -> pa.DataType:
    """The Arrow type of a non-video feature: a scalar, or a fixed-size list for vectors."""
    item = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    return item if ft["shape"] == [1] else pa.list_(item, ft["shape"][0])


def arrow_column(x: np.ndarray, ft: dict) -> pa.Array:
    """One episode's values (frames first) of a non-video feature as an Arrow column of :func:`arrow_type`."""
    if ft["shape"] == [1]:
        return pa.array(np.asarray(x).reshape(-1).astype(ft["dtype"]))
    flat = pa.array(np.ascontiguousarray(x, dtype=ft["dtype"]).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, ft["shape"][0])


def tasks_table(tasks: list[str]) -> pa.Table:
    """``meta/tasks.parquet``: the task strings with their ``task_index``."""
    # The pandas block makes ``pd.read_parquet`` return the task strings as an index named "task", as LeRobot expects.
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_info(root: str | Path) -> dict[str, Any]:
    """Read and validate ``meta/info.json`` of a dataset directory, raising :class:`DatasetError` with a fix."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"no dataset directory at {root}; create one with `wam data collect --env ... --out {root}`")
    path = root / INFO_PATH
    if not path.is_file():
        partial = sorted(root.parent.glob(f".{root.name}.partial-*"))
        hint = f"; an unfinished collection left {partial[0]}, delete it and collect again" if partial else ""
        raise DatasetError(
            f"{root} has no {INFO_PATH}: it is not a LeRobot dataset, or its writing never finished{hint}"
        )
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} is not valid JSON ({e}); the dataset is corrupt, collect it again") from e
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != CODEBASE_VERSION:
        raise DatasetError(
            f"{root} is a LeRobot {version!r} dataset; wam reads {CODEBASE_VERSION} "
            "(convert older ones with lerobot's convert_dataset_v21_to_v30)"
        )
    missing = [k for k in ("fps", "features", "total_frames", "total_episodes", "data_path") if k not in info]
    if missing:
        raise DatasetError(f"{path} lacks {missing}; the dataset is corrupt, collect it again")
    return info
