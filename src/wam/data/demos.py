"""Expert demonstrations beside the online replay: a fixed share of every update's batch (RLPD's symmetric sampling).

Ball et al. (2023, "Efficient Online Reinforcement Learning with Offline Data") draw half of each batch from the
offline data and half from the online replay; with a few expert episodes this is what makes sparse or long tasks
learnable early. Here the demonstrations are LeRobot v3.0 datasets (``wam data collect`` writes them) whose
observation keys and shapes cover the run's and whose actions match the run's action space. They follow the replay's
step convention (row t: obs_t, the action taken there, the reward received on arriving), so their windows are
interchangeable with replay windows: the agents never know which rows are demonstrations.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wam.constants import ACTION, DEPTH, MASK
from wam.data.episodes import EpisodeDataset
from wam.data.lerobot_schema import FEATURE_KEYS, DatasetError
from wam.data.replay import step_layout
from wam.data.sequences import SequenceSampler
from wam.envs.spec import EnvSpec


def check_demos(dataset: EpisodeDataset, spec: EnvSpec, env: str = "") -> None:
    """Raise :class:`DatasetError` (naming the mismatch) unless ``dataset`` can stand in for replay rows of ``spec``;
    warn when it was collected on another environment than ``env``."""
    root = dataset.root
    missing = [k for k in spec.obs_shapes if k not in dataset.obs_keys]
    if missing:
        raise DatasetError(
            f"demonstrations {root} have no {missing} observations (they hold {dataset.obs_keys}); collect them with "
            f"`wam data collect --obs {','.join(spec.obs_shapes)}` or train with --obs among {dataset.obs_keys}"
        )
    for key, shape in spec.obs_shapes.items():
        stored = dataset.features[FEATURE_KEYS[key]]["shape"]
        stored = [] if stored == [1] else list(stored)
        if stored != list(shape):
            raise DatasetError(
                f"demonstrations {root} store {key!r} as {stored}, the run observes {list(shape)}; "
                "collect them with the run's settings (e.g. --image-size)"
            )
    action = dataset.features[ACTION]
    want = ([1], "int64") if spec.discrete else ([spec.action_dim], "float32")
    if (action["shape"], action["dtype"]) != want:
        raise DatasetError(
            f"demonstrations {root} hold actions of shape {action['shape']} ({action['dtype']}), the run's action "
            f"space needs {want[0]} ({want[1]}); use demonstrations of the same robot and action space"
        )
    collected_on = dataset.info.get("wam", {}).get("env", "")
    if env and collected_on and collected_on != env:
        warnings.warn(f"demonstrations {root} were collected on {collected_on}, the run trains on {env}", stacklevel=2)


class DemoBuffer:
    """Windows of ``seq_len`` steps from one or more demonstration datasets, in the replay's keys and dtypes.

    Every window of every dataset is equally likely. Sampling takes the generator as an argument, so a run can derive
    it from its seed and update count and resume exactly without saving sampler state.
    """

    def __init__(self, roots: Sequence[str | Path], spec: EnvSpec, seq_len: int, env: str = ""):
        if not roots:
            raise ValueError("no demonstration datasets given")
        self.datasets = [EpisodeDataset(root) for root in roots]
        for dataset in self.datasets:
            check_demos(dataset, spec, env)
        self.samplers = [SequenceSampler(d, seq_len, batch_size=1) for d in self.datasets]
        windows = np.array([s.num_windows for s in self.samplers], np.float64)
        self.weights = windows / windows.sum()
        self.dtypes = {key: dtype for key, (_, dtype) in step_layout(spec).items()}
        self.dtypes[MASK] = np.dtype(bool)
        if DEPTH in self.dtypes:  # stored as float16, sampled as float32 metres (as Replay.sample gives it)
            self.dtypes[DEPTH] = np.dtype(np.float32)

    def summary(self) -> dict[str, int]:
        """Episodes and rows (an episode of T env steps has T + 1) over all datasets."""
        return {"episodes": sum(d.num_episodes for d in self.datasets), "frames": sum(len(d) for d in self.datasets)}

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` windows (n, seq_len, ...) with ``mask``: the keys and dtypes of :meth:`Replay.sample`."""
        source = rng.choice(len(self.samplers), size=n, p=self.weights)
        parts = [
            s.windows(rng.integers(s.num_windows, size=int((source == i).sum())))
            for i, s in enumerate(self.samplers)
            if (source == i).any()
        ]
        return {key: np.concatenate([p[key] for p in parts]).astype(dtype) for key, dtype in self.dtypes.items()}


def mix(online: dict[str, np.ndarray], demos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One batch of the online windows followed by the demonstration windows (the same keys)."""
    if online.keys() != demos.keys():
        raise KeyError(f"online batch keys {sorted(online)} differ from the demonstrations' {sorted(demos)}")
    return {key: np.concatenate([online[key], demos[key]]) for key in online}


def demo_share(fraction: float, batch_size: int) -> int:
    """Windows of a batch of ``batch_size`` drawn from the demonstrations; at least one, and one from the replay."""
    n = round(fraction * batch_size)
    if not 0 < n < batch_size:
        raise ValueError(
            f"demo_fraction={fraction} of a batch of {batch_size} windows leaves no demonstration or no replay "
            "window; choose a fraction nearer 0.5"
        )
    return n
