"""Fault injection: SIGKILLs at random moments of a training run, corrupt files, a full disk and a diverging loss.

Every fault must end either in a clean recovery or in one clear ``wam: error: ...`` line with the last good
checkpoint kept; never a traceback, never a silently wrong run (issue 34).

* **Kills.** One short run (the default agent, tiny, on ``toy/reach2d``) is started, killed with SIGKILL after a
  random delay, resumed with ``wam train --resume`` and killed again, ``--kills`` times, then resumed to the end.
  Per kill: the replay rows the killed process had logged (complete records of its ``replay_log/``, counted from file
  sizes here) against the rows the next resume holds after its recovery checkpoint (rows lost), and the updates the
  killed process had logged since its checkpoint (lost with it; made again over the next steps). At the end: every
  scheduled evaluation present exactly once, ``final/`` written, and the update count the train ratio asks for.
* **Corruptions.** A copy of a finished run (or of a dataset) is damaged one way at a time and resumed (evaluated,
  trained on): truncated weights, optimiser, RNG or replay files, broken JSON, a missing completion marker, a replay
  log with a cut or garbage record, a truncated final model, damaged demonstrations.
* **Full disk.** ``RLIMIT_FSIZE`` makes writes past a size fail (EFBIG) in a resumed run, standing in for a full disk
  (ENOSPC needs a mount this script cannot make); then the run is resumed without the limit.
* **Diverging loss.** A NaN loss injected into an in-process run must stop it before any checkpoint keeps it.

    python benchmarks/faults.py                 # ~10 min on 2 cores beside other runs; writes results/faults.{jsonl,md}
    python benchmarks/faults.py --kills 5       # a quicker pass
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "faults.jsonl"
TABLE = ROOT / "results" / "faults.md"
WAM = [sys.executable, "-m", "wam.cli.main"]
TINY = ["--wamq.dim", "16", "--wamq.heads", "2", "--wamq.mlp-hidden", "32", "--wamq.batch-size", "4"]
RUN = ["--env", "toy/reach2d", "--obs", "state", "--prefill", "100", "--train-ratio", "24", *TINY]
RUN += ["--eval-every", "500", "--eval-episodes", "2", "--log-every", "50", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def read_json(path: Path) -> dict:
    """A JSON file, or {} while it is missing or half-written."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSONL file."""
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def logged_adds(run: Path, record_bytes: int) -> int:
    """Replay adds a run has logged: the newest segment's first add plus its complete records (from file sizes)."""
    segments = sorted((run / "replay_log").glob("seg-*.bin"))
    if not segments:
        return 0
    last = segments[-1]
    return int(last.stem.removeprefix("seg-")) + last.stat().st_size // record_bytes


def wait_for_checkpoint(run: Path, after: float, timeout: float = 60.0) -> dict:
    """The counters of the first checkpoint written after time ``after`` ({} on timeout)."""
    path = run / "checkpoint" / "counters.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file() and path.stat().st_mtime > after:
            counters = read_json(path)
            if counters:
                return counters
        time.sleep(0.05)
    return {}


