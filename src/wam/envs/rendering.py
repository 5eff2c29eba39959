"""Headless MuJoCo camera: upright RGB and metric depth from one renderer, shadows off for speed.

Shadows cost ~35 ms per frame on Mesa's software renderer; robot learning at 64×64 does not need them. Multisample
anti-aliasing (MuJoCo's default, kept unless ``antialias=False``) is most of what an RGB frame still costs there.
"""

from __future__ import annotations

import atexit
import os
import weakref

import numpy as np

from wam.constants import DEPTH_MAX_M, DEPTH_MIN_M


def configure_headless_gl() -> None:
    """Pick EGL for MuJoCo unless the user chose a backend (call before importing mujoco)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def check_camera(model, camera: str) -> None:
    """Raise ``ValueError`` naming the model's cameras unless it has one called ``camera``."""
    names = [model.camera(i).name for i in range(model.ncam)]
    if camera not in names:
        raise ValueError(f"unknown camera {camera!r}; this model has {names}")


class MujocoCamera:
    """Render RGB (uint8, H×W×3) and depth (float32 metres, H×W×1) from a named camera of a MuJoCo model."""

    def __init__(self, model, data, camera: str | int, size: int, flip: bool = False, antialias: bool = True):
        import mujoco

        self._mujoco = mujoco
        self.model, self.data, self.camera, self.flip = model, data, camera, flip
        if isinstance(camera, str):
            check_camera(model, camera)
        # The offscreen buffer must be at least as large as the image.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        samples = model.vis.quality.offsamples
        if not antialias:  # the GL context reads the sample count when it is made: restore it for other renderers
            model.vis.quality.offsamples = 0
        try:
            self._renderer = mujoco.Renderer(model, height=size, width=size)
        finally:
            model.vis.quality.offsamples = samples
        self._scene_option = mujoco.MjvOption()
        # Free the GL context before MuJoCo's own exit hook tears EGL down (else noisy errors at exit):
        # atexit runs hooks last-registered-first, and this one is registered after mujoco's.
        self._finalizer = weakref.finalize(self, self._renderer.close)
        self._finalizer.atexit = False
        atexit.register(self._finalizer)

    def _update(self) -> None:
        self._renderer.update_scene(self.data, camera=self.camera, scene_option=self._scene_option)
        flags = self._renderer.scene.flags
        flags[self._mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[self._mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def rgb(self) -> np.ndarray:
        """Current RGB frame, uint8 (H, W, 3)."""
        self._renderer.disable_depth_rendering()
        self._update()
        img = self._renderer.render()
        return np.ascontiguousarray(img[::-1, ::-1] if self.flip else img)

    def depth(self) -> np.ndarray:
        """Current depth frame in metres, float32 (H, W, 1), clipped to the documented range."""
        self._renderer.enable_depth_rendering()
        self._update()
        d = self._renderer.render()
        self._renderer.disable_depth_rendering()
        d = np.clip(d, DEPTH_MIN_M, DEPTH_MAX_M).astype(np.float32)[..., None]
        return np.ascontiguousarray(d[::-1, ::-1] if self.flip else d)

    def close(self) -> None:
        """Free the GL context."""
        self._finalizer()
