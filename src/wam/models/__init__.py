"""The World Action Model and its configuration."""

from wam.models.config import SIZES, WAMConfig
from wam.models.world_action_model import WorldActionModel

__all__ = ["SIZES", "WAMConfig", "WorldActionModel"]