def kills(work: Path, n: int, steps: int, rng: random.Random) -> tuple[list[dict], dict]:
    """Kill and resume one run ``n`` times, then finish it; returns per-kill rows and the end-of-run check."""
    from wam.data.replay import step_layout
    from wam.data.replay_log import ReplayLog
    from wam.envs.spec import EnvSpec

    run = work / "killed"
    record = ReplayLog(run, step_layout(EnvSpec({"state": [4]}, 2, False)), 1).record_bytes
    fresh = [*WAM, "train", *RUN, "--steps", str(steps), "--checkpoint-every", "250", "--out", str(run)]
    rows: list[dict] = []
    for i in range(n):
        started = time.time()
        proc = subprocess.Popen(
            fresh if i == 0 else [*WAM, "train", "--resume", str(run)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        recovered = {} if i == 0 else wait_for_checkpoint(run, started)
        deadline = time.time() + 120
        while i == 0 and logged_adds(run, record) < 1 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)  # the kills land in training, not in the interpreter's start-up
        row = {"kill": i + 1, "rows_logged_before": rows[-1]["rows_logged"] if rows else 0}
        row["rows_after_resume"] = recovered.get("replay_adds") if i else 0
        row["rows_lost"] = None if i and not recovered else row["rows_logged_before"] - (row["rows_after_resume"] or 0)
        time.sleep(rng.uniform(0.5, 5.0))
        failed = proc.poll() is not None  # a resume that ended before its kill failed (the run is far from done)
        if not failed:
            os.kill(proc.pid, signal.SIGKILL)
        err = proc.communicate(timeout=30)[1]
        ckpt = read_json(run / "checkpoint" / "counters.json")
        metrics = jsonl(run / "metrics.jsonl")
        row.update(
            rows_logged=logged_adds(run, record),
            env_steps_logged=metrics[-1]["step"] if metrics else 0,
            checkpoint_env_steps=ckpt.get("env_steps", 0),
            updates_since_checkpoint=max((m.get("charts/updates", 0) for m in metrics), default=0)
            - ckpt.get("updates", 0),
            resume_failed=failed,
            error=err.strip().splitlines()[-1] if failed and err.strip() else "",
        )
        rows.append(row)
        print(f"kill {i + 1}/{n}: {row}", flush=True)
    done = subprocess.run([*WAM, "train", "--resume", str(run)], env=ENV, capture_output=True, text=True, timeout=600)
    last = read_json(run / "checkpoint" / "counters.json")
    recovered = last.get("replay_adds", 0)
    evaluated = [r["env_steps"] for r in jsonl(run / "eval.jsonl")]
    per_update = 4 * 3  # the tiny agent's batch x window
    expected_updates = int((steps - 100 + 1) * 24 / per_update)  # the step that reaches the prefill trains too
    end = {
        "exit_code": done.returncode,
        "final_written": (run / "final" / "model.safetensors").is_file(),
        "evaluations": evaluated,
        "evaluations_as_scheduled": evaluated == list(range(0, steps + 1, 500)),
        "updates": last.get("updates"),
        "updates_expected": expected_updates,
        "rows_lost_last_kill": rows[-1]["rows_logged"] - recovered if recovered < rows[-1]["rows_logged"] else 0,
        "error": done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else "",
    }
    return rows, end


def outcome(proc: subprocess.CompletedProcess) -> dict:
    """How a command ended: clean (exit 0), a one-line ``wam: error`` (clear), or anything else (a defect)."""
    err = proc.stderr.strip()
    if proc.returncode == 0:
        kind = "recovered"
    elif "Traceback" not in err and err.splitlines()[-1:] and err.splitlines()[-1].startswith("wam: error:"):
        kind = "clear error"
    else:
        kind = "DEFECT"
    return {"outcome": kind, "message": err.splitlines()[-1][:300] if err else ""}


def truncate(path: Path, keep: int) -> None:
    """Cut a file to its first ``keep`` bytes."""
    path.write_bytes(path.read_bytes()[:keep])


def segment(run: Path) -> Path:
    """The newest replay-log segment of a run."""
    return max((run / "replay_log").glob("seg-*.bin"))


def resume(run: Path) -> list[str]:
    """Resume a finished 600-step run for 100 more steps."""
    return [*WAM, "train", "--resume", str(run), "--extend-to", "700"]


def demos_run(run: Path) -> list[str]:
    """A short reach-v3 run with the run folder's demonstrations."""
    demos = ["--demos", str(run / "demos"), "--out", str(run / "r")]
    return [
        *WAM,
        "train",
        "--env",
        "metaworld/reach-v3",
        "--obs",
        "state",
        *TINY,
        "--steps",
        "30",
        "--prefill",
        "10",
        *demos,
    ]


def corruptions(work: Path) -> list[dict]:
    """Damage copies of a finished run (and of a dataset) one way at a time; each must recover or fail clearly."""
    base = work / "base"
    subprocess.run(
        [*WAM, "train", *RUN, "--steps", "600", "--checkpoint-every", "200", "--out", str(base)],
        env=ENV,
        check=True,
        capture_output=True,
    )
    data = work / "demos"
    subprocess.run(
        [
            *WAM,
            "data",
            "collect",
            "--env",
            "metaworld/reach-v3",
            "--episodes",
            "2",
            "--obs",
            "state",
            "--max-episode-steps",
            "20",
            "--out",
            str(data),
            "--quiet",
        ],
        env=ENV,
        check=True,
        capture_output=True,
    )
    ck = Path("checkpoint")
    cases = [
        ("truncated weights", lambda r: truncate(r / ck / "agent_full.safetensors", 100), resume),
        ("truncated optimiser state", lambda r: truncate(r / ck / "optimizer.safetensors", 100), resume),
        ("truncated RNG state", lambda r: truncate(r / ck / "rng.safetensors", 50), resume),
        ("truncated replay", lambda r: truncate(r / ck / "replay" / "replay.safetensors", 1000), resume),
        ("broken replay pointers", lambda r: (r / ck / "replay" / "replay.json").write_text("{"), resume),
        ("broken counters", lambda r: (r / ck / "counters.json").write_text("garbage"), resume),
        ("broken run config", lambda r: (r / "config.json").write_text("{"), resume),
        ("missing checkpoint marker", lambda r: (r / ck / "COMPLETE").unlink(), resume),
        ("cut replay-log record", lambda r: segment(r).open("ab").write(b"\x01\x02\x03"), resume),
        ("garbage replay-log record", lambda r: segment(r).open("ab").write(os.urandom(64)), resume),
        (
            "truncated final model",
            lambda r: truncate(r / "final" / "model.safetensors", 100),
            lambda r: [*WAM, "eval", str(r), "--episodes", "1"],
        ),
        ("broken dataset info", lambda r: (r / "demos" / "meta" / "info.json").write_text("{"), demos_run),
        (
            "truncated dataset frames",
            lambda r: truncate(next((r / "demos" / "data").rglob("*.parquet")), 200),
            demos_run,
        ),
    ]
    rows = []
    for name, damage, command in cases:
        run = work / "case"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(base, run)
        shutil.copytree(data, run / "demos")
        damage(run)
        proc = subprocess.run(command(run), env=ENV, capture_output=True, text=True, timeout=300)
        rows.append({"fault": name, **outcome(proc)})
        print(rows[-1], flush=True)
    rows.append(full_disk(work, base))
    print(rows[-1], flush=True)
    return rows


def full_disk(work: Path, base: Path) -> dict:
    """A resumed run whose files cannot grow past 40 kB, then the same run resumed without the limit."""
    run = work / "full"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base, run)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    cmd = [*WAM, "train", "--resume", str(run), "--extend-to", "1200"]
    first = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    kept = read_json(run / "checkpoint" / "counters.json").get("env_steps")
    second = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    row = {"fault": "full disk (RLIMIT_FSIZE 40 kB), then resumed without it", **outcome(first)}
    row["checkpoint_kept_at"] = kept
    row["resumed_after"] = outcome(second)["outcome"]
    if row["outcome"] == "recovered" or row["resumed_after"] != "recovered":
        row["outcome"] = "DEFECT"
    return row


