"""panda-gym (PyBullet) Franka Panda block manipulation as dict-observation Gymnasium environments.

Tasks: ``panda/pick-and-place`` (``PandaPickAndPlace-v3``, 50 steps) and ``panda/stack`` (``PandaStack-v3``,
100 steps; both are panda-gym's registered horizons). Actions are panda-gym's end-effector control in [-1, 1]:
``(dx, dy, dz, gripper)``, at most 5 cm of hand motion per step. As in panda-gym, an episode *terminates* as
soon as the task succeeds and is *truncated* at the horizon. ``reward_type`` picks panda-gym's dense reward
(minus the distance to the goal) or its sparse one (-1 until success, then 0).

Observations:

* ``proprio`` (7): the robot part of panda-gym's observation: hand position, hand velocity, finger width;
* ``state``: panda-gym's flat observation (robot + block poses and velocities), then the achieved goal, then
  the desired goal: 25 numbers for pick-and-place, 43 for stack;
* ``rgb`` / ``depth``: one static PyBullet camera (TinyRenderer, CPU, no display), ``cfg.camera`` one of
  :data:`CAMERAS` (default ``corner``). Depth is converted from the OpenGL depth buffer to metres along the
  optical axis; the sky beyond the far plane reads as ``DEPTH_MAX_M``. TinyRenderer cannot draw panda-gym's
  translucent goal markers, so they are recoloured to pale opaque blocks that stay distinct from the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, DEPTH_MAX_M, DEPTH_MIN_M, PROPRIO, RGB, STATE, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.registry import require
from wam.envs.wrappers import image_space, vector_space

INSTALL_HINT = "pip install 'wam[panda]'  (panda-gym>=3.0.7 and pybullet)"
PROPRIO_DIM = 7
RENDER_SIZE = 256


@dataclass(frozen=True)
class PandaTask:
    """How one ``panda/<task>`` maps onto panda-gym."""

    env_class: str
    """Class name in ``panda_gym.envs``."""
    horizon: int
    """panda-gym's registered ``max_episode_steps``."""
    state_dim: int
    """Length of the ``state`` vector (observation + achieved goal + desired goal)."""


TASKS: dict[str, PandaTask] = {
    "pick-and-place": PandaTask("PandaPickAndPlaceEnv", 50, 19 + 3 + 3),
    "stack": PandaTask("PandaStackEnv", 100, 31 + 6 + 6),
}


@dataclass(frozen=True)
class CameraPose:
    """A PyBullet camera orbiting ``target`` (degrees, metres), looking at the table."""

    target: tuple[float, float, float]
    distance: float
    yaw: float
    pitch: float
    fov: float = 60.0
    near: float = 0.05
    far: float = DEPTH_MAX_M


CAMERAS: dict[str, CameraPose] = {
    # Three-quarter view: shows both the table plane and the heights of hand and blocks.
    "corner": CameraPose(target=(-0.15, 0.0, 0.05), distance=0.8, yaw=60.0, pitch=-40.0),
    "front": CameraPose(target=(-0.1, 0.0, 0.05), distance=0.8, yaw=90.0, pitch=-45.0),
    "side": CameraPose(target=(-0.1, 0.0, 0.05), distance=0.9, yaw=0.0, pitch=-30.0),
}
DEFAULT_CAMERA = "corner"


def _panda_gym():
    require("pybullet", INSTALL_HINT)
    return require("panda_gym.envs", INSTALL_HINT)


def tasks() -> list[str]:
    """The panda task names (``pick-and-place``, ``stack``)."""
    return sorted(TASKS)


