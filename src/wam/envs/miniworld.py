"""MiniWorld first-person navigation as dict-observation Gymnasium environments, run in a child process.

``miniworld/<Env>`` is ``MiniWorld-<Env>-v0`` (e.g. ``miniworld/OneRoom``, ``miniworld/MazeS3``) for the
goal-reaching tasks of MiniWorld 2.1 (see :data:`TASKS`). Left out: ``Sign`` (its goal colour is an extra
observation our keys cannot carry) and ``CollectHealth`` / ``RoomObjects`` / ``ThreeRooms`` (no goal, so no
success to report).

* Actions: each task's own ``Discrete`` space, unchanged. The navigation tasks keep MiniWorld's restriction to
  the movement actions 0 = turn left, 1 = turn right, 2 = move forward; ``PickupObjects`` adds 3 = move back and
  4 = pickup, and ``PutNext`` offers all eight MiniWorld actions.
* ``rgb`` (H, W, 3) uint8: the agent's first-person camera at ``cfg.image_size`` (upright, sky at the top).
* ``depth`` (H, W, 1) float32: z-distance in metres from the same camera and frame (MiniWorld units are metres),
  decoded from MiniWorld's 16-bit depth buffer (≈ 4 cm resolution at 10 m) and clipped to
  ``[DEPTH_MIN_M, DEPTH_MAX_M]`` — the sky reads as ``DEPTH_MAX_M``.
* ``proprio`` (4,): agent position on the floor (x, z) in metres and heading (cos θ, sin θ), where θ is
  MiniWorld's ``agent.dir`` in radians (the agent faces the floor direction (cos θ, −sin θ) in (x, z)).
* ``info["success"]``: the step terminated the episode with a positive reward. Every task here ends the
  episode with ``reward > 0`` exactly when its goal is reached (MiniWorld's reward there is
  ``1 - 0.2 * t / T`` > 0), while failure terminations (``Sidewalk``: walking into the street) give ``reward <= 0``.

MiniWorld renders through pyglet's OpenGL, which breaks in a process that also holds a MuJoCo EGL context. So
:func:`build` runs the simulator in a spawned child process behind :class:`SubprocessEnv`, and MiniWorld can be
mixed with the MuJoCo suites in one program. Inside a daemonic process (a ``gym.vector.AsyncVectorEnv``
worker, which cannot have children and hosts nothing else) it runs in-process instead.
"""

from __future__ import annotations

import importlib.util
import math
import multiprocessing as mp
import os
import pickle
import traceback
import weakref
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from wam.constants import DEPTH, DEPTH_MAX_M, DEPTH_MIN_M, PROPRIO, RGB, SUCCESS
from wam.envs.config import EnvConfig
from wam.envs.registry import MissingSimulatorError, require
from wam.envs.wrappers import dict_obs_space

INSTALL_HINT = "pip install 'miniworld==2.1.0' 'pyglet==1.5.31'"
#: MiniWorld 2.1 goal-reaching tasks; hard-coded because listing them by importing miniworld would open an
#: OpenGL context in the calling process, the very thing the child process is there to avoid.
TASKS: tuple[str, ...] = (
    "FourRooms",
    "Hallway",
    "Maze",
    "MazeS2",
    "MazeS3",
    "MazeS3Fast",
    "OneRoom",
    "OneRoomS6",
    "OneRoomS6Fast",
    "PickupObjects",
    "PutNext",
    "Sidewalk",
    "TMaze",
    "TMazeLeft",
    "TMazeRight",
    "WallGap",
    "YMaze",
    "YMazeLeft",
    "YMazeRight",
)
PROPRIO_DIM = 4
# MiniWorld's render_obs hard-codes these clipping planes; the depth buffer is decoded with the same values.
_Z_NEAR, _Z_FAR = 0.04, 100.0
_RENDER_SIZE = 256
_REPLY_TIMEOUT_S = 120.0


