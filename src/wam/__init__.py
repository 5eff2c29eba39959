"""wam — World Action Models: one transformer that models the world and acts from a shared latent."""

from wam.envs import make as make_env
from wam.models import WAMConfig, WorldActionModel

__version__ = "0.1.0"
__all__ = ["make_env", "WorldActionModel", "WAMConfig", "__version__"]
