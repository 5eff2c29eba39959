"""Expert demonstrations in online training: compatibility checks, windows in the replay's convention, the mixed
batch, and a short run that trains on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wam.data.collect import CollectConfig, collect
from wam.data.demos import DemoBuffer, demo_share, mix
from wam.data.lerobot_schema import DatasetError
from wam.data.replay import Replay
from wam.envs.spec import EnvSpec

pytestmark = pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")
STATE = EnvSpec({"state": [39]}, 4, False)


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory) -> Path:
    """Two 10-step expert episodes of reach-v3 with state and proprio observations."""
    out = tmp_path_factory.mktemp("demos") / "reach"
    collect(
        CollectConfig(env="metaworld/reach-v3", out=out, episodes=2, obs="state,proprio", max_episode_steps=10),
        progress=False,
    )
    return out


def test_demo_windows_have_the_replays_keys_dtypes_and_shapes(reach_demos):
    demos = DemoBuffer([reach_demos], STATE, seq_len=3, env="metaworld/reach-v3")
    assert demos.summary() == {"episodes": 2, "frames": 22}
    batch = demos.sample(16, np.random.default_rng(0))
    replay = Replay(STATE, capacity=10, num_envs=1)
    replay.add({k: np.zeros((1, *shape), dtype) for k, (shape, dtype) in replay.layout.items()})
    online = replay.sample(16, 3)
    assert {k: (v.dtype, v.shape) for k, v in batch.items()} == {k: (v.dtype, v.shape) for k, v in online.items()}
    assert batch["mask"].all() and np.abs(batch["action"]).max() > 0  # 10-step episodes hold every 3-step window
    again = demos.sample(16, np.random.default_rng(0))
    assert all(np.array_equal(batch[k], again[k]) for k in batch)  # the generator decides the windows
    mixed = mix(online, batch)
    assert mixed["state"].shape == (32, 3, 39) and np.array_equal(mixed["state"][16:], batch["state"])
    with pytest.raises(KeyError, match="differ"):
        mix(online, {k: v for k, v in batch.items() if k != "reward"})


@pytest.mark.parametrize(
    "spec, message",
    [
        (EnvSpec({"rgb": [64, 64, 3]}, 4, False), r"have no \['rgb'\] observations \(they hold \['proprio', 'state'\]"),
        (EnvSpec({"state": [12]}, 4, False), r"store 'state' as \[39\], the run observes \[12\]"),
        (EnvSpec({"state": [39]}, 7, False), r"actions of shape \[4\] \(float32\), the run's action space needs \[7\]"),
        (EnvSpec({"state": [39]}, 4, True), r"needs \[1\] \(int64\)"),
    ],
)
def test_incompatible_demonstrations_are_refused_with_the_mismatch(reach_demos, spec, message):
    with pytest.raises(DatasetError, match=message):
        DemoBuffer([reach_demos], spec, seq_len=3)


def test_demonstrations_of_another_env_warn(reach_demos):
    with pytest.warns(UserWarning, match="collected on metaworld/reach-v3, the run trains on metaworld/push-v3"):
        DemoBuffer([reach_demos], STATE, seq_len=3, env="metaworld/push-v3")


def test_the_demo_share_leaves_both_sources_a_window():
    assert demo_share(0.5, 128) == 64 and demo_share(0.25, 4) == 1
    for fraction, batch in ((0.1, 4), (0.9, 4)):
        with pytest.raises(ValueError, match="nearer 0.5"):
            demo_share(fraction, batch)


def test_a_run_trains_on_half_demonstration_batches(reach_demos, tmp_path, monkeypatch):
    from wam.agents.wamq import WAMQConfig
    from wam.training.config import TrainConfig
    from wam.training.online import Trainer, train

    with pytest.raises(ValueError, match="demo_fraction=1.0 must be in"):
        TrainConfig(demos=(str(reach_demos),), demo_fraction=1.0)
    cfg = TrainConfig(
        env="metaworld/reach-v3",
        agent="wamq",
        wamq=WAMQConfig(dim=16, heads=2, mlp_hidden=32, batch_size=4, seq_len=3),
        demos=(str(reach_demos),),
        max_episode_steps=15,
        steps=30,
        prefill=10,
        train_ratio=12,
        eval_episodes=1,
        eval_every=30,
        progress=False,
        out=str(tmp_path / "run"),
    )
    sizes, drawn = [], []
    init = Trainer.__init__

    def spy(self, cfg):
        init(self, cfg)
        update, sample = self.agent.update, self.demos.sample
        self.agent.update = lambda batch: sizes.append(batch["state"].shape[0]) or update(batch)
        self.demos.sample = lambda n, rng: drawn.append(n) or sample(n, rng)

    monkeypatch.setattr(Trainer, "__init__", spy)
    train(cfg)
    assert sizes and set(sizes) == {4} and drawn == [2] * len(sizes)  # 2 of every 4 windows are demonstrations
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["demos"] == {"episodes": 2, "frames": 22, "windows_per_batch": 2}
