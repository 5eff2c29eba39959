"""Continue a killed run with the experience it collected after its last checkpoint (see :mod:`wam.data.replay_log`).

The checkpoint gives the agent, optimiser and replay as they were at its step C; the replay log gives every step the
run took after C, up to the kill at step K. Resuming then means: the replay gets those steps back, the counters move
to K, and the updates the killed process made between C and K (lost with it) are made again: :func:`catch_up` adds
them to the schedule at most as fast as the schedule itself, so the run keeps its train ratio by its end without a
burst of updates that a second crash would lose whole. The logs the killed process wrote up to K (metrics,
evaluations, episodes) describe that same run and are kept; the next evaluation is the first one it had not logged.
"""

from __future__ import annotations

from typing import Any

from wam.constants import IS_LAST
from wam.data.replay import Replay
from wam.data.replay_log import ReplayLog
from wam.io.metrics import read_jsonl
from wam.training.config import TrainConfig


def recover_steps(
    log: ReplayLog,
    replay: Replay,
    counters: dict[str, Any],
    cfg: TrainConfig,
    replayed_per_update: int,
    evaluated: list[int],
) -> int:
    """Add the logged steps after the checkpoint to ``replay`` and advance ``counters`` (in place) to where the killed
    run stopped; ``evaluated`` are the env steps of the evaluations it logged. Returns the env steps recovered."""
    checkpoint_steps = int(counters["env_steps"])
    steps = log.recover(int(counters.get("replay_adds", 0)))
    for row in steps:
        replay.add(row)
        counters["env_steps"] += int((~row[IS_LAST]).sum())  # a row after an episode's end is its final observation
        counters["replay_adds"] = int(counters.get("replay_adds", 0)) + 1
    recovered = int(counters["env_steps"]) - checkpoint_steps
    if not recovered:
        return 0
    k = int(counters["env_steps"])
    trained_from = max(checkpoint_steps, cfg.prefill - 1)  # the loop trains from the step that reaches the prefill
    # Made again as training goes on, at most as many per step as the schedule itself (see catch_up), not in one burst
    # that a second crash would lose whole.
    lost = max(k - trained_from, 0) * cfg.train_ratio / replayed_per_update
    counters["catch_up"] = float(counters.get("catch_up", 0.0)) + lost
    for name, every, done in (
        ("next_eval", cfg.eval_every, max([s for s in evaluated if s <= k], default=-1)),
        ("next_log", cfg.log_every, k),
        ("next_checkpoint", cfg.checkpoint_every, k),
    ):
        while counters[name] <= done:
            counters[name] += every
    return recovered


def logged_steps(path, key: str = "env_steps") -> list[int]:
    """The ``key`` values of a JSONL log's rows (an absent file gives none)."""
    return [int(r[key]) for r in read_jsonl(path) if r.get(key) is not None] if path.is_file() else []


def catch_up(counters: dict[str, Any], scheduled: float) -> float:
    """Move up to ``scheduled`` of the updates still owed after a recovery (``counters["catch_up"]``) into this step's
    budget; returns how many. ``scheduled`` is the number of updates the schedule gives the step itself."""
    owed = float(counters.get("catch_up", 0.0))
    extra = min(owed, scheduled)
    if extra > 0:
        counters["catch_up"] = owed - extra
        counters["update_budget"] += extra
    return extra
