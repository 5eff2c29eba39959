"""Benchmark suites: a pre-registered TOML file → typed dataclasses, validated with messages that say what to fix.

A suite fixes the protocol that every agent shares (env-step budget, train ratio, evaluation schedule and
episodes, seeds, success thresholds, flags common to every run) and lists the agents (name → extra
``wam train`` flags) and the tasks (environment, observation keys, extra environment flags). Agent and task
flags may not touch the protocol: that is what makes the comparison matched. Example (``debug.toml``)::

    name = "debug"
    budget = 60
    eval_every = 30
    eval_episodes = 1
    train_ratio = 8
    seeds = 1
    thresholds = [0.5]

    [agents]
    wam = ["--agent", "wam", "--wam.size", "tiny"]

    [[tasks]]
    env = "metaworld/reach-v3"
    obs = ["state"]
    flags = ["--max-episode-steps", "20"]

An optional ``[demos]`` table (``episodes``, ``seed``, ``noise``) gives every task a dataset of expert episodes,
collected before the first run that needs it; an agent trains with it by ``"--demos", "{demos}"`` in its flags.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from wam.envs.registry import check_obs, get_suite, suggest

#: ``wam train`` flags that only the suite may set, identically for every agent and task.
PROTOCOL_FLAGS = (
    "--steps",
    "--seed",
    "--train-ratio",
    "--eval-every",
    "--eval-episodes",
    "--out",
    "--env",
    "--obs",
    "--threads",
    "--resume",
    "--progress",
    "--no-progress",
    "--num-envs",
    "--eval-envs",
)
CLAIM_KINDS = ("success", "steps")
_TOP_KEYS = (
    "name",
    "description",
    "budget",
    "eval_every",
    "eval_episodes",
    "train_ratio",
    "seeds",
    "thresholds",
    "common_flags",
    "agents",
    "references",
    "tasks",
    "claims",
    "demos",
)
_DEMO_KEYS = ("episodes", "seed", "noise")
#: In agent flags, the path of the task's demonstration dataset (``--demos {demos}``; see :class:`DemoSpec`).
DEMOS_PLACEHOLDER = "{demos}"
_REFERENCE_KEYS = ("flags", "train_ratio", "tasks")
_TASK_KEYS = ("env", "obs", "flags", "name")
_CLAIM_KEYS = ("kind", "text", "agent", "baseline", "task", "claimed", "threshold")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SuiteError(ValueError):
    """A suite file is malformed; the message names the file, the field and what was expected."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite: an environment with its observation keys and extra environment flags."""

    name: str
    """Label used in result paths and tables (default: ``env`` with ``/`` replaced by ``-``)."""
    env: str
    """Environment name, ``<suite>/<task>``."""
    obs: tuple[str, ...]
    """Observation keys given to every agent on this task."""
    flags: tuple[str, ...] = ()
    """Extra environment flags of ``wam train`` (e.g. ``--max-episode-steps 20``, ``--reward-type sparse``)."""


@dataclass(frozen=True)
class ClaimSpec:
    """A claim to test against the data, stated before the runs."""

    kind: str
    """``success``: final success of ``agent`` minus ``baseline`` on ``task`` is at least ``claimed`` (absolute).
    ``steps``: env steps of ``agent`` / ``baseline`` to reach ``threshold`` (aggregate over tasks) is at most ``claimed``."""
    text: str
    """The claim as worded by its source."""
    agent: str
    """The agent the claim is about."""
    baseline: str
    """The agent it is compared with."""
    claimed: float
    """Claimed difference in success rate (``success``) or steps ratio (``steps``)."""
    task: str | None = None
    """Task label (``success`` claims); ``None`` means the aggregate over all tasks."""
    threshold: float | None = None
    """Success threshold (``steps`` claims); default: the suite's first threshold."""


@dataclass(frozen=True)
class DemoSpec:
    """Expert demonstrations a suite's agents may train with: one dataset per task, collected by ``wam bench`` with
    ``wam data collect`` before the first run that needs it (agents name it ``--demos {demos}`` in their flags)."""

    episodes: int
    """Expert episodes per task."""
    seed: int = 0
    """Seed of the collecting environment (the expert's goals)."""
    noise: float = 0.0
    """Std of Gaussian noise on the expert's actions."""


