"""wam — World Action Models: one transformer that models the world and acts from a shared latent."""

from wam.agents.registry import get_agent, load_agent
from wam.envs.spec import EnvSpec
from wam.envs import make as make_env
from wam.models import WAMConfig, WorldActionModel

__version__ = "0.1.0"
__all__ = ["make_env", "EnvSpec", "get_agent", "load_agent", "WorldActionModel", "WAMConfig", "__version__"]
