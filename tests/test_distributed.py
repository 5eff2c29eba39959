"""Data-parallel training (torchrun): rank placement, gradient and buffer averaging, and a 2-process run end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch import nn

from wam.training.distributed import Distributed


def test_placement_is_read_from_torchrun_variables_and_defaults_to_one_process() -> None:
    assert Distributed.from_environment({}) == Distributed(0, 1, 0)
    assert not Distributed.from_environment({}).enabled
    d = Distributed.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (d.rank, d.world_size, d.local_rank, d.enabled, d.is_main) == (3, 4, 1, True, False)
    assert d.device(torch.device("cuda")) == torch.device("cuda", 1)
    assert d.device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "0"}, {"RANK": "one"}])
def test_impossible_placements_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="torchrun"):
        Distributed.from_environment(env)


def test_one_process_collectives_are_identities() -> None:
    single, cpu = Distributed(), torch.device("cpu")
    layer = nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    before = layer.weight.grad.clone()
    single.average_gradients(layer.parameters())
    single.check_in_sync(layer)
    assert torch.equal(layer.weight.grad, before)
    assert single.sum_ints([3, 0], cpu) == [3, 0] and single.same_everywhere(5, cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _collectives(rank: int, port: int, out: str) -> None:
    """Worker of the 2-process test: each rank builds different gradients and buffers, then averages them."""
    d, cpu = Distributed(rank=rank, world_size=2), torch.device("cpu")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    d.init(cpu)
    torch.manual_seed(rank)  # different weights on purpose: broadcast must make them equal
    layer = nn.Linear(3, 2)
    d.broadcast_parameters(layer)
    layer.register_buffer("stat", torch.full((2,), float(rank)))  # a running statistic fed by each rank's data
    layer(torch.full((4, 3), float(rank + 1))).pow(2).sum().backward()
    local = layer.weight.grad.clone()
    d.average_gradients(layer.parameters())
    d.average_buffers(layer)
    d.check_in_sync(layer)  # in sync after the broadcast
    result = {
        "local": local.tolist(),
        "averaged": layer.weight.grad.tolist(),
        "stat": layer.stat.tolist(),
        "sums": d.sum_ints([1, rank], cpu),
        "same_step": d.same_everywhere(7, cpu),
        "different_step": d.same_everywhere(rank, cpu),
        "weight": layer.weight.tolist(),
    }
    with torch.no_grad():
        layer.weight[0, 0] += rank  # one rank drifts
    try:
        d.check_in_sync(layer)
        result["drift"] = "not caught"
    except RuntimeError as e:
        result["drift"] = str(e)
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def test_two_ranks_average_gradients_and_buffers_and_notice_drift(tmp_path: Path) -> None:
    mp.start_processes(_collectives, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert r0["weight"] == r1["weight"]
    mean = ((torch.tensor(r0["local"]) + torch.tensor(r1["local"])) / 2).tolist()
    assert torch.allclose(torch.tensor(r0["averaged"]), torch.tensor(mean))
    assert r0["averaged"] == r1["averaged"] and r0["local"] != r1["local"]
    assert r0["stat"] == r1["stat"] == [0.5, 0.5]
    assert r0["sums"] == r1["sums"] == [2, 1]
    assert r0["same_step"] and not r0["different_step"] and not r1["different_step"]
    assert "sync_gradients" in r0["drift"] and "sync_gradients" in r1["drift"]


TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc_per_node",
    "2",
    "-m",
    "wam.cli.main",
]
TOY = [
    "--env",
    "toy/reach2d",
    "--obs",
    "state",
    "--prefill",
    "100",
    "--train-ratio",
    "32",
    "--eval-episodes",
    "2",
    "--log-every",
    "100",
    "--no-progress",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_torchrun_trains_two_ranks_into_one_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [*TORCHRUN, "train", *TOY, "--steps", "300", "--eval-every", "300", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("final:") == 1  # only rank 0 evaluates and reports
    assert (out / "final").is_dir() and not (out / "rank1" / "final").exists()
    weights = [load_file(d / "checkpoint" / "agent_full.safetensors") for d in (out, out / "rank1")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    counters = [json.loads((d / "checkpoint" / "counters.json").read_text()) for d in (out, out / "rank1")]
    assert counters[0] == {
        **counters[1],
        "wall_time": counters[0]["wall_time"],
        "wall_time_before": counters[0]["wall_time_before"],
    }
    # Global counting: 300 env steps over both ranks; after the 100-step prefill the train ratio 32 with a global batch
    # of 2 × 128 × 3 replayed steps (the default agent's windows) gives 200 × 32 / 768 = 8.3 updates.
    assert counters[0]["env_steps"] == 300 and counters[0]["updates"] == 8
    replays = [load_file(d / "checkpoint" / "replay" / "replay.safetensors") for d in (out, out / "rank1")]
    assert any(not torch.equal(replays[0][k], replays[1][k]) for k in replays[0])  # each rank its own episodes
    assert json.loads((out / "config.json").read_text())["world_size"] == 2


def _train_until_stopped(cmd: list[str], out: Path, past_step: int) -> list[int]:
    """Run ``cmd`` until rank 0 has logged a step beyond ``past_step``, SIGTERM it; the ranks' checkpointed steps."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline, log = time.time() + 120, out / "metrics.jsonl"
    while not (log.is_file() and any(json.loads(row)["step"] > past_step for row in log.read_text().splitlines())):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
    _, err = proc.communicate(timeout=120)
    assert "continue with: wam train --resume" in err
    return [json.loads((d / "checkpoint" / "counters.json").read_text())["env_steps"] for d in (out, out / "rank1")]


def test_sigterm_stops_every_rank_at_the_same_step_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        *TORCHRUN,
        "train",
        *TOY,
        "--steps",
        "100000",
        "--eval-every",
        "100000",
        "--checkpoint-every",
        "100000",
        "--out",
        str(out),
    ]
    first = _train_until_stopped(cmd, out, past_step=0)
    assert first[0] == first[1] > 0
    again = _train_until_stopped([*TORCHRUN, "train", "--resume", str(out)], out, past_step=first[0])
    assert again[0] == again[1] > first[0]