def diverging_loss(work: Path) -> dict:
    """A NaN loss at the 40th update of an in-process run: it must stop before writing a checkpoint of it."""
    import torch

    from wam.agents.wamq import WAMQConfig
    from wam.training.config import TrainConfig
    from wam.training.online import Trainer
    from wam.training.signals import TrainingDiverged

    cfg = TrainConfig(
        env="toy/reach2d",
        agent="wamq",
        wamq=WAMQConfig(dim=16, heads=2, mlp_hidden=32, batch_size=4),
        steps=600,
        prefill=100,
        train_ratio=24,
        eval_every=500,
        eval_episodes=1,
        checkpoint_every=100,
        progress=False,
        out=str(work / "nan"),
    )
    trainer = Trainer(cfg)
    update, calls = trainer.agent.update, [0]

    def poisoned(batch):
        calls[0] += 1
        metrics = update(batch)
        if calls[0] >= 40:
            with torch.no_grad():
                next(trainer.agent.parameters()).fill_(float("nan"))
            metrics["loss/q"] = float("nan")
        return metrics

    trainer.agent.update = poisoned
    try:
        trainer.run()
        return {"fault": "NaN loss", "outcome": "DEFECT", "message": "training went on"}
    except TrainingDiverged as e:
        from safetensors.torch import load_file

        weights = load_file(str(work / "nan" / "checkpoint" / "agent_full.safetensors"))
        finite = all(bool(torch.isfinite(w).all()) for w in weights.values() if w.is_floating_point())
        ok = finite and not (work / "nan" / "final").exists() and "\n" not in str(e)
        return {"fault": "NaN loss", "outcome": "clear error" if ok else "DEFECT", "message": str(e)[:300]}
    finally:
        trainer.close()


