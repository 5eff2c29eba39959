"""The World Action Model trained the way sample-efficient agents learn (DESIGN.md §1): a critic in the shared
trunk, TD on real replayed transitions and the policy gradient through Q, about one update per environment step.

``config`` holds the typed settings, ``model`` the network, ``loss`` the objective, ``agent`` the training-loop side.
"""

from wam.agents.wamq.agent import WAMQAgent
from wam.agents.wamq.config import WAMQCheckpoint, WAMQConfig

__all__ = ["WAMQAgent", "WAMQConfig", "WAMQCheckpoint"]
