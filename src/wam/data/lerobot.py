"""Write episodes as a LeRobot v3.0 dataset (the format: :mod:`wam.data.lerobot_schema`), atomically.

Nothing appears at the output path until :meth:`LeRobotWriter.close`; an exception inside ``with LeRobotWriter(...)``
deletes the partial dataset. Step convention and layout: :mod:`wam.data.lerobot_schema` and docs/data.md.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wam.constants import ACTION, DEPTH, IS_FIRST, IS_LAST, REWARD, RGB, SUCCESS
from wam.data import video as vid
from wam.data.lerobot_schema import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    EPISODES_PATH,
    FEATURE_KEYS,
    INFO_PATH,
    STATS_PATH,
    STEP_KEYS,
    TASKS_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    WAM_FORMAT_VERSION,
    FeatureStats,
    arrow_column,
    arrow_type,
    build_features,
    tasks_table,
)

_MB = 1024 * 1024


def check_output_dir(root: Path, overwrite: bool) -> None:
    """Raise unless a new dataset may be written at ``root`` (absent, empty, or ``overwrite``)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory; choose another output path")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{root} already exists and is not empty; pass overwrite=True (--overwrite) or choose another --out"
        )


class LeRobotWriter:
    """Write episodes into a new LeRobot v3.0 dataset directory; nothing appears at ``root`` until :meth:`close`.

    Use as a context manager: an exception inside the block deletes the partial dataset.
    Each episode is a dict of (L, ...) arrays: every observation key of ``obs_space``, ``action`` (zeros on the
    last row), ``reward``, ``is_first``, ``is_last``, ``is_terminal`` and ``success`` (see the module docstring).
    """

    def __init__(
        self,
        root: str | Path,
        obs_space: gym.spaces.Dict,
        action_space: gym.Space,
        fps: float,
        *,
        env_name: str = "",
        robot_type: str | None = None,
        rgb_lossless: bool = False,
        overwrite: bool = False,
        data_file_mb: float = DATA_FILE_MB,
        video_file_mb: float = VIDEO_FILE_MB,
    ):
        self.root = Path(root)
        check_output_dir(self.root, overwrite)
        if fps <= 0:
            raise ValueError(f"fps={fps} must be > 0")
        # LeRobot declares fps as an int; keep a fraction only when there is one.
        self.fps = int(fps) if float(fps).is_integer() else float(fps)
        self.overwrite, self.env_name, self.robot_type = overwrite, env_name, robot_type
        self.data_file_mb, self.video_file_mb = data_file_mb, video_file_mb
        self.obs_keys = list(obs_space.spaces)
        self.features = build_features(obs_space, action_space, self.fps, rgb_lossless)
        self.image_keys = [k for k in self.obs_keys if k in (RGB, DEPTH)]
        self._kinds = {RGB: "rgb_lossless" if rgb_lossless else "rgb", DEPTH: "depth"}
        columns = [FEATURE_KEYS[k] for k in self.obs_keys if k not in self.image_keys] + list(STEP_KEYS) + [SUCCESS]
        columns += [
            "next.reward",
            "next.done",
            "next.success",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        ]
        self._schema = pa.schema([(name, arrow_type(self.features[name])) for name in columns])
        self._tmp = self.root.parent / f".{self.root.name}.partial-{os.getpid()}"
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True)
        self._chunk = self._file = 0
        self._data: pq.ParquetWriter | None = None
        self._data_bytes = 0
        self._videos: dict[str, vid.VideoWriter] = {}
        self._episodes: list[dict[str, Any]] = []
        self._tasks: dict[str, int] = {}
        self._stats = FeatureStats()
        self.total_frames = 0

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def num_episodes(self) -> int:
        """Episodes added so far."""
        return len(self._episodes)

    def _check(self, steps: Mapping[str, np.ndarray]) -> int:
        need = self.obs_keys + list(STEP_KEYS) + [SUCCESS]
        missing = [k for k in need if k not in steps]
        if missing:
            raise ValueError(f"episode lacks keys {missing}; expected {need}")
        n = len(steps[IS_FIRST])
        bad = {k: np.shape(steps[k]) for k in need if len(steps[k]) != n}
        if n < 1 or bad:
            raise ValueError(f"every episode array needs the same length {n} >= 1; got {bad}")
        first, last = np.asarray(steps[IS_FIRST], bool), np.asarray(steps[IS_LAST], bool)
        if not first[0] or first[1:].any() or not last[-1] or last[:-1].any():
            raise ValueError("an episode must have is_first only on its first row and is_last only on its last row")
        if np.any(np.asarray(steps[ACTION])[-1] != 0):
            raise ValueError("the last row holds the final observation; its action must be zeros")
        for key in self.obs_keys + [ACTION]:
            ft = self.features[FEATURE_KEYS.get(key, key)]
            want = (n,) if ft["shape"] == [1] else (n, *ft["shape"])
            if np.shape(steps[key]) != want:
                raise ValueError(
                    f"episode[{key!r}] has shape {np.shape(steps[key])}, expected {want} from the spaces given to the writer"
                )
        return n

    def add_episode(self, steps: Mapping[str, np.ndarray], task: str) -> None:
        """Append one episode (see the class docstring) performed under the task string ``task``."""
        n = self._check(steps)
        if self._data is None:
            self._open_files()
        ep, start = len(self._episodes), self.total_frames
        task_index = self._tasks.setdefault(task, len(self._tasks))
        reward = np.asarray(steps[REWARD], np.float32)
        success = np.asarray(steps[SUCCESS], bool)
        cols: dict[str, np.ndarray] = {
            FEATURE_KEYS[k]: np.asarray(steps[k]) for k in self.obs_keys if k not in self.image_keys
        }
        cols.update({k: np.asarray(steps[k]) for k in STEP_KEYS + (SUCCESS,)})
        cols["next.reward"] = np.append(reward[1:], np.float32(0))
        cols["next.done"] = np.append(np.asarray(steps[IS_LAST], bool)[1:], True)
        cols["next.success"] = np.append(success[1:], success[-1])
        cols["timestamp"] = np.arange(n, dtype=np.float32) / np.float32(self.fps)
        cols["frame_index"] = np.arange(n)
        cols["episode_index"] = np.full(n, ep)
        cols["index"] = np.arange(start, start + n)
        cols["task_index"] = np.full(n, task_index)
        table = pa.table([arrow_column(cols[f.name], self.features[f.name]) for f in self._schema], schema=self._schema)
        self._data.write_table(table)
        self._data_bytes += table.nbytes
        row: dict[str, Any] = {
            "episode_index": ep,
            "tasks": [task],
            "length": n,
            "data/chunk_index": self._chunk,
            "data/file_index": self._file,
            "dataset_from_index": start,
            "dataset_to_index": start + n,
        }
        for key in self.image_keys:
            name, writer = FEATURE_KEYS[key], self._videos[key]
            frames = vid.depth_to_mm(steps[key]) if key == DEPTH else np.asarray(steps[key])
            row[f"videos/{name}/chunk_index"], row[f"videos/{name}/file_index"] = self._chunk, self._file
            row[f"videos/{name}/from_timestamp"] = writer.frames / self.fps
            writer.append(frames)
            row[f"videos/{name}/to_timestamp"] = writer.frames / self.fps
            # Image stats as LeRobot keeps them: RGB scaled to [0, 1]; depth in metres (as stored, to the mm).
            self._stats.add(name, vid.mm_to_depth(frames) if key == DEPTH else frames / 255.0, image=True)
        row.update(
            {
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                SUCCESS: bool(success.any()),
                "return": float(reward.sum(dtype=np.float64)),
            }
        )
        for name, x in cols.items():
            self._stats.add(name, np.asarray(x, np.float64))
        self._episodes.append(row)
        self.total_frames += n
        too_big = self._data_bytes > self.data_file_mb * _MB or any(
            v.size_bytes() > self.video_file_mb * _MB for v in self._videos.values()
        )
        if too_big:
            self._close_files()
            self._file += 1
            if self._file == CHUNKS_SIZE:
                self._chunk, self._file = self._chunk + 1, 0

    def _open_files(self) -> None:
        path = self._tmp / DATA_PATH.format(chunk_index=self._chunk, file_index=self._file)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._data, self._data_bytes = pq.ParquetWriter(path, self._schema), 0
        for key in self.image_keys:
            h, w, _ = self.features[FEATURE_KEYS[key]]["shape"]
            vpath = self._tmp / VIDEO_PATH.format(
                video_key=FEATURE_KEYS[key], chunk_index=self._chunk, file_index=self._file
            )
            self._videos[key] = vid.VideoWriter(vpath, self._kinds[key], h, w, self.fps)

    def _close_files(self) -> None:
        if self._data is not None:
            self._data.close()
        for writer in self._videos.values():
            writer.close()
        self._data, self._videos = None, {}

    def abort(self) -> None:
        """Stop writing and delete the partial dataset."""
        try:
            self._close_files()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def close(self) -> Path:
        """Finish every file, write the metadata and move the dataset into place at ``root``."""
        if not self._episodes:
            self.abort()
            raise ValueError(f"no episodes were added; nothing written to {self.root}")
        self._close_files()
        episodes = pa.Table.from_pylist(self._episodes)
        path = self._tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(episodes, path)
        pq.write_table(tasks_table(list(self._tasks)), self._tmp / TASKS_PATH)
        (self._tmp / STATS_PATH).write_text(json.dumps(self._stats.to_json(), indent=2) + "\n")
        (self._tmp / INFO_PATH).write_text(json.dumps(self._info(), indent=2) + "\n")
        if self.root.exists():
            # A non-empty root was only allowed with overwrite=True; swap it out after the new data is complete.
            old = self.root.parent / f".{self.root.name}.old-{os.getpid()}"
            os.replace(self.root, old)
            os.replace(self._tmp, self.root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self._tmp, self.root)
        return self.root

    def _info(self) -> dict[str, Any]:
        n = len(self._episodes)
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": n,
            "total_frames": self.total_frames,
            "total_tasks": len(self._tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": self.data_file_mb,
            "video_files_size_in_mb": self.video_file_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{n}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.image_keys else None,
            "features": self.features,
            "wam": {
                "format_version": WAM_FORMAT_VERSION,
                "env": self.env_name,
                "obs_keys": self.obs_keys,
                "step_convention": "row t: obs_t, action taken at obs_t (zeros on the final row), reward received on "
                "arriving at obs_t; next.* columns are LeRobot's view shifted by one row",
            },
        }
