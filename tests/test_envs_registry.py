"""The suite table: every registered suite is a module with the two functions docs/extending.md names."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from wam.constants import OBS_KEYS
from wam.envs.registry import SUITES, MissingSimulatorError, require


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_registered_suite_module_defines_tasks_and_build_without_importing_its_simulator(name):
    suite = SUITES[name]
    assert suite.name == name and set(suite.obs_keys) <= set(OBS_KEYS), suite
    spec = importlib.util.find_spec(f"wam.envs.{suite.module}")
    assert spec is not None and spec.origin, f"SUITES[{name!r}] names wam.envs.{suite.module}, which does not exist"
    # Read the module as text: importing it must not be needed to register (simulators are optional).
    tree = ast.parse(Path(spec.origin).read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"tasks", "build"} <= set(functions), f"wam.envs.{suite.module} must define tasks() and build(cfg)"
    assert [a.arg for a in functions["build"].args.args] == ["cfg"]


def test_a_missing_simulator_names_the_install_command():
    with pytest.raises(MissingSimulatorError, match="pip install no-such-simulator"):
        require("no_such_simulator_module", "pip install no-such-simulator")


@pytest.mark.parametrize(
    "obs", ["proprio,rgb,depth", ("proprio", "rgb", "depth"), ("proprio,rgb", "depth"), (" proprio , rgb,depth ",)]
)
def test_observation_keys_may_be_comma_or_space_separated(obs):
    from wam.envs.config import EnvConfig

    assert EnvConfig(obs=obs).obs == ("proprio", "rgb", "depth")


@pytest.mark.parametrize("flags", [["--obs", "proprio,rgb,depth"], ["--obs", "proprio", "rgb", "depth"]])
def test_train_cli_accepts_both_obs_spellings(flags):
    import tyro

    from wam.cli.train import TrainArgs

    assert tyro.cli(TrainArgs, args=flags).to_config().obs == ("proprio", "rgb", "depth")