@dataclass(frozen=True)
class Suite:
    """A pre-registered benchmark suite (see the module docstring for the file format)."""

    name: str
    budget: int
    """Environment steps per run, the same for every agent."""
    eval_every: int
    """Evaluate every this many environment steps (and at the end)."""
    eval_episodes: int
    """Evaluation episodes per evaluation."""
    train_ratio: float
    """Replayed steps per environment step, the same for every agent."""
    seeds: int
    """Seeds per (agent, task): ``0 .. seeds-1``."""
    agents: dict[str, tuple[str, ...]]
    """Agent label → extra ``wam train`` flags (reference agents included, last)."""
    tasks: tuple[TaskSpec, ...]
    thresholds: tuple[float, ...] = (0.5,)
    """Success thresholds for the steps-to-threshold table."""
    common_flags: tuple[str, ...] = ()
    """Flags given to every run (e.g. ``--prefill``, ``--replay-capacity``)."""
    claims: tuple[ClaimSpec, ...] = ()
    references: dict[str, float] = field(default_factory=dict)
    """Reference agents (label → their own train ratio): reported beside the matched agents, never in a claim."""
    reference_tasks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Reference agent → the only tasks it runs on (absent: every task)."""
    description: str = ""
    demos: DemoSpec | None = None
    """Expert demonstrations per task, for agents whose flags hold ``{demos}``; ``None``: none."""
    path: str | None = field(default=None, compare=False)
    """File the suite was read from."""

    def runs_on(self, agent: str, task: str) -> bool:
        """Whether ``agent`` has runs on ``task`` (every agent does, except a reference limited to some tasks)."""
        return task in self.reference_tasks.get(agent, (task,))

    def train_ratio_of(self, agent: str) -> float:
        """The train ratio of ``agent``: the suite's, or a reference agent's own."""
        return self.references.get(agent, self.train_ratio)

    @property
    def milestones(self) -> list[int]:
        """Env steps at which every run is evaluated: 0, eval_every, 2·eval_every, …, budget."""
        steps = list(range(0, self.budget, self.eval_every))
        return steps + [self.budget]

    def task(self, name: str) -> TaskSpec:
        """The task labelled ``name``."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise SuiteError(
            f"suite {self.name!r} has no task {name!r}{suggest(name, [t.name for t in self.tasks])} "
            f"Tasks: {[t.name for t in self.tasks]}"
        )


def _fail(where: str, message: str) -> SuiteError:
    return SuiteError(f"{where}: {message}")


