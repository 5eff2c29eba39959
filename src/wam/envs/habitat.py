"""Habitat PointNav on habitat-sim, as a dict-observation Gymnasium environment.

UNTESTED HERE: habitat-sim is distributed through conda only and is not installed on the machines this project
is tested on. Without it, :func:`tasks` and :func:`build` raise :class:`MissingSimulatorError` with the install
command, so ``wam.envs.make("habitat/pointnav")`` explains what to do. There is no stand-in simulator.

``habitat/pointnav``: each episode places the agent and a goal at random navigable points of one scene that are
connected, on the same floor and 1–30 m apart along the navmesh (geodesic distance).

* Scene: the ``.glb`` (or scene-dataset scene id) named by the environment variable ``WAM_HABITAT_SCENE``, e.g.
  the habitat test scenes (``python -m habitat_sim.utils.datasets_download --uids habitat_test_scenes
  --data-path data/``, then ``WAM_HABITAT_SCENE=data/scene_datasets/habitat-test-scenes/skokloster-castle.glb``).
* Actions: ``Discrete(4)``: 0 = stop, 1 = move_forward 0.25 m, 2 = turn_left 10°, 3 = turn_right 10°.
* ``rgb`` (H, W, 3) uint8 and ``depth`` (H, W, 1) float32 metres from one pinhole camera 1.25 m above the floor,
  90° field of view; depth clipped to ``[DEPTH_MIN_M, DEPTH_MAX_M]``.
* ``proprio`` (3,): the point goal in the agent's frame (the "GPS + compass" PointNav signal): straight-line
  distance on the floor plane in metres, then cos and sin of the goal's bearing (0 = straight ahead,
  positive = to the left).
* ``stop`` ends the episode; ``info["success"]`` is true when it is called within 0.2 m (geodesic) of the goal.
* Reward (the usual PointNav shaping): decrease in geodesic distance − 0.01 per step, + 2.5 on success.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, DEPTH_MAX_M, DEPTH_MIN_M, PROPRIO, RGB, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.registry import require
from wam.envs.wrappers import dict_obs_space

INSTALL_HINT = "conda install habitat-sim -c conda-forge -c aihabitat   (habitat-sim is not on PyPI)"
SCENE_ENV_VAR = "WAM_HABITAT_SCENE"
ACTIONS: tuple[str, ...] = ("stop", "move_forward", "turn_left", "turn_right")
PROPRIO_DIM = 3
FORWARD_STEP_M = 0.25
TURN_DEG = 10.0
SENSOR_HEIGHT_M = 1.25
HFOV_DEG = 90.0
SUCCESS_DISTANCE_M = 0.2
SLACK_REWARD = -0.01
SUCCESS_REWARD = 2.5
DEFAULT_MAX_STEPS = 500
_MIN_GOAL_M, _MAX_GOAL_M = 1.0, 30.0
_SAME_FLOOR_M = 0.5
_EPISODE_TRIES = 100
_RENDER_SIZE = 256


def _habitat_sim():
    return require("habitat_sim", INSTALL_HINT)


def tasks() -> list[str]:
    """Habitat task names (needs habitat-sim installed)."""
    _habitat_sim()
    return ["pointnav"]


def _scene() -> str:
    scene = os.environ.get(SCENE_ENV_VAR)
    if not scene:
        raise ValueError(
            f"habitat/pointnav needs a scene: set {SCENE_ENV_VAR} to a .glb file, e.g. download the test scenes with "
            "`python -m habitat_sim.utils.datasets_download --uids habitat_test_scenes --data-path data/` and set "
            f"{SCENE_ENV_VAR}=data/scene_datasets/habitat-test-scenes/skokloster-castle.glb"
        )
    return scene


def _camera_spec(hs, uuid: str, sensor_type, size: int):
    spec = hs.CameraSensorSpec()
    spec.uuid = uuid
    spec.sensor_type = sensor_type
    spec.sensor_subtype = hs.SensorSubType.PINHOLE
    spec.resolution = [size, size]
    spec.position = [0.0, SENSOR_HEIGHT_M, 0.0]
    spec.hfov = HFOV_DEG
    return spec


class HabitatPointNavEnv(gym.Env):
    """PointNav in one habitat-sim scene behind a dict observation (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        hs = _habitat_sim()
        if cfg.task != "pointnav":
            raise ValueError(f"unknown habitat task {cfg.task!r}; valid: ['pointnav']")
        if cfg.camera is not None:
            raise ValueError(f"habitat has only the agent's camera; leave camera=None (got {cfg.camera!r})")
        self.cfg, self._hs = cfg, hs
        self.horizon = DEFAULT_MAX_STEPS if cfg.max_episode_steps is None else cfg.max_episode_steps * cfg.action_repeat
        sim_cfg = hs.SimulatorConfiguration()
        sim_cfg.scene_id = _scene()
        sim_cfg.random_seed = cfg.seed
        sim_cfg.enable_physics = False
        agent_cfg = hs.agent.AgentConfiguration()
        # The RGB camera is always on because render() reads it; depth costs a pass, so only on request.
        agent_cfg.sensor_specifications = [_camera_spec(hs, RGB, hs.SensorType.COLOR, cfg.image_size)]
        if DEPTH in cfg.obs:
            agent_cfg.sensor_specifications.append(_camera_spec(hs, DEPTH, hs.SensorType.DEPTH, cfg.image_size))
        spec, actuation = hs.agent.ActionSpec, hs.agent.ActuationSpec
        agent_cfg.action_space = {
            "move_forward": spec("move_forward", actuation(amount=FORWARD_STEP_M)),
            "turn_left": spec("turn_left", actuation(amount=TURN_DEG)),
            "turn_right": spec("turn_right", actuation(amount=TURN_DEG)),
        }
        self._sim = hs.Simulator(hs.Configuration(sim_cfg, [agent_cfg]))
        if not self._sim.pathfinder.is_loaded:
            raise RuntimeError(
                f"scene {sim_cfg.scene_id!r} has no navmesh; PointNav needs one (a .navmesh beside the .glb)"
            )
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.observation_space = dict_obs_space(cfg.obs, cfg.image_size, {PROPRIO: PROPRIO_DIM})
        self._goal = np.zeros(3)
        self._t = 0
        self._last_distance = 0.0

    def _geodesic(self, a: np.ndarray, b: np.ndarray) -> float:
        path = self._hs.ShortestPath()
        path.requested_start = np.asarray(a, dtype=np.float32)
        path.requested_end = np.asarray(b, dtype=np.float32)
        return float(path.geodesic_distance) if self._sim.pathfinder.find_path(path) else math.inf

    def _sample_episode(self) -> tuple[np.ndarray, np.ndarray]:
        pathfinder = self._sim.pathfinder
        for _ in range(_EPISODE_TRIES):
            start = np.asarray(pathfinder.get_random_navigable_point(), dtype=np.float64)
            goal = np.asarray(pathfinder.get_random_navigable_point(), dtype=np.float64)
            if abs(start[1] - goal[1]) > _SAME_FLOOR_M:
                continue
            if _MIN_GOAL_M <= self._geodesic(start, goal) <= _MAX_GOAL_M:
                return start, goal
        raise RuntimeError(
            f"found no start/goal pair {_MIN_GOAL_M}-{_MAX_GOAL_M} m apart on one floor in {_EPISODE_TRIES} tries; "
            f"is {os.environ.get(SCENE_ENV_VAR)!r} a navigable indoor scene?"
        )

    def _pointgoal(self) -> np.ndarray:
        """Goal in the agent frame: (distance, cos bearing, sin bearing); habitat's agent looks along -z."""
        state = self._sim.get_agent(0).get_state()
        offset = self._goal - np.asarray(state.position, dtype=np.float64)
        q = state.rotation  # numpy-quaternion, rotation about +y
        yaw = 2.0 * math.atan2(q.y, q.w)
        forward = np.array([-math.sin(yaw), -math.cos(yaw)])  # (x, z) of the agent's -z axis
        left = np.array([-math.cos(yaw), math.sin(yaw)])
        planar = np.array([offset[0], offset[2]])
        distance = float(np.linalg.norm(planar))
        bearing = math.atan2(float(planar @ left), float(planar @ forward))
        return np.array([distance, math.cos(bearing), math.sin(bearing)], dtype=np.float32)

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = np.ascontiguousarray(raw[RGB][..., :3], dtype=np.uint8)  # sensor gives RGBA
            elif key == DEPTH:
                out[key] = (
                    np.clip(raw[DEPTH], DEPTH_MIN_M, DEPTH_MAX_M).astype(np.float32).reshape(*raw[DEPTH].shape[:2], 1)
                )
            elif key == PROPRIO:
                out[key] = self._pointgoal()
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        if seed is not None:
            self._sim.seed(seed)  # also seeds the pathfinder's random navigable points
        start, self._goal = self._sample_episode()
        state = self._hs.AgentState()
        state.position = start.astype(np.float32)
        yaw = float(self.np_random.uniform(0.0, 2.0 * math.pi))
        common = require("habitat_sim.utils.common", INSTALL_HINT)
        state.rotation = common.quat_from_angle_axis(yaw, np.array([0.0, 1.0, 0.0]))
        self._sim.get_agent(0).set_state(state)
        self._t = 0
        self._last_distance = self._geodesic(start, self._goal)
        return self._observe(self._sim.get_sensor_observations()), {
            SUCCESS: False,
            "distance_to_goal": self._last_distance,
        }

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = int(np.asarray(action).reshape(()))
        if not 0 <= action < len(ACTIONS):
            raise ValueError(f"habitat actions are 0..{len(ACTIONS) - 1} {list(ACTIONS)}, got {action}")
        self._t += 1
        name = ACTIONS[action]
        raw = self._sim.get_sensor_observations() if name == "stop" else self._sim.step(name)
        position = np.asarray(self._sim.get_agent(0).get_state().position, dtype=np.float64)
        distance = self._geodesic(position, self._goal)
        success = name == "stop" and distance <= SUCCESS_DISTANCE_M
        progress = (
            self._last_distance - distance if math.isfinite(distance) and math.isfinite(self._last_distance) else 0.0
        )
        reward = progress + SLACK_REWARD + (SUCCESS_REWARD if success else 0.0)
        self._last_distance = distance
        info = {SUCCESS: success, "distance_to_goal": distance}
        return self._observe(raw), float(reward), name == "stop", self._t >= self.horizon, info

    def render(self) -> np.ndarray:
        """The current RGB view at 256×256 (nearest-neighbour upscale of the observation camera)."""
        rgb = np.asarray(self._sim.get_sensor_observations()[RGB])[..., :3]
        rows = np.arange(_RENDER_SIZE) * rgb.shape[0] // _RENDER_SIZE
        cols = np.arange(_RENDER_SIZE) * rgb.shape[1] // _RENDER_SIZE
        return np.ascontiguousarray(rgb[rows][:, cols], dtype=np.uint8)

    def close(self) -> None:
        """Release the simulator and renderers."""
        self._sim.close()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a Habitat PointNav environment for ``cfg`` (raises the install hint without habitat-sim)."""
    _habitat_sim()
    return HabitatPointNavEnv(cfg)
