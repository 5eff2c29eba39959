"""A LeRobot v3.0 dataset written by :class:`~wam.data.lerobot.LeRobotWriter`, loaded into memory.

Videos are decoded once at load time; frames live in one flat array per key (episodes back to back, in
``index`` order) and :meth:`EpisodeDataset.gather` hands out any set of them in the batch convention of
``wam.agents.base``. Depth stays uint16 millimetres in memory (half the size of float32) until gathered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wam.constants import ACTION, DEPTH, IS_FIRST, OBS_KEYS, RGB, SUCCESS
from wam.data import video as vid
from wam.data.lerobot_schema import FEATURE_KEYS, STATS_PATH, STEP_KEYS, TASKS_PATH, DatasetError, read_info


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    if not path.is_file():
        raise DatasetError(f"missing file {path}; the dataset is incomplete, collect it again")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"cannot read {path} ({e}); the file is corrupt, collect the dataset again") from e


def _to_numpy(col: pa.ChunkedArray, ft: dict) -> np.ndarray:
    if ft["shape"] == [1]:
        return col.to_numpy().astype(ft["dtype"])
    return np.asarray(col.combine_chunks().flatten(), dtype=ft["dtype"]).reshape(len(col), *ft["shape"])


class EpisodeDataset:
    """A dataset written by :class:`~wam.data.lerobot.LeRobotWriter`, loaded into memory with its videos decoded.

    Frames are kept in one flat array per key (episodes back to back, in ``index`` order); depth stays uint16
    millimetres in memory and becomes float32 metres in :meth:`gather`.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.info = read_info(self.root)
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        missing = [k for k in STEP_KEYS + (SUCCESS,) if k not in self.features]
        if missing:
            raise DatasetError(
                f"{self.root} lacks wam's step columns {missing}; only datasets written by wam.data "
                "(`wam data collect`) carry the step convention this reader needs"
            )
        self.obs_keys = [k for k in OBS_KEYS if FEATURE_KEYS[k] in self.features]
        episode_files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not episode_files:
            raise DatasetError(
                f"{self.root} has no meta/episodes/chunk-*/file-*.parquet; the dataset is incomplete, collect it again"
            )
        self.episodes: list[dict[str, Any]] = sorted(
            (row for f in episode_files for row in _read_parquet(f).to_pylist()), key=lambda r: r["episode_index"]
        )
        # pandas writes an unnamed index as "__index_level_0__"; LeRobot names it "task".
        task_rows = sorted(_read_parquet(self.root / TASKS_PATH).to_pylist(), key=lambda r: r["task_index"])
        self.tasks: list[str] = [r.get("task", r.get("__index_level_0__")) for r in task_rows]
        stats_path = self.root / STATS_PATH
        self.stats: dict[str, Any] = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
        self.starts = np.array([e["dataset_from_index"] for e in self.episodes], np.int64)
        self.lengths = np.array([e["length"] for e in self.episodes], np.int64)
        total = int(self.info["total_frames"])
        if len(self.episodes) != self.info["total_episodes"] or self.lengths.sum() != total or (self.lengths < 1).any():
            raise DatasetError(
                f"{self.root}: episode table ({len(self.episodes)} episodes, {self.lengths.sum()} frames) disagrees "
                f"with info.json ({self.info['total_episodes']}, {total}); the dataset is corrupt, collect it again"
            )
        self._store = self._load_frames(total)
        for key in self.obs_keys:
            if key in (RGB, DEPTH):
                self._store[key] = self._load_video(key, total)

    def _load_frames(self, total: int) -> dict[str, np.ndarray]:
        names = (
            [FEATURE_KEYS[k] for k in self.obs_keys if k not in (RGB, DEPTH)]
            + list(STEP_KEYS)
            + [SUCCESS, "index", "episode_index"]
        )
        files = sorted({(e["data/chunk_index"], e["data/file_index"]) for e in self.episodes})
        paths = [self.root / self.info["data_path"].format(chunk_index=c, file_index=f) for c, f in files]
        table = pa.concat_tables([_read_parquet(p, names) for p in paths]).sort_by("index")
        episode_ids = np.array([e["episode_index"] for e in self.episodes])
        consistent = (
            len(table) == total
            and np.array_equal(table["index"].to_numpy(), np.arange(total))
            and np.array_equal(self.starts, np.cumsum(self.lengths) - self.lengths)
            and np.array_equal(table["episode_index"].to_numpy(), np.repeat(episode_ids, self.lengths))
        )
        if not consistent:
            raise DatasetError(
                f"{self.root}: frame rows do not match the episode table (missing, duplicated or reordered frames); "
                "the dataset is corrupt, collect it again"
            )
        out = {
            key: _to_numpy(table[FEATURE_KEYS[key]], self.features[FEATURE_KEYS[key]])
            for key in self.obs_keys
            if key not in (RGB, DEPTH)
        }
        out.update({key: _to_numpy(table[key], self.features[key]) for key in STEP_KEYS + (SUCCESS,)})
        if self.features[ACTION]["shape"] == [1]:
            out[ACTION] = out[ACTION].reshape(-1)
        return out

    def _load_video(self, key: str, total: int) -> np.ndarray:
        name = FEATURE_KEYS[key]
        h, w, c = self.features[name]["shape"]
        kind = "depth" if key == DEPTH else "rgb"
        out = np.empty((total, h, w, c), vid.CODECS[kind].dtype)
        by_file: dict[tuple[int, int], list[int]] = {}
        for i, e in enumerate(self.episodes):
            by_file.setdefault((e[f"videos/{name}/chunk_index"], e[f"videos/{name}/file_index"]), []).append(i)
        for (chunk, file), eps in sorted(by_file.items()):
            path = self.root / self.info["video_path"].format(video_key=name, chunk_index=chunk, file_index=file)
            if not path.is_file():
                raise DatasetError(f"missing video {path}; the dataset is incomplete, collect it again")
            try:
                frames = vid.decode(path, kind)
            except (OSError, RuntimeError, ValueError, StopIteration) as e:
                raise DatasetError(
                    f"cannot decode {path} ({e}); the video is corrupt, collect the dataset again"
                ) from e
            if frames.shape[1:] != (h, w, c):
                raise DatasetError(
                    f"{path} holds {frames.shape[1:]} frames, info.json says {(h, w, c)}; the dataset is corrupt"
                )
            for i in eps:
                first, n, at = (
                    round(self.episodes[i][f"videos/{name}/from_timestamp"] * self.fps),
                    self.lengths[i],
                    self.starts[i],
                )
                if first + n > len(frames):
                    raise DatasetError(
                        f"{path} has {len(frames)} frames but episode {i} needs frames {first}..{first + n - 1}; "
                        "the video is truncated, collect the dataset again"
                    )
                out[at : at + n] = frames[first : first + n]
        return out

    def __len__(self) -> int:
        return len(self._store[IS_FIRST])

    def __repr__(self) -> str:
        return (
            f"EpisodeDataset({str(self.root)!r}: {self.num_episodes} episodes, {len(self)} frames, obs {self.obs_keys})"
        )

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return len(self.episodes)

    def gather(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Frames at flat ``index`` (any shape S) as the batch convention: ``{key: (*S, ...)}``, depth in metres."""
        index = np.asarray(index)
        out = {key: arr[index] for key, arr in self._store.items() if key != SUCCESS}
        if DEPTH in out:
            out[DEPTH] = vid.mm_to_depth(out[DEPTH])
        return out

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """All rows of episode ``i`` (T+1 of them for T environment steps), plus its per-row ``success``."""
        rows = np.arange(self.starts[i], self.starts[i] + self.lengths[i])
        return {**self.gather(rows), SUCCESS: self._store[SUCCESS][rows]}
