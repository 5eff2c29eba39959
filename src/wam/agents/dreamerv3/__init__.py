"""DreamerV3 (Hafner et al. 2023, 2025) re-implemented in PyTorch as a wam agent; see ``docs/dreamerv3.md``."""

from wam.agents.dreamerv3.agent import DreamerV3Agent
from wam.agents.dreamerv3.config import PRESETS, DreamerV3Checkpoint, DreamerV3Config

__all__ = ["DreamerV3Agent", "DreamerV3Config", "DreamerV3Checkpoint", "PRESETS"]
