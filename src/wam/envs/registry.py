"""One table of simulator suites: name → how to list its tasks and how to build one.

Suites import their simulator lazily inside ``build``/``tasks`` so that ``import wam`` never needs
optional simulators installed.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

import gymnasium as gym

from wam.envs.config import EnvConfig


class MissingSimulatorError(ImportError):
    """An optional simulator is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Suite:
    """A family of environments behind one ``<suite>/`` prefix."""

    name: str
    module: str
    """Module (under ``wam.envs``) that defines ``tasks()`` and ``build(cfg)``."""
    obs_keys: tuple[str, ...]
    """Observation keys this suite can emit."""
    description: str

    def _load(self):
        return importlib.import_module(f"wam.envs.{self.module}")

    def tasks(self) -> list[str]:
        """All task names of this suite (may import the simulator)."""
        return list(self._load().tasks())

    def build(self, cfg: EnvConfig) -> gym.Env:
        """Build one environment for ``cfg``."""
        return self._load().build(cfg)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "metaworld",
            "metaworld",
            ("rgb", "depth", "proprio", "state", "task"),
            "MetaWorld v3 manipulation, 50 tasks + mt10",
        ),
        Suite("panda", "panda", ("rgb", "depth", "proprio", "state"), "panda-gym block stacking / pick-and-place"),
        Suite("dmc", "dmc", ("rgb", "depth", "proprio", "state"), "DeepMind Control Suite"),
        Suite("miniworld", "miniworld", ("rgb", "depth", "proprio"), "MiniWorld first-person navigation (discrete)"),
        Suite("pointmaze", "pointmaze", ("rgb", "depth", "proprio", "state"), "gymnasium-robotics PointMaze"),
        Suite("habitat", "habitat", ("rgb", "depth", "proprio"), "Habitat (needs habitat-sim from conda)"),
        Suite("toy", "toy", ("rgb", "depth", "proprio", "state"), "tiny synthetic tasks for fast learning checks"),
    )
}


def suggest(word: str, choices: list[str]) -> str:
    """Return a "did you mean" hint for ``word`` among ``choices`` (empty when nothing is close)."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def get_suite(name: str) -> Suite:
    """Look a suite up by name, with a helpful error listing the valid ones."""
    if name not in SUITES:
        raise ValueError(
            f"unknown environment suite {name!r}{suggest(name, list(SUITES))} Valid suites: {sorted(SUITES)}"
        )
    return SUITES[name]


def require(module: str, install_hint: str):
    """Import an optional simulator module or raise :class:`MissingSimulatorError` with ``install_hint``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingSimulatorError(f"{module!r} is not installed ({e}). Install it with: {install_hint}") from e


def check_task(suite: Suite, task: str) -> None:
    """Raise a clear error when ``task`` is not one of ``suite``'s tasks."""
    tasks = suite.tasks()
    if task not in tasks:
        full = [f"{suite.name}/{t}" for t in tasks]
        shown = ", ".join(full[:12]) + (f", … ({len(full)} in all)" if len(full) > 12 else "")
        raise ValueError(
            f"unknown environment '{suite.name}/{task}'{suggest(f'{suite.name}/{task}', full)} Valid: {shown}"
        )


def check_obs(suite: Suite, obs: tuple[str, ...]) -> None:
    """Raise when ``obs`` asks for a key this suite cannot emit."""
    bad = [k for k in obs if k not in suite.obs_keys]
    if bad:
        raise ValueError(f"suite {suite.name!r} cannot emit observation key(s) {bad}; it offers {list(suite.obs_keys)}")


def list_envs(suite: str | None = None) -> list[str]:
    """All ``<suite>/<task>`` names of installed suites (or of one suite)."""
    names = []
    for s in [get_suite(suite)] if suite else SUITES.values():
        try:
            names += [f"{s.name}/{t}" for t in s.tasks()]
        except MissingSimulatorError:
            if suite:
                raise
    return names