def _unknown_keys(where: str, table: dict, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key {key!r}{suggest(key, list(allowed))} Allowed keys: {list(allowed)}")


def _flags(where: str, value, owner: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{owner} must be a list of strings (wam train flags), got {value!r}")
    for flag in value:
        base = flag.split("=", 1)[0]
        if base in PROTOCOL_FLAGS:
            raise _fail(
                where,
                f"{owner} sets {base}, which belongs to the matched protocol; set it at the top of the suite "
                f"(budget, seeds, train_ratio, eval_every, eval_episodes, tasks) so every agent gets the same value",
            )
    return tuple(value)


def _number(where: str, data: dict, key: str, kind: type, minimum: float, default=None):
    if key not in data:
        if default is not None:
            return default
        raise _fail(where, f"missing required key {key!r}")
    value = data[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not ok or value < minimum:
        raise _fail(where, f"{key}={value!r} must be {'an integer' if kind is int else 'a number'} >= {minimum}")
    return kind(value)


def _task(where: str, data: dict) -> TaskSpec:
    if not isinstance(data, dict):
        raise _fail(where, f"each [[tasks]] entry must be a table, got {data!r}")
    _unknown_keys(where, data, _TASK_KEYS)
    env = data.get("env")
    if not isinstance(env, str) or "/" not in env:
        raise _fail(where, f"env={env!r} must look like '<suite>/<task>', e.g. 'metaworld/reach-v3'")
    obs = data.get("obs", ["state"])
    if not isinstance(obs, list) or not obs or not all(isinstance(o, str) for o in obs):
        raise _fail(where, f'obs={obs!r} must be a non-empty list of observation keys, e.g. ["state"]')
    try:
        check_obs(get_suite(env.split("/", 1)[0]), tuple(obs))
    except ValueError as e:
        raise _fail(where, str(e)) from None
    name = data.get("name", env.replace("/", "-"))
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"name={name!r} must be letters, digits, '.', '_' or '-' (it becomes a folder name)")
    return TaskSpec(name=name, env=env, obs=tuple(obs), flags=_flags(where, data.get("flags", []), "flags"))


def _claim(where: str, data: dict, agents: dict, tasks: list[TaskSpec]) -> ClaimSpec:
    _unknown_keys(where, data, _CLAIM_KEYS)
    kind = data.get("kind")
    if kind not in CLAIM_KINDS:
        raise _fail(where, f"kind={kind!r}; use one of {list(CLAIM_KINDS)}")
    for key in ("agent", "baseline"):
        if data.get(key) not in agents:
            raise _fail(where, f"{key}={data.get(key)!r} is not an agent of this suite; agents: {list(agents)}")
    task = data.get("task")
    if task is not None and task not in [t.name for t in tasks]:
        names = [t.name for t in tasks]
        raise _fail(where, f"task={task!r} is not a task of this suite{suggest(str(task), names)} Tasks: {names}")
    if not isinstance(data.get("text"), str):
        raise _fail(where, "missing 'text' (the claim as worded by its source)")
    threshold = data.get("threshold")
    if threshold is not None and not 0.0 < float(threshold) <= 1.0:
        raise _fail(where, f"threshold={threshold!r} must be in (0, 1]")
    return ClaimSpec(
        kind=kind,
        text=data["text"],
        agent=data["agent"],
        baseline=data["baseline"],
        claimed=_number(where, data, "claimed", float, -1e9),
        task=task,
        threshold=None if threshold is None else float(threshold),
    )


def parse_suite(data: dict, where: str = "suite") -> Suite:
    """Validate a suite's parsed TOML table and build a :class:`Suite`."""
    _unknown_keys(where, data, _TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"name={name!r} must be a non-empty string of letters, digits, '.', '_' or '-'")
    budget = _number(where, data, "budget", int, 1)
    eval_every = _number(where, data, "eval_every", int, 1)
    if eval_every > budget:
        raise _fail(where, f"eval_every={eval_every} is larger than budget={budget}")
    agents_raw = data.get("agents")
    if not isinstance(agents_raw, dict) or not agents_raw:
        raise _fail(where, "missing [agents] table (agent label → list of wam train flags)")
    agents = {}
    for label, flags in agents_raw.items():
        if not _NAME.match(label):
            raise _fail(where, f"agent label {label!r} must be letters, digits, '.', '_' or '-'")
        agents[label] = _flags(f"{where} [agents] {label}", flags, "agent flags")
    references, reference_tasks = {}, {}
    for label, table in data.get("references", {}).items():
        at = f"{where} [references] {label}"
        if not _NAME.match(label) or label in agents:
            raise _fail(
                at, "a reference label must be letters, digits, '.', '_' or '-' and differ from every agent label"
            )
        if not isinstance(table, dict):
            raise _fail(at, "must be a table: {flags = [...], train_ratio = N}")
        _unknown_keys(at, table, _REFERENCE_KEYS)
        agents[label] = _flags(at, table.get("flags", []), "reference flags")
        references[label] = _number(at, table, "train_ratio", float, 1e-9)
        if "tasks" in table:
            reference_tasks[label] = tuple(_flags(at, table["tasks"], "tasks"))
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise _fail(where, "missing [[tasks]] entries (each with env = '<suite>/<task>' and obs = [...])")
    tasks = [_task(f"{where} [[tasks]] #{i + 1}", t) for i, t in enumerate(tasks_raw)]
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(where, f"task name(s) {duplicates} appear twice; give one of them a distinct name = '...'")
    for label, names in reference_tasks.items():
        for task_name in names:
            if task_name not in {t.name for t in tasks}:
                raise _fail(
                    f"{where} [references] {label}",
                    f"unknown task {task_name!r}{suggest(task_name, [t.name for t in tasks])}",
                )
    thresholds = data.get("thresholds", [0.5])
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in thresholds)
    ):
        raise _fail(where, f"thresholds={thresholds!r} must be a non-empty list of success rates in (0, 1]")
    claims = data.get("claims", [])
    if not isinstance(claims, list):
        raise _fail(where, "claims must be an array of tables ([[claims]])")
    demos = _demos(f"{where} [demos]", data["demos"]) if "demos" in data else None
    users = [label for label, flags in agents.items() if DEMOS_PLACEHOLDER in flags]
    if users and demos is None:
        raise _fail(where, f"agents {users} train with {DEMOS_PLACEHOLDER} but the suite has no [demos] table")
    return Suite(
        name=name,
        budget=budget,
        eval_every=eval_every,
        eval_episodes=_number(where, data, "eval_episodes", int, 1),
        train_ratio=_number(where, data, "train_ratio", float, 1e-9),
        seeds=_number(where, data, "seeds", int, 1),
        agents=agents,
        tasks=tuple(tasks),
        thresholds=tuple(float(x) for x in thresholds),
        common_flags=_flags(where, data.get("common_flags", []), "common_flags"),
        claims=tuple(
            _claim(f"{where} [[claims]] #{i + 1}", c, {a: f for a, f in agents.items() if a not in references}, tasks)
            for i, c in enumerate(claims)
        ),
        references=references,
        reference_tasks=reference_tasks,
        description=str(data.get("description", "")),
        demos=demos,
    )


def _demos(where: str, data) -> DemoSpec:
    if not isinstance(data, dict):
        raise _fail(where, "must be a table: {episodes = N, seed = S, noise = σ}")
    _unknown_keys(where, data, _DEMO_KEYS)
    return DemoSpec(
        episodes=_number(where, data, "episodes", int, 1),
        seed=_number(where, data, "seed", int, 0, default=0),
        noise=_number(where, data, "noise", float, 0.0, default=0.0),
    )


def default_suites_dir() -> Path:
    """``benchmarks/suites`` of the current directory, else of the source checkout this package lives in."""
    here = Path("benchmarks/suites")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "benchmarks" / "suites"


def suite_path(name_or_path: str, suites_dir: str | Path | None = None) -> Path:
    """Resolve ``quick-state`` or ``path/to/suite.toml`` to an existing file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist")
        return path
    folder = Path(suites_dir) if suites_dir is not None else default_suites_dir()
    path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise SuiteError(f"unknown suite {name_or_path!r}{suggest(name_or_path, known)} Suites in {folder}: {known}")
    return path


def load_suite(name_or_path: str, suites_dir: str | Path | None = None) -> Suite:
    """Read and validate a suite by name (``benchmarks/suites/<name>.toml``) or by path."""
    path = suite_path(name_or_path, suites_dir)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"{path}: not valid TOML ({e})") from None
    suite = parse_suite(data, where=str(path))
    object.__setattr__(suite, "path", str(path))
    return suite
