"""Fixed-length training sequences from an :class:`~wam.data.episodes.EpisodeDataset`, in the batch convention.

A batch is a dict of numpy arrays shaped (B, T, ...) holding exactly the keys of ``wam.agents.base``: the
dataset's observation keys, ``action``, ``reward``, ``is_first``, ``is_last``, ``is_terminal`` and ``mask``.
Every sequence lies inside one episode. Windows are drawn uniformly over all (episode, start) pairs, so every
frame of every episode is equally likely to be covered; an episode shorter than T gives one window, padded
after its end with zeros and ``mask`` False.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from wam.data.episodes import EpisodeDataset

MASK = "mask"


class SequenceSampler:
    """Draw batches of ``seq_len``-step windows from a dataset (a directory path or a loaded dataset)."""

    def __init__(self, dataset: EpisodeDataset | str | Path, seq_len: int, batch_size: int, seed: int = 0):
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len={seq_len} and batch_size={batch_size} must both be >= 1")
        self.dataset = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
        self.seq_len, self.batch_size = seq_len, batch_size
        self.rng = np.random.default_rng(seed)
        starts, lengths = self.dataset.starts, self.dataset.lengths
        windows = np.maximum(lengths - seq_len + 1, 1)  # (E,) number of windows per episode
        # Flat list of every window's first frame and the end (exclusive) of its episode.
        episode = np.repeat(np.arange(len(starts)), windows)
        offset = np.arange(windows.sum()) - np.repeat(np.cumsum(windows) - windows, windows)
        self._first = starts[episode] + offset
        self._end = (starts + lengths)[episode]

    @property
    def num_windows(self) -> int:
        """Number of distinct windows the sampler draws from."""
        return len(self._first)

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """One batch of (B, T, ...) arrays plus ``mask`` (B, T)."""
        pick = self.rng.integers(self.num_windows, size=batch_size or self.batch_size)
        return self.windows(pick)

    def windows(self, pick: np.ndarray) -> dict[str, np.ndarray]:
        """The windows numbered ``pick`` (B,), as a batch; the order of windows is episode by episode."""
        index = self._first[pick, None] + np.arange(self.seq_len)  # (B, T)
        mask = index < self._end[pick, None]
        batch = self.dataset.gather(np.where(mask, index, self._end[pick, None] - 1))
        for value in batch.values():
            value[~mask] = 0
        batch[MASK] = mask
        return batch

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Endless stream of batches."""
        while True:
            yield self.sample()