def tasks() -> list[str]:
    """The MiniWorld task names this suite offers (``OneRoom``, ``Hallway``, ``MazeS3``, ...)."""
    if importlib.util.find_spec("miniworld") is None:
        raise MissingSimulatorError(f"'miniworld' is not installed. Install it with: {INSTALL_HINT}")
    return list(TASKS)


def is_success(terminated: bool, reward: float) -> bool:
    """MiniWorld's goal test: the episode terminated with a positive reward (see module docstring)."""
    return bool(terminated) and float(reward) > 0.0


def _import_miniworld():
    """Import miniworld with pyglet switched to headless EGL (must happen before pyglet is first imported)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    pyglet = require("pyglet", INSTALL_HINT)
    pyglet.options["headless"] = True
    return require("miniworld", INSTALL_HINT)


class MiniWorldEnv(gym.Env):
    """One MiniWorld task behind a dict observation, in this process (see module docstring).

    Only safe in a process without a MuJoCo EGL context; :func:`build` wraps it in :class:`SubprocessEnv`.
    """

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, cfg: EnvConfig):
        _import_miniworld()
        if cfg.camera is not None:
            raise ValueError(f"miniworld has only the agent's camera; leave camera=None (got {cfg.camera!r})")
        self.cfg = cfg
        size = cfg.image_size
        # MiniWorld's human view framebuffer doubles as our 256×256 top-down render() target.
        self._env = gym.make(
            f"MiniWorld-{cfg.task}-v0",
            obs_width=size,
            obs_height=size,
            window_width=_RENDER_SIZE,
            window_height=_RENDER_SIZE,
            disable_env_checker=True,
        ).unwrapped
        if cfg.max_episode_steps is not None:
            # Set after construction: several tasks pass their own max_episode_steps to the base class.
            self._env.max_episode_steps = cfg.max_episode_steps * cfg.action_repeat
        self.action_space = gym.spaces.Discrete(int(self._env.action_space.n))
        self.observation_space = dict_obs_space(cfg.obs, size, {PROPRIO: PROPRIO_DIM})

    @property
    def sim(self):
        """The underlying ``miniworld.MiniWorldEnv``."""
        return self._env

    def _observe(self, frame: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.cfg.obs:
            if key == RGB:
                out[key] = np.array(frame, dtype=np.uint8)
            elif key == DEPTH:
                # The frame just rendered left its depth buffer in obs_fb: decode it instead of rendering again.
                depth = self._env.obs_fb.get_depth_map(_Z_NEAR, _Z_FAR)
                out[key] = np.clip(depth, DEPTH_MIN_M, DEPTH_MAX_M).astype(np.float32)
            elif key == PROPRIO:
                agent = self._env.agent
                x, _, z = agent.pos
                out[key] = np.array([x, z, math.cos(agent.dir), math.sin(agent.dir)], dtype=np.float32)
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        frame, _ = self._env.reset(seed=seed, options=options)
        return self._observe(frame), {SUCCESS: False}

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        action = int(np.asarray(action).reshape(()))
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} is outside {self.action_space} for miniworld/{self.cfg.task}")
        frame, reward, terminated, truncated, info = self._env.step(action)
        info = dict(info)
        info[SUCCESS] = is_success(terminated, reward)
        return self._observe(frame), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray:
        """A 256×256 top-down RGB map of the level (agent as a red triangle), for videos."""
        return np.array(self._env.render_top_view(self._env.vis_fb), dtype=np.uint8)

    def close(self) -> None:
        """Release the simulator and renderers."""
        self._env.close()


def _portable(exc: Exception) -> tuple[Exception, str]:
    """The exception (or a RuntimeError stand-in when it cannot be pickled) and its formatted traceback."""
    tb = "".join(traceback.format_exception(exc))
    try:
        pickle.dumps(exc)
    except Exception:  # any pickling failure means: send a plain stand-in
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc, tb


def _serve(conn, factory: Callable[[EnvConfig], gym.Env], cfg: EnvConfig) -> None:
    """Child-process loop: build the env, then answer ``(method, kwargs)`` requests until ``close``."""
    try:
        env = factory(cfg)
        conn.send(("ok", (env.observation_space, env.action_space)))
    except Exception as e:  # any failure is reported to the parent, which raises it
        conn.send(("error", _portable(e)))
        conn.close()
        return
    try:
        while True:
            method, kwargs = conn.recv()
            try:
                result = getattr(env, method)(**kwargs)
                conn.send(("ok", result))
            except Exception as e:  # same: report, keep serving
                conn.send(("error", _portable(e)))
            if method == "close":
                break
    except (EOFError, KeyboardInterrupt):
        # The parent went away or the user pressed Ctrl-C: nothing to answer, just exit.
        env.close()
    finally:
        conn.close()


def _shutdown(conn, proc) -> None:
    """Ask the child to exit, then make sure it does (used by close() and on garbage collection)."""
    if proc.is_alive():
        try:
            conn.send(("close", {}))
            if conn.poll(5.0):
                conn.recv()
        except (BrokenPipeError, EOFError, OSError):
            pass  # the child is already gone
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
    conn.close()


class SubprocessEnv(gym.Env):
    """Run ``factory(cfg)`` in a spawned child process and forward ``reset``/``step``/``render``/``close`` to it.

    Exceptions raised in the child are re-raised here with their type, the child's traceback attached as a note.
    """

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, factory: Callable[[EnvConfig], gym.Env], cfg: EnvConfig, timeout_s: float = _REPLY_TIMEOUT_S):
        self.cfg, self.timeout_s = cfg, timeout_s
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        # daemon: the child dies with this process even if close() is never called.
        self._proc = ctx.Process(target=_serve, args=(child_conn, factory, cfg), daemon=True, name=f"wam-{cfg.name}")
        self._proc.start()
        child_conn.close()
        self._finalizer = weakref.finalize(self, _shutdown, self._conn, self._proc)
        self.observation_space, self.action_space = self._reply("build")

    @property
    def pid(self) -> int | None:
        """Process id of the child running the simulator."""
        return self._proc.pid

    def _reply(self, method: str):
        try:
            if not self._conn.poll(self.timeout_s):
                raise TimeoutError(
                    f"{self.cfg.name} worker (pid {self._proc.pid}) did not answer {method!r} within {self.timeout_s:.0f} s"
                )
            status, payload = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as e:
            self._proc.join(timeout=1.0)
            hint = (
                " (its stderr shows why; a script that builds environments must guard its entry point with"
                ' `if __name__ == "__main__":`, because spawned processes re-import the main module)'
                if method == "build"
                else ""
            )
            raise RuntimeError(
                f"{self.cfg.name} worker (pid {self._proc.pid}) died during {method!r}, exit code {self._proc.exitcode}{hint}"
            ) from e
        if status == "error":
            exc, tb = payload
            exc.add_note(f"raised in the {self.cfg.name} worker process (pid {self._proc.pid}):\n{tb}")
            raise exc
        return payload

    def _call(self, method: str, **kwargs):
        if not self._finalizer.alive:
            raise RuntimeError(f"{self.cfg.name} environment is closed")
        self._conn.send((method, kwargs))
        return self._reply(method)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; returns (observation dict, info)."""
        super().reset(seed=seed)
        return self._call("reset", seed=seed, options=options)

    def step(self, action):
        """Apply one action; returns (observation dict, reward, terminated, truncated, info)."""
        return self._call("step", action=action)

    def render(self) -> np.ndarray:
        """The child env's ``render()``."""
        return self._call("render")

    def close(self) -> None:
        """Release the simulator and renderers."""
        self._finalizer()


def build(cfg: EnvConfig) -> gym.Env:
    """Build a MiniWorld environment for ``cfg``, in a child process unless this process is daemonic."""
    tasks()  # fail here, with the install hint, when miniworld is missing
    if mp.current_process().daemon:
        return MiniWorldEnv(cfg)
    return SubprocessEnv(MiniWorldEnv, cfg)
