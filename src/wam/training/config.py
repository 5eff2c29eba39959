"""Typed configuration of a training run; the CLI flags of ``wam train`` are generated from it."""

from __future__ import annotations

from dataclasses import dataclass, field

from wam.agents.dreamerv3 import DreamerV3Config
from wam.agents.registry import AGENTS
from wam.agents.sac import SACConfig
from wam.agents.wam_agent import WAMAgentConfig
from wam.agents.wamq import WAMQConfig
from wam.envs.config import EnvConfig, parse_obs_keys


@dataclass
class TrainConfig:
    """One online training run: environment, agent, budget, schedule and outputs."""

    env: str = "metaworld/reach-v3"
    """Environment name, ``<suite>/<task>``."""
    obs: tuple[str, ...] = ("state",)
    """Observation keys: any of rgb, depth, proprio, state, task."""
    image_size: int = 64
    """Side of RGB / depth images."""
    action_repeat: int = 1
    """Repeat each action this many simulator steps."""
    max_episode_steps: int | None = None
    """Episode length in agent steps; ``None`` keeps the suite default (MetaWorld: 500)."""
    camera: str | None = None
    """Camera for image observations; ``None`` keeps the suite default."""
    reward_type: str = "dense"
    """``dense`` or ``sparse`` where a suite offers both."""
    antialias: bool = True
    """Anti-aliased MuJoCo camera images (MuJoCo's default; the benchmark suites keep it). ``--no-antialias``
    made 64×64 RGB-D steps 2.6–4× faster on CPU (``benchmarks/render_speed.py``); depth is unchanged."""
    agent: str = "wamq"
    """Agent: ``wamq`` (the WAM of record, learning by TD and the policy gradient through Q; ``--coupling decoupled``
    for the ablation), ``wam`` (the earlier WAM trained on imagined returns, kept for the suites that ran it),
    ``dreamerv3`` or ``sac`` (model-free reference; vector observations)."""
    wam: WAMAgentConfig = field(default_factory=WAMAgentConfig)
    """Settings of the ``wam`` agent."""
    dreamerv3: DreamerV3Config = field(default_factory=DreamerV3Config)
    """Settings of the ``dreamerv3`` agent."""
    sac: SACConfig = field(default_factory=SACConfig)
    """Settings of the ``sac`` agent."""
    wamq: WAMQConfig = field(default_factory=WAMQConfig)
    """Settings of the ``wamq`` agent (the WAM with a critic in the trunk, TD on real transitions)."""
    steps: int = 100_000
    """Environment steps (agent decisions, after action repeat) to train for."""
    num_envs: int = 1
    """Parallel training environments (worker processes when > 1)."""
    train_ratio: float = 16.0
    """Replayed steps per environment step (B·T·updates / env steps), the same for every agent."""
    prefill: int = 2_500
    """Random-action environment steps before the first update."""
    replay_capacity: int = 1_000_000
    """Replay size in stored rows (memory is allocated up front and reported). Each env step stores one row and
    each finished episode one more (its final observation), so an episode of L steps takes L + 1 rows and a
    replay of capacity C starts dropping its oldest rows a little before C env steps (at C·L/(L+1) with one env)."""
    demos: tuple[str, ...] = ()
    """LeRobot v3.0 datasets of expert episodes (``wam data collect``) to mix into every update's batch
    (:mod:`wam.data.demos`); their observations must cover ``--obs`` and their actions the env's action space."""
    demo_fraction: float = 0.5
    """Share of each update's windows drawn from ``--demos`` (RLPD's 0.5); the rest come from the replay."""
    eval_every: int = 10_000
    """Evaluate every this many environment steps (and at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    eval_envs: int = 1
    """Evaluation environments stepped together (in this process)."""
    log_every: int = 1_000
    """Write training metrics every this many environment steps."""
    checkpoint_every: int = 10_000
    """Write a resumable checkpoint every this many environment steps."""
    checkpoint_replay: bool = True
    """Include the replay buffer in checkpoints (exact resume; large for image runs)."""
    out: str = "runs/default"
    """Run folder: config.json, metrics.jsonl, eval.jsonl, checkpoint/, final/."""
    seed: int = 0
    """Seed of torch, numpy, the replay sampler and the environments."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    threads: int = 1
    """torch CPU threads (1 lets several runs share a machine fairly)."""
    video: bool = False
    """Save an mp4 of the first episode of each evaluation into the run folder."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        self.obs = parse_obs_keys(self.obs)
        self.env_config()  # validates the environment fields early, with EnvConfig's messages
        if self.agent not in AGENTS:
            from wam.envs.registry import suggest

            raise ValueError(
                f"unknown agent {self.agent!r}{suggest(self.agent, list(AGENTS))} Valid agents: {sorted(AGENTS)}"
            )
        for name in ("steps", "num_envs", "eval_every", "eval_episodes", "eval_envs", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.train_ratio <= 0:
            raise ValueError(f"train_ratio={self.train_ratio} must be > 0")
        if self.demos and not 0.0 < self.demo_fraction < 1.0:
            raise ValueError(f"demo_fraction={self.demo_fraction} must be in (0, 1): a share of each batch")
        if self.prefill < 0:
            raise ValueError(f"prefill={self.prefill} must be >= 0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r}; use auto, cpu or cuda")

    def env_config(self, seed_offset: int = 0) -> EnvConfig:
        """The :class:`EnvConfig` of this run (``seed_offset`` separates evaluation from training envs)."""
        return EnvConfig(
            name=self.env,
            obs=tuple(self.obs),
            image_size=self.image_size,
            seed=self.seed + seed_offset,
            action_repeat=self.action_repeat,
            max_episode_steps=self.max_episode_steps,
            camera=self.camera,
            reward_type=self.reward_type,
            antialias=self.antialias,
        )

    def agent_config(self):
        """The selected agent's own config (the field named like the agent: ``--wam.*``, ``--dreamerv3.*`` …)."""
        return getattr(self, self.agent)
