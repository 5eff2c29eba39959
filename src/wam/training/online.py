"""Online training: vector environments → replay → updates at a fixed train ratio → periodic evaluation.

The loop knows environments, replay and schedules; everything agent-specific goes through the
:class:`~wam.agents.base.Agent` contract, so every agent trains under exactly the same protocol.
"""

from __future__ import annotations

import json
import math
import resource
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wam.agents.base import Agent
from wam.envs.spec import EnvSpec
from wam.constants import SUCCESS
from wam.data.demos import DemoBuffer, demo_share, mix
from wam.data.replay import Replay, replay_row
from wam.data.replay_log import ReplayLog
from wam.envs import make_vector
from wam.evaluation.evaluate import evaluate
from wam.io.metrics import MetricsLogger
from wam.io.pretrained import atomic_write_bytes
from wam.training.recovery import catch_up, logged_steps, recover_steps
from wam.training.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from wam.training.config import TrainConfig
from wam.training.distributed import RANK_SEED_STRIDE, Distributed
from wam.training.progress import TrainProgress
from wam.training.signals import TrainingDiverged, TrainingStopped, stop_requests

#: Evaluation environments are seeded apart from training ones so they never replay the same episodes.
EVAL_SEED_OFFSET = 10_000


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_agent(cfg: TrainConfig, spec: EnvSpec) -> Agent:
    """Instantiate ``cfg.agent`` for an environment spec."""
    from wam.agents.registry import get_agent

    _, agent_cls = get_agent(cfg.agent)
    return agent_cls(cfg.agent_config(), spec)


def peak_memory_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class _Rollout:
    """The training environments' loop state between steps: the last observations, the agent's acting state, the
    flags and reward the next replay row stores, and the running episodes' return, success and length."""

    obs: dict[str, np.ndarray]
    state: Any
    is_first: np.ndarray
    is_last: np.ndarray
    is_terminal: np.ndarray
    reward: np.ndarray
    ep_return: np.ndarray
    ep_success: np.ndarray
    ep_length: np.ndarray
    recent: list[tuple[float, bool]] = field(default_factory=list)
    """(return, success) of the last 20 finished training episodes."""

    @classmethod
    def start(cls, obs: dict[str, np.ndarray], state: Any, n: int) -> "_Rollout":
        """The state right after resetting ``n`` environments."""
        return cls(
            obs,
            state,
            np.ones(n, bool),
            np.zeros(n, bool),
            np.zeros(n, bool),
            np.zeros(n, np.float32),
            np.zeros(n),
            np.zeros(n, bool),
            np.zeros(n, int),
        )


