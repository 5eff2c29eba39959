"""Every agent, reloaded from a frozen tiny checkpoint, still acts and updates as it did when it was frozen
(``tests/frozen_agents.py`` made them; regenerate there after a deliberate numeric change)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from frozen_agents import CONFIGS, ROOT, behaviour
from wam.agents.registry import AGENTS, load_agent


def test_every_registered_agent_has_a_frozen_checkpoint():
    assert set(CONFIGS) == set(AGENTS)
    assert all((ROOT / name / "expected.json").is_file() for name in AGENTS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_frozen_agent_acts_and_updates_as_recorded(name):
    expected = json.loads((ROOT / name / "expected.json").read_text())
    assert sum(f.stat().st_size for f in (ROOT / name).iterdir()) < 100 * 1024
    torch.set_num_threads(1)
    got = behaviour(load_agent(ROOT / name, device="cpu"))
    np.testing.assert_allclose(got["actions"], expected["actions"], rtol=1e-4, atol=1e-5)
    assert got["metrics"].keys() == expected["metrics"].keys()
    for key, value in expected["metrics"].items():
        assert got["metrics"][key] == pytest.approx(value, rel=1e-3, abs=1e-5), key