def depth_buffer_to_metres(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convert an OpenGL depth buffer (0 at ``near``, 1 at ``far``) to metres along the optical axis."""
    buffer = np.asarray(buffer, dtype=np.float64)
    return far * near / (far - (far - near) * buffer)


class PyBulletCamera:
    """A static camera in a PyBullet client: RGB uint8 (H, W, 3) and depth float32 metres (H, W, 1), one render."""

    def __init__(self, client, pose: CameraPose, size: int):
        import pybullet

        self._p, self.client, self.pose, self.size = pybullet, client, pose, size
        self.view = client.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=pose.target,
            distance=pose.distance,
            yaw=pose.yaw,
            pitch=pose.pitch,
            roll=0.0,
            upAxisIndex=2,
        )
        self.projection = client.computeProjectionMatrixFOV(
            fov=pose.fov, aspect=1.0, nearVal=pose.near, farVal=pose.far
        )

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Current ``(rgb, depth)``; row 0 is the top of the image."""
        _, _, rgba, buffer, _ = self.client.getCameraImage(
            self.size,
            self.size,
            viewMatrix=self.view,
            projectionMatrix=self.projection,
            shadow=False,
            renderer=self._p.ER_TINY_RENDERER,
            flags=self._p.ER_NO_SEGMENTATION_MASK,
        )
        # Older pybullet builds return flat tuples instead of arrays.
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(self.size, self.size, 4)[..., :3]
        buffer = np.asarray(buffer, dtype=np.float32).reshape(self.size, self.size, 1)
        depth = depth_buffer_to_metres(buffer, self.pose.near, self.pose.far)
        return np.ascontiguousarray(rgb), np.clip(depth, DEPTH_MIN_M, DEPTH_MAX_M).astype(np.float32)


def _make_goal_markers_pale(client) -> None:
    """Draw panda-gym's translucent goal markers as pale opaque blocks.

    TinyRenderer ignores alpha, so the markers would otherwise look exactly like the real blocks (for stack,
    like a finished tower) and an image-based agent could not tell goal from block.
    """
    for body in range(client.getNumBodies()):
        for shape in client.getVisualShapeData(body):
            link, rgba = shape[1], np.asarray(shape[7], dtype=np.float64)
            if rgba[3] < 1.0:
                pale = 0.4 * rgba[:3] + 0.6  # blend towards white
                client.changeVisualShape(body, link, rgbaColor=[*pale, 1.0])


# Scripted expert tuning, in metres. The 4 cm blocks fit the 8 cm-wide open gripper with 2 cm to spare.
_GAIN = 12.0  # action per metre of error: saturates beyond ~8 cm, gentle near the target
_ALIGN_TOL = 0.012  # hand this close to the block (xy) before descending
_GRASP_TOL = 0.006  # hand this close to the block centre (z) before closing
_HOVER = 0.07  # approach height above a block
_TRANSIT_Z = 0.1  # carry height: a held block clears a block standing on the table
_OPEN_WIDTH = 0.07  # finger width that counts as open
_DESCENT_SPEED = 0.4  # action cap while going down to grasp or place
_BLOCK_HALF = 0.02  # half the side of panda-gym's blocks: their centre height on the table
_PLACED_TOL = 0.03  # a stacking base block this close to its goal counts as placed


def pick_and_place_action(hand: np.ndarray, width: float, block: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """One step of a reactive pick-and-place controller moving ``block`` to ``goal`` (positions are xyz).

    Reactive rather than a stored phase, so it recovers when a block slips or data collection perturbs it:
    the phase (approach, descend, grasp, carry, release) is read off the hand, finger and block state.
    """
    if _holding(hand, width, block):
        return _carry(hand, block, goal)
    offset = block - hand
    dist_xy = float(np.linalg.norm(offset[:2]))
    hover = block + np.array([0.0, 0.0, _HOVER])
    low = hand[2] < hover[2] - 0.02
    # Once descending, tolerate a little more drift so the hand does not bounce back up.
    above = dist_xy < (2 * _ALIGN_TOL if low else _ALIGN_TOL)
    if not above:
        if low and 0.01 < width < _OPEN_WIDTH:
            return _move(hand, hand, grip=1.0)  # let go of what is held before moving away
        if low:
            # Rise before moving sideways; empty closed fingers stay closed so they cannot sweep a block.
            return _move(hand, np.array([hand[0], hand[1], hover[2]]), grip=1.0 if width > 0.01 else 0.0)
        return _move(hand, hover, grip=1.0)
    if width < _OPEN_WIDTH and (not low or width < 0.01):
        return _move(hand, hover, grip=1.0)  # open above the block (or retry after closing on nothing)
    if offset[2] < -_GRASP_TOL or dist_xy > _ALIGN_TOL:
        return _move(hand, block, grip=1.0, speed=_DESCENT_SPEED)
    return _move(hand, block, grip=-1.0)


def _holding(hand: np.ndarray, width: float, block: np.ndarray) -> bool:
    """Whether the fingers are closed on ``block`` (judged from positions and finger width alone)."""
    offset = block - hand
    # The fingers close along y and can slide the squeezed block sideways, so y gets the looser tolerance.
    return abs(offset[0]) < 0.03 and abs(offset[1]) < 0.04 and abs(offset[2]) < 0.025 and 0.01 < width < 0.06


def _carry(hand: np.ndarray, block: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Carry a held block: up to the transit height, across, then down onto the goal."""
    transit = max(_TRANSIT_Z, float(goal[2]))
    low = block[2] < transit - 0.03
    # Line up tightly before going down, but do not climb back up for a little drift on the way down.
    if np.linalg.norm(goal[:2] - block[:2]) < (0.025 if low else 0.008):
        # Fast vertical moves swing the arm sideways (the joint controller lags), so go down gently.
        return _move(hand, goal + (hand - block), grip=-1.0, speed=_DESCENT_SPEED)
    if low:
        target = np.array([block[0], block[1], transit])
    else:
        target = np.array([goal[0], goal[1], transit])
    return _move(hand, target + (hand - block), grip=-1.0)


def stack_action(
    hand: np.ndarray, width: float, bottom: np.ndarray, top: np.ndarray, goal_bottom: np.ndarray, goal_top: np.ndarray
) -> np.ndarray:
    """One step of the scripted stacker: clear the top block out of the way if needed, place the bottom block, stack."""
    if np.linalg.norm(bottom - goal_bottom) < _PLACED_TOL:
        # Stack on where the base block really is: a stable tower is within panda-gym's 10 cm tolerance.
        return pick_and_place_action(hand, width, top, bottom + (goal_top - goal_bottom))
    # The open fingers span ~10 cm along y: a block right beside the base leaves no room to grasp either,
    # so push it away along x first; a block near the base's goal is carried off to a free spot.
    top_on_table, bottom_on_table = top[2] < 0.04, bottom[2] < 0.04
    if top_on_table and bottom_on_table and _beside(top, bottom) and not _holding(hand, width, bottom):
        return push_action(hand, width, top, direction=1.0 if top[0] >= bottom[0] else -1.0)
    if _beside(top, goal_bottom) and (top_on_table or _holding(hand, width, top)):
        return pick_and_place_action(hand, width, top, _parking_spot(top, bottom, goal_bottom))
    return pick_and_place_action(hand, width, bottom, goal_bottom)


def _beside(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether blocks at ``a`` and ``b`` are too close (in xy) for the open fingers to reach down to either."""
    return abs(a[0] - b[0]) < 0.05 and abs(a[1] - b[1]) < 0.085


def push_action(hand: np.ndarray, width: float, block: np.ndarray, direction: float) -> np.ndarray:
    """One step of pushing ``block`` along ``direction`` × x with the closed gripper, from behind it."""
    start = block + np.array([-direction * 0.045, 0.0, 0.0])
    behind = 0.02 < direction * (block[0] - hand[0]) < 0.07 and abs(hand[1] - block[1]) < 0.015
    if behind and hand[2] < block[2] + 0.015:
        return _move(hand, block + np.array([direction * 0.05, 0.0, 0.0]), grip=-1.0, speed=0.5)
    if width > 0.01 and hand[2] < block[2] + 0.04:
        return _move(hand, hand, grip=-1.0)  # close in place, so open fingers do not sweep the blocks
    hover = start + np.array([0.0, 0.0, _HOVER])
    if np.linalg.norm(hand[:2] - start[:2]) < _ALIGN_TOL:
        return _move(hand, start, grip=-1.0, speed=_DESCENT_SPEED)
    if hand[2] < hover[2] - 0.02:
        return _move(hand, np.array([hand[0], hand[1], hover[2]]), grip=-1.0)
    return _move(hand, hover, grip=-1.0)


def _parking_spot(block: np.ndarray, bottom: np.ndarray, goal_bottom: np.ndarray) -> np.ndarray:
    """The free table spot nearest ``block`` that keeps it clear of the base block and of the base block's goal."""
    angles = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
    spots = goal_bottom[:2] + 0.12 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (12, 2)
    # Radius 0.12 and distance 0.1 keep the spot outside the ``_beside`` boxes of the goal and of the base block.
    free = [xy for xy in spots if np.max(np.abs(xy)) < 0.2 and np.linalg.norm(xy - bottom[:2]) > 0.1]
    best = min(free or list(spots), key=lambda xy: float(np.linalg.norm(xy - block[:2])))
    return np.array([best[0], best[1], _BLOCK_HALF])


def _move(hand: np.ndarray, target: np.ndarray, grip: float, speed: float = 1.0) -> np.ndarray:
    delta = np.clip(_GAIN * (target - hand), -speed, speed)
    return np.append(delta, grip).astype(np.float32)


class PandaEnv(gym.Env):
    """A panda-gym task behind a dict observation (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        if cfg.task not in TASKS:
            raise ValueError(f"unknown panda task {cfg.task!r}; valid tasks are {tasks()}")
        camera = cfg.camera or DEFAULT_CAMERA
        if camera not in CAMERAS:
            raise ValueError(f"unknown panda camera {camera!r}; valid cameras are {sorted(CAMERAS)}")
        self.cfg, self.task_spec = cfg, TASKS[cfg.task]
        self._open_world()
        # Per instance: the frame rate is the control rate (panda-gym writes it into a shared class dict instead).
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": 1.0 / self._env.sim.dt}
        self._horizon = (
            self.task_spec.horizon if cfg.max_episode_steps is None else cfg.max_episode_steps * cfg.action_repeat
        )
        self._steps = 0
        self._last: dict[str, np.ndarray] | None = None
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        sizes = {RGB: image_space(cfg.image_size, 3, depth=False), DEPTH: image_space(cfg.image_size, 1, depth=True)}
        sizes.update({PROPRIO: vector_space(PROPRIO_DIM), STATE: vector_space(self.task_spec.state_dim)})
        self.observation_space = gym.spaces.Dict({key: sizes[key] for key in cfg.obs})

    def _open_world(self) -> None:
        """A new PyBullet world with the task's bodies, and the cameras that look at it."""
        self._env = getattr(_panda_gym(), self.task_spec.env_class)(
            render_mode="rgb_array", reward_type=self.cfg.reward_type, control_type="ee", renderer="Tiny"
        )
        client = self._env.sim.physics_client
        _make_goal_markers_pale(client)
        pose = CAMERAS[self.cfg.camera or DEFAULT_CAMERA]
        self._camera = PyBulletCamera(client, pose, self.cfg.image_size) if {RGB, DEPTH} & set(self.cfg.obs) else None
        self._render_camera: PyBulletCamera | None = None
        self._stepped = False

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        self._last = raw
        out: dict[str, Any] = {}
        if self._camera is not None:
            rgb, depth = self._camera.render()
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = rgb
            elif key == DEPTH:
                out[key] = depth
            elif key == PROPRIO:
                out[key] = raw["observation"][:PROPRIO_DIM].astype(np.float32)
            elif key == STATE:
                out[key] = np.concatenate([raw["observation"], raw["achieved_goal"], raw["desired_goal"]]).astype(
                    np.float32
                )
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        if seed is not None and self._stepped:
            # panda-gym's reset only moves bodies: the first steps would still depend on hidden PyBullet state left
            # by earlier steps (docs/research-log.md). A seeded reset rebuilds the world (~0.15 s), so it is exact.
            self._env.close()
            self._open_world()
        # panda-gym reseeds its task from OS entropy on every unseeded reset; derive each episode's seed from
        # ours instead, so one seed fixes the whole sequence of episodes.
        raw, _ = self._env.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._steps = 0
        return self._observe(raw), {SUCCESS: False, "is_success": False}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,):
            raise ValueError(f"panda actions have shape (4,) = (dx, dy, dz, gripper), got {action.shape}")
        raw, reward, terminated, _, info = self._env.step(np.clip(action, -1.0, 1.0))
        self._stepped = True
        self._steps += 1
        success = bool(info["is_success"])
        info = {SUCCESS: success, "is_success": success}
        truncated = self._steps >= self._horizon and not terminated
        return self._observe(raw), float(reward), bool(terminated), truncated, info

    def expert_action(self) -> np.ndarray:
        """Scripted expert's action for the current state (pick, carry, place; for stack, the bottom block first)."""
        if self._last is None:
            raise RuntimeError("call reset() before expert_action()")
        obs, goal = self._last["observation"].astype(np.float64), self._last["desired_goal"].astype(np.float64)
        hand, width = obs[:3], float(obs[6])
        if self.cfg.task == "pick-and-place":
            return pick_and_place_action(hand, width, obs[7:10], goal)
        return stack_action(hand, width, obs[7:10], obs[19:22], goal[:3], goal[3:])

    def render(self) -> np.ndarray:
        """A 256×256 RGB view for videos, from the observation camera."""
        if self._render_camera is None:
            pose = CAMERAS[self.cfg.camera or DEFAULT_CAMERA]
            self._render_camera = PyBulletCamera(self._env.sim.physics_client, pose, RENDER_SIZE)
        return self._render_camera.render()[0]

    def close(self) -> None:
        """Release the simulator and renderers."""
        self._env.close()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a panda-gym environment for ``cfg``."""
    return PandaEnv(cfg)