class Trainer:
    """Runs one :class:`TrainConfig`; :meth:`run` returns the final evaluation summary.

    Started by ``torchrun`` with several processes, it trains data-parallel (:mod:`wam.training.distributed`): the
    schedules count env steps over all ranks, rank 0 evaluates and writes the run folder, rank r its ``rank<r>/``.
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = Distributed.from_environment()
        self.run_dir = Path(cfg.out) if self.dist.is_main else Path(cfg.out) / f"rank{self.dist.rank}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.seed = cfg.seed + self.dist.rank * RANK_SEED_STRIDE  # this rank's environments, replay and sampling
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        np.random.seed(self.seed)
        self.device = self.dist.device(resolve_device(cfg.device))
        self.dist.init(self.device)
        self.envs = make_vector(
            cfg.env_config(seed_offset=self.dist.rank * RANK_SEED_STRIDE), cfg.num_envs, asynchronous=cfg.num_envs > 1
        )
        self.eval_envs = (
            make_vector(cfg.env_config(seed_offset=EVAL_SEED_OFFSET), cfg.eval_envs, asynchronous=False)
            if self.dist.is_main
            else None
        )
        self.spec = EnvSpec.from_spaces(self.envs.single_observation_space, self.envs.single_action_space)
        self.agent = build_agent(cfg, self.spec).to(self.device)
        if self.dist.enabled:
            self.dist.broadcast_parameters(self.agent)
            self.agent.set_gradient_reducer(self.dist.average_gradients)
            torch.manual_seed(self.seed)
        acfg = cfg.agent_config()
        self.batch_size, self.seq_len = acfg.batch_size, acfg.seq_len
        self.replay = Replay(self.spec, cfg.replay_capacity, cfg.num_envs, seed=self.seed)
        # Rows added after the last checkpoint also go to an append-only log, so a killed run loses no experience
        # (single-process runs that checkpoint their replay; wam.data.replay_log).
        keep_log = cfg.checkpoint_replay and not self.dist.enabled
        self.replay_log = ReplayLog(self.run_dir, self.replay.layout, cfg.num_envs) if keep_log else None
        self.demos = DemoBuffer(cfg.demos, self.spec, self.seq_len, cfg.env) if cfg.demos else None
        self.demo_windows = 0 if self.demos is None else demo_share(cfg.demo_fraction, self.batch_size)
        self.counters = {
            "env_steps": 0,
            "updates": 0,
            "episodes": 0,
            "update_budget": 0.0,
            "replay_adds": 0,
            "catch_up": 0.0,
            "next_eval": 0,
            "next_log": cfg.log_every,
            "next_checkpoint": cfg.checkpoint_every,
            "wall_time": 0.0,
        }
        self.metrics = MetricsLogger(self.run_dir, "metrics")
        self.eval_log = MetricsLogger(self.run_dir, "eval", tensorboard=False)
        self.episode_log = MetricsLogger(self.run_dir, "episodes", tensorboard=False)  # every training episode
        self._write_config()

    def _write_config(self) -> None:
        resolved = {
            "train": asdict(self.cfg),
            "spec": asdict(self.spec),
            "agent": self.cfg.agent,
            "replay_bytes": self.replay.nbytes,
            "demos": None if self.demos is None else {**self.demos.summary(), "windows_per_batch": self.demo_windows},
            "device": str(self.device),
            "world_size": self.dist.world_size,
        }
        atomic_write_bytes(self.run_dir / "config.json", (json.dumps(resolved, indent=2) + "\n").encode())

    def resume(self) -> bool:
        """Continue from the run folder's checkpoint and replay log if there are any; returns whether it did.

        In a data-parallel run every rank resumes from its own folder, and all must stand at the same step.
        """
        path, recovered = find_checkpoint(self.run_dir), 0
        if path is not None:
            self.counters.update(load_checkpoint(path, self.agent, self.replay if self.cfg.checkpoint_replay else None))
        if self.replay_log is not None:  # the steps a killed run took after its checkpoint (or before its first)
            per_update = self.batch_size * self.seq_len
            evaluated = logged_steps(self.eval_log.path)
            recovered = recover_steps(self.replay_log, self.replay, self.counters, self.cfg, per_update, evaluated)
        # The logs keep what the run did up to where it continues (nothing, when it starts over).
        for log in (self.metrics, self.eval_log, self.episode_log):
            log.rewind(int(self.counters["env_steps"]) if path is not None or recovered else -1)
        if recovered:
            self.counters["episodes"] = len(logged_steps(self.episode_log.path, "step"))
            self._checkpoint()  # the recovered steps are safe in a checkpoint before training goes on
        if not self.dist.same_everywhere(-1 if path is None else int(self.counters["env_steps"]), self.device):
            raise CheckpointError(
                f"cannot resume {self.cfg.out}: the ranks' checkpoints are missing or at different "
                "steps; resume with the torchrun command (number of processes) that started the run"
            )
        return path is not None or recovered > 0

    def _to_torch(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}

    def _evaluate(self, progress: TrainProgress) -> dict[str, float]:
        c = self.counters
        video = self.run_dir / "videos" / f"eval_{c['env_steps']:08d}.mp4" if self.cfg.video else None
        t0 = time.time()
        progress.set_evaluating(0, self.cfg.eval_episodes)
        result = evaluate(
            self.agent,
            self.eval_envs,
            self.cfg.eval_episodes,
            seed=self.cfg.seed + EVAL_SEED_OFFSET,
            video=video,
            on_episode=progress.set_evaluating,
        )
        summary = result.summary()
        summary["eval/seconds"] = time.time() - t0
        summary["env_steps"] = c["env_steps"]
        summary["updates"] = c["updates"]
        summary["wall_time"] = c["wall_time"]
        self.eval_log.log(c["env_steps"], summary)
        progress.set_eval(summary["eval/success"], summary["eval/return"])
        return summary

    def run(self) -> dict[str, float]:
        """Train until ``cfg.steps`` environment steps; evaluate, log and checkpoint on schedule.

        Each pass of the loop: act on a stop request, run what is due (evaluation, checkpoint), step the environments
        (:meth:`_env_step`), make the updates the train ratio allows (:meth:`_train`) and log (:meth:`_log`).
        Returns the final evaluation's summary (``{}`` on the ranks > 0 of a data-parallel run, which do not evaluate).
        """
        cfg, c, main = self.cfg, self.counters, self.dist.is_main
        # A resumed run seeds its environments anew, so it does not replay the episodes the run started with.
        obs, _ = self.envs.reset(seed=self.seed + c["env_steps"])
        if self.replay_log is not None and not self.replay_log.is_open:
            self.replay_log.start(int(c["replay_adds"]))
        roll = _Rollout.start(obs, self.agent.init_state(cfg.num_envs), cfg.num_envs)
        train_metrics: dict[str, list[float]] = {}
        last_summary: dict[str, float] = {}
        started = (time.time(), c["env_steps"], c["updates"])
        stop_anywhere = 0  # with several ranks: a stop request on any rank, summed with the last step's count
        with (
            TrainProgress(cfg.steps, enabled=cfg.progress and main, start=c["env_steps"]) as progress,
            stop_requests() as stop,
        ):
            while c["env_steps"] < cfg.steps:
                # Ctrl-C / SIGTERM: keep everything up to this step. With several ranks, every rank acts on the request
                # as it was summed at the last step, so all of them stop at the same step.
                if stop_anywhere if self.dist.enabled else stop.get("signum", 0):
                    self._checkpoint()
                    raise TrainingStopped(stop.get("signum", signal.SIGTERM), int(c["env_steps"]), self.run_dir)
                if c["env_steps"] >= c["next_eval"]:
                    if main:
                        last_summary = self._evaluate(progress)
                    c["next_eval"] += cfg.eval_every
                # Checkpoint after the evaluation that is due at this step, so a resumed run does not repeat it.
                if c["env_steps"] >= c["next_checkpoint"]:
                    c["next_checkpoint"] += cfg.checkpoint_every
                    self._checkpoint()
                stepped, stop_anywhere = self._env_step(roll, stop.get("signum", 0))
                progress.advance(stepped)
                self._train(stepped, train_metrics)
                c["wall_time"] = time.time() - started[0] + c.get("wall_time_before", 0.0)
                if c["env_steps"] >= c["next_log"]:
                    self._log(train_metrics, roll.recent, started, progress)
                    train_metrics = {}
            if main:
                last_summary = self._evaluate(progress)
            # This evaluation served the scheduled one: an extended run moves on.
            while c["next_eval"] <= c["env_steps"]:
                c["next_eval"] += cfg.eval_every
        self._checkpoint()
        if main:
            self.agent.save_pretrained(self.run_dir / "final")
        return last_summary

    def _env_step(self, roll: "_Rollout", stop_signum: int) -> tuple[int, int]:
        """Act (random actions during the prefill), store the step in the replay, step every environment and book the
        episodes that ended. Returns (env steps taken on all ranks, stop requests summed over the ranks)."""
        c, n = self.counters, self.cfg.num_envs
        if c["env_steps"] < self.cfg.prefill:
            # Random actions; the agent's acting history stays empty until it acts itself.
            action = np.stack([self.envs.single_action_space.sample() for _ in range(n)])
        else:
            action, roll.state = self.agent.act(roll.obs, roll.state, roll.is_first)
        row = replay_row(roll.obs, action, roll.reward, roll.is_first, roll.is_last, roll.is_terminal)
        self.replay.add(row)
        c["replay_adds"] += 1
        if self.replay_log is not None:
            self.replay_log.append(row)
        roll.obs, r, terminated, truncated, info = self.envs.step(action)
        live = ~roll.is_last
        # env steps of this step on all ranks, and whether a stop was requested anywhere: one all-reduce
        stepped, stop_anywhere = self.dist.sum_ints([live.sum(), stop_signum], self.device)
        c["env_steps"] += stepped
        roll.ep_return += np.where(live, r, 0.0)
        roll.ep_success |= live & np.asarray(info.get(SUCCESS, np.zeros(n, bool)), bool)
        roll.ep_length += live
        done = live & (terminated | truncated)
        for i in np.flatnonzero(done):
            roll.recent = (roll.recent + [(float(roll.ep_return[i]), bool(roll.ep_success[i]))])[-20:]
            c["episodes"] += 1
            episode = {
                "return": float(roll.ep_return[i]),
                "success": bool(roll.ep_success[i]),
                "length": int(roll.ep_length[i]),
            }
            self.episode_log.log(c["env_steps"], episode)
            roll.ep_return[i], roll.ep_success[i], roll.ep_length[i] = 0.0, False, 0
        roll.reward = np.where(live, r, 0.0).astype(np.float32)
        roll.is_first, roll.is_last, roll.is_terminal = roll.is_last.copy(), done, live & terminated
        return int(stepped), int(stop_anywhere)

    def _train(self, stepped: int, train_metrics: dict[str, list[float]]) -> None:
        """After the prefill, make the updates that ``stepped`` more env steps allow at the train ratio (the ratio holds
        for the global batch over all ranks), collecting their metrics."""
        c = self.counters
        if c["env_steps"] < self.cfg.prefill:
            return
        replayed_per_update = self.batch_size * self.seq_len * self.dist.world_size
        scheduled = stepped * self.cfg.train_ratio / replayed_per_update
        c["update_budget"] += scheduled
        catch_up(c, scheduled)  # updates a killed process made after its last checkpoint, made again
        while c["update_budget"] >= 1.0:
            batch = self.replay.sample(self.batch_size - self.demo_windows, self.seq_len)
            if self.demos is not None:  # a generator per update: resuming needs no sampler state
                rng = np.random.default_rng([self.seed, int(c["updates"])])
                batch = mix(batch, self.demos.sample(self.demo_windows, rng))
            metrics = self.agent.update(self._to_torch(batch))
            diverged = [k for k, v in metrics.items() if k.startswith("loss/") and not math.isfinite(v)]
            if diverged:  # stop before a checkpoint can keep non-finite weights
                raise TrainingDiverged(
                    f"{diverged[0]} is {metrics[diverged[0]]} at update {c['updates'] + 1} "
                    f"(env step {c['env_steps']}): training diverged; {self.run_dir} keeps its last good checkpoint "
                    "and `final/` is not written. Train again with another seed or a lower learning rate"
                )
            for k, v in metrics.items():
                train_metrics.setdefault(k, []).append(v)
            self.dist.average_buffers(self.agent)
            c["updates"] += 1
            c["update_budget"] -= 1.0

    def _log(
        self,
        train_metrics: dict[str, list[float]],
        recent: list[tuple[float, bool]],
        started: tuple[float, int, int],
        progress: TrainProgress,
    ) -> None:
        """Write the mean training metrics since the last log, throughput and the recent episodes' return and success."""
        c = self.counters
        self.dist.check_in_sync(self.agent)
        t_start, steps_at_start, updates_at_start = started
        elapsed = max(time.time() - t_start, 1e-9)
        row = {k: float(np.mean(v)) for k, v in train_metrics.items()}
        row.update(
            {
                "charts/env_steps_per_s": (c["env_steps"] - steps_at_start) / elapsed,
                "charts/updates_per_s": (c["updates"] - updates_at_start) / elapsed,
                "charts/updates": c["updates"],
                "charts/episodes": c["episodes"],
                "charts/peak_memory_mb": peak_memory_mb(),
                "charts/replay_mb": self.replay.nbytes / 2**20,
            }
        )
        if recent:
            row["train/return"] = float(np.mean([x[0] for x in recent]))
            row["train/success"] = float(np.mean([x[1] for x in recent]))
        self.metrics.log(c["env_steps"], row)
        progress.set_train(row.get("train/return"), row["charts/env_steps_per_s"], c["updates"])
        c["next_log"] += self.cfg.log_every

    def _checkpoint(self) -> None:
        c = dict(self.counters)
        c["wall_time_before"] = c["wall_time"]
        save_checkpoint(self.run_dir, self.agent, c, self.replay if self.cfg.checkpoint_replay else None)
        if self.replay_log is not None:  # the checkpoint holds every row so far: a new segment, the old ones go
            self.replay_log.start(int(c["replay_adds"]))

    def close(self) -> None:
        """Close environments and log files."""
        self.envs.close()
        if self.eval_envs is not None:
            self.eval_envs.close()
        self.metrics.close()
        self.eval_log.close()
        self.episode_log.close()
        if self.replay_log is not None:
            self.replay_log.close()
        self.dist.close()


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, float]:
    """Build a :class:`Trainer`, optionally resume it, run it, and close it."""
    trainer = Trainer(cfg)
    try:
        if resume:
            trainer.resume()
        return trainer.run()
    finally:
        trainer.close()