def write_table(record: dict) -> None:
    """``faults.md`` from the newest record."""
    kill_rows, end = record["kills"], record["end"]
    lost = [r["rows_lost"] for r in kill_rows if r["rows_lost"] is not None]
    lines = [
        "# Fault injection",
        "",
        f"Written by `python benchmarks/faults.py --kills {len(kill_rows)}` on {record['machine']} "
        f"({record['when']}, commit {record['commit']}); see the script's docstring for what each fault is.",
        "",
        "## SIGKILL at random moments, then `wam train --resume`",
        "",
        f"{len(kill_rows)} kills of one {record['steps']}-step run (checkpoint every 250 steps). Replay rows lost: "
        f"**{sum(lost)}** over {len(lost) - 1} measured resumes (each killed process had logged "
        f"{min(r['rows_logged'] for r in kill_rows)}–{max(r['rows_logged'] for r in kill_rows)} rows); "
        "resumes that failed: "
        f"**{sum(r['resume_failed'] for r in kill_rows)}**. Updates made since the checkpoint at each kill (lost "
        "with the process, made again over the following steps): "
        f"{sum(r['updates_since_checkpoint'] for r in kill_rows)} in all.",
        "",
        f"End of the run: exit code {end['exit_code']}, `final/` written: {end['final_written']}, evaluations at "
        f"{end['evaluations']} (as scheduled: {end['evaluations_as_scheduled']}), updates {end['updates']} against "
        f"{end['updates_expected']} for the train ratio.",
        "",
        "| kill | rows logged before | rows after resume | rows lost | env steps logged | checkpoint at | "
        "updates since checkpoint | resume failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in kill_rows:
        lines.append(
            f"| {r['kill']} | {r['rows_logged_before']} | {r['rows_after_resume']} | {r['rows_lost']} | "
            f"{r['env_steps_logged']} | {r['checkpoint_env_steps']} | {r['updates_since_checkpoint']} | "
            f"{r['resume_failed']} |"
        )
    lines += ["", "## Damaged files, full disk, diverging loss", "", "| fault | outcome | message |", "|---|---|---|"]
    for r in record["faults"]:
        message = r.get("message", "").replace("|", "\\|")
        extra = (
            f" (checkpoint kept at {r['checkpoint_kept_at']}; resumed after: {r['resumed_after']})"
            if ("resumed_after" in r)
            else ""
        )
        lines.append(f"| {r['fault']} | {r['outcome']}{extra} | `{message}` |")
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run every fault and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3000, help="budget of the killed run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=os.uname().nodename)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kill_rows, end = kills(work, args.kills, args.steps, random.Random(args.seed))
        faults = corruptions(work) + [diverging_loss(work)]
    record = {
        "kills": kill_rows,
        "end": end,
        "faults": faults,
        "steps": args.steps,
        "machine": args.machine,
        "commit": commit,
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(record) + "\n")
    write_table(record)
    print(TABLE.read_text())


if __name__ == "__main__":
    main()
