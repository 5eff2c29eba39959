"""`wam bench`: suite files, grid expansion, statistics on synthetic curves, the report, and one tiny real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rliable import metrics as rl_metrics

from wam.bench.aggregate import (
    MIN_SEEDS,
    RETURN,
    improvement_batched,
    iqm,
    iqm_batched,
    load_results,
    probability_of_improvement,
    seed_counts,
    steps_estimate,
    steps_ratio,
    stratified_bootstrap,
    success_estimate,
)
from wam.bench.claims import judge_claims
from wam.bench.report import write_report
from wam.bench.grid import BenchPaths, expand_grid, read_curve, run_status, sync_curve, train_command
from wam.bench.runner import BenchRunner, logged_step, progress_text
from wam.bench.suite import SuiteError, load_suite, parse_suite

SUITES = Path(__file__).resolve().parents[1] / "benchmarks" / "suites"


def synthetic_suite(**overrides) -> dict:
    """A small suite table: 2 tasks, 3 agents, milestones 0/10k/20k/30k/40k, both kinds of claim."""
    data = {
        "name": "synth",
        "budget": 40_000,
        "eval_every": 10_000,
        "eval_episodes": 10,
        "train_ratio": 16,
        "seeds": 3,
        "thresholds": [0.5],
        "agents": {
            "wam": ["--agent", "wam"],
            "wam-decoupled": ["--agent", "wam", "--coupling", "decoupled"],
            "dreamerv3": ["--agent", "dreamerv3"],
        },
        "tasks": [
            {"env": "metaworld/reach-v3", "obs": ["state"]},
            {"env": "panda/stack", "obs": ["state"], "flags": ["--reward-type", "dense"]},
        ],
        "claims": [
            {
                "kind": "success",
                "text": "+23% on stacking",
                "agent": "wam",
                "baseline": "dreamerv3",
                "task": "panda-stack",
                "claimed": 0.23,
            },
            {"kind": "steps", "text": "15% fewer steps", "agent": "wam", "baseline": "dreamerv3", "claimed": 0.85},
        ],
    }
    data.update(overrides)
    return data


def write_curve(root: Path, suite, agent: str, task: str, seed: int, success: list[float]) -> None:
    """An evaluation curve with ``success[i]`` at milestone ``i`` (shorter lists = a run still in progress)."""
    path = root / suite.name / agent / task / f"seed{seed}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"env_steps": m, "eval/success": s, "eval/return": 100 * s, "wall_time": m / 30.0, "updates": m}
        for m, s in zip(suite.milestones, success)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# ---------------------------------------------------------------- suites


def test_shipped_suites_parse():
    quick = load_suite("quick-state", SUITES)
    assert (quick.budget, quick.train_ratio, quick.eval_every, quick.eval_episodes, quick.seeds) == (
        50_000,
        16.0,
        10_000,
        10,
        3,
    )
    assert list(quick.agents) == ["wam", "wam-decoupled", "dreamerv3", "sac"]
    assert quick.references == {"sac": 512.0} and not quick.runs_on("sac", "miniworld-OneRoom")
    assert quick.agents["wam-decoupled"] == ("--agent", "wam", "--coupling", "decoupled")
    assert [t.env for t in quick.tasks][-2:] == ["panda/stack", "miniworld/OneRoom"]
    assert quick.task("miniworld-OneRoom").obs == ("rgb",)
    assert quick.milestones == [0, 10_000, 20_000, 30_000, 40_000, 50_000]
    assert {c.kind for c in quick.claims} == {"success", "steps"}
    pixels = load_suite("quick-pixels", SUITES)
    assert all(t.obs == ("proprio", "rgb", "depth") for t in pixels.tasks)
    assert load_suite(str(SUITES / "debug.toml")).budget == 60


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("budget"), "missing required key 'budget'"),
        (lambda d: d.update(budgte=5), "did you mean 'budget'"),
        (lambda d: d.update(eval_every=50_000), "larger than budget"),
        (lambda d: d.update(seeds=0), "seeds=0 must be an integer >= 1"),
        (lambda d: d.update(thresholds=[1.5]), "thresholds"),
        (lambda d: d["agents"].update(wam=["--agent", "wam", "--steps", "10"]), "matched protocol"),
        (
            lambda d: d["tasks"].append({"env": "metaworld/reach-v3", "obs": ["state"], "flags": ["--train-ratio=4"]}),
            "matched protocol",
        ),
        (lambda d: d["tasks"].append({"env": "reach-v3"}), "must look like '<suite>/<task>'"),
        (lambda d: d["tasks"].append({"env": "metawrld/reach-v3"}), "did you mean 'metaworld'"),
        (lambda d: d["tasks"].append({"env": "miniworld/OneRoom", "obs": ["state"]}), "cannot emit"),
        (lambda d: d["tasks"].append({"env": "metaworld/reach-v3", "obs": ["state"]}), "appear twice"),
        (lambda d: d["tasks"][0].update(obsv=["state"]), "did you mean 'obs'"),
        (lambda d: d["claims"][0].update(baseline="dreamer"), "not an agent of this suite"),
        (lambda d: d["claims"][0].update(task="panda-stak"), "did you mean 'panda-stack'"),
        (lambda d: d["claims"][1].update(kind="speed"), "kind='speed'"),
        (lambda d: d.update(references={"sac": {"flags": ["--agent", "sac"]}}), "missing required key 'train_ratio'"),
        (
            lambda d: d.update(references={"sac": {"train_ratio": 4, "tasks": ["panda-stak"]}}),
            "did you mean 'panda-stack'",
        ),
        (lambda d: d.update(references={"wam": {"flags": [], "train_ratio": 4}}), "differ from every agent label"),
        (lambda d: d.update(references={"sac": {"flags": ["--steps", "5"], "train_ratio": 4}}), "matched protocol"),
        (
            lambda d: (
                d.update(references={"sac": {"flags": ["--agent", "sac"], "train_ratio": 512}}),
                d["claims"][0].update(baseline="sac"),
            ),
            "not an agent of this suite",
        ),
    ],
)
def test_suite_validation_errors(change, message):
    data = synthetic_suite()
    change(data)
    with pytest.raises(SuiteError, match="synth|suite") as err:
        parse_suite(data, where="synth.toml")
    assert message in str(err.value)


def test_reference_agents_keep_their_own_train_ratio(tmp_path: Path):
    suite = parse_suite(
        synthetic_suite(
            references={"sac": {"flags": ["--agent", "sac"], "train_ratio": 512, "tasks": ["metaworld-reach-v3"]}}
        )
    )
    assert list(suite.agents)[-1] == "sac" and suite.train_ratio_of("sac") == 512 and suite.train_ratio_of("wam") == 16
    assert [r.task.name for r in expand_grid(suite, seeds=1, agents=("sac",))] == ["metaworld-reach-v3"]
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    sac, wam = (next(r for r in expand_grid(suite) if r.agent == a) for a in ("sac", "wam"))
    assert "--train-ratio 512.0" in " ".join(train_command(suite, sac, paths.run_dir(suite, sac)))
    assert "--train-ratio 16.0" in " ".join(train_command(suite, wam, paths.run_dir(suite, wam)))


def test_suite_file_errors(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'bad'\nbudget = \n")
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(str(bad))
    with pytest.raises(SuiteError, match="did you mean 'quick-state'"):
        load_suite("quick-stat", SUITES)


# ---------------------------------------------------------------- grid and runner


def test_grid_expansion_and_commands(tmp_path: Path):
    suite = load_suite("quick-state", SUITES)
    grid = expand_grid(suite)
    assert len(grid) == (3 * 6 + 5) * 3  # three matched agents on six tasks, the SAC reference on five
    assert [r.seed for r in grid[:23]] == [0] * 23  # seed-major: every cell gets a first seed early
    assert grid[0].key == "wam/metaworld-reach-v3/seed0"
    small = expand_grid(suite, seeds=2, agents=("dreamerv3",), tasks=("panda-stack",))
    assert [r.key for r in small] == ["dreamerv3/panda-stack/seed0", "dreamerv3/panda-stack/seed1"]
    with pytest.raises(SuiteError, match="did you mean 'dreamerv3'"):
        expand_grid(suite, agents=("dreamer",))

    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    run = small[1]
    run_dir = paths.run_dir(suite, run)
    cmd = train_command(suite, run, run_dir)
    joined = " ".join(cmd)
    for flag in (
        "--agent dreamerv3",
        "--env panda/stack",
        "--obs state",
        "--reward-type dense",
        "--steps 50000",
        "--seed 1",
        "--train-ratio 16.0",
        "--eval-every 10000",
        "--eval-episodes 10",
        "--threads 1",
        "--no-progress",
    ):
        assert flag in joined, flag
    assert run_status(suite, run, paths) == "new"
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "checkpoint" / "COMPLETE").write_text("ok\n")
    assert run_status(suite, run, paths) == "resume"
    assert train_command(suite, run, run_dir)[-2:] == ["--resume", str(run_dir)]
    # A run started under another protocol (the suite file changed since) is not resumed.
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "train": {
                    "steps": 40_000,
                    "seed": 1,
                    "train_ratio": 16.0,
                    "eval_every": 10_000,
                    "eval_episodes": 10,
                    "env": "panda/stack",
                    "obs": ["state"],
                }
            }
        )
    )
    with pytest.raises(SuiteError, match="steps: run 40000 vs suite 50000"):
        BenchRunner(suite, paths).execute(run)
    # A run trained by another live process is left alone; a stale lock is ignored.
    paths.lock(suite, run).write_text(f"{os.getpid()}\n")
    assert run_status(suite, run, paths) == "running"
    paths.lock(suite, run).write_text("999999999\n")
    assert run_status(suite, run, paths) == "resume"


def test_curves_are_deduplicated_and_synced(tmp_path: Path):
    run_dir, target = tmp_path / "run", tmp_path / "results" / "seed0.jsonl"
    run_dir.mkdir()
    rows = [
        {"env_steps": 0, "eval/success": 0.0},
        {"env_steps": 10, "eval/success": 0.1},
        {"env_steps": 10, "eval/success": 0.3},
        {"env_steps": 20, "eval/success": 0.5},
    ]  # resumed: 10 evaluated twice
    (run_dir / "eval.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"env_ste'
    )  # truncated last line
    synced = sync_curve(run_dir, target)
    assert [r["env_steps"] for r in synced] == [0, 10, 20] and synced[1]["eval/success"] == 0.3
    assert read_curve(target) == synced


# ---------------------------------------------------------------- statistics


def test_batched_statistics_match_rliable():
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 4)), rng.random((3, 4))
    y[:, 0] = x[:3, 0]
    assert iqm_batched(x[None])[0] == pytest.approx(iqm(x))
    assert improvement_batched(x[None], y[None])[0] == pytest.approx(rl_metrics.probability_of_improvement(x, y))
    assert improvement_batched(x[None], x[None])[0] == pytest.approx(0.5)
    # An unfinished suite: task 1 has 2 runs of x (NaN below); the statistics use the runs that exist.
    ragged = x.copy()
    ragged[2:, 1] = np.nan
    assert iqm_batched(ragged[None])[0] == pytest.approx(
        iqm(np.concatenate([x[:, [0, 2, 3]].ravel(), x[:2, 1]])[:, None])
    )
    per_task = [rl_metrics.probability_of_improvement(x[:, [k]], y[:, [k]]) for k in (0, 2, 3)]
    per_task.insert(1, rl_metrics.probability_of_improvement(x[:2, [1]], y[:, [1]]))
    assert improvement_batched(ragged[None], y[None])[0] == pytest.approx(np.mean(per_task))
    point, lo, hi = stratified_bootstrap([ragged], iqm_batched, reps=300)
    assert np.isfinite([lo, hi]).all() and lo <= point <= hi


def test_iqm_and_ci_of_known_numbers(tmp_path: Path):
    suite = parse_suite(synthetic_suite(seeds=8))
    for seed, final in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]):
        write_curve(tmp_path, suite, "wam", "metaworld-reach-v3", seed, [0, 0, 0, 0, final])
    results = load_results(suite, tmp_path)
    e = success_estimate(results, "wam", ["metaworld-reach-v3"], suite.budget, reps=500)
    assert e.point == pytest.approx(0.35)  # mean of the middle half: 0.2, 0.3, 0.4, 0.5
    assert e.lo < e.point < e.hi and e.seeds == 8 and e.tasks == 1
    returns = success_estimate(results, "wam", ["metaworld-reach-v3"], suite.budget, reps=500, key=RETURN)
    assert returns.point == pytest.approx(35.0)  # the curves' returns are 100 × success


def test_steps_to_threshold_and_ratio(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    for task in ("metaworld-reach-v3", "panda-stack"):
        for seed in range(3):
            write_curve(tmp_path, suite, "wam", task, seed, [0.0, 0.2, 0.6, 0.9, 1.0])
            write_curve(tmp_path, suite, "dreamerv3", task, seed, [0.0, 0.1, 0.2, 0.3, 0.7])
            write_curve(tmp_path, suite, "wam-decoupled", task, seed, [0.0, 0.0, 0.1, 0.1, 0.2])
    results = load_results(suite, tmp_path)
    tasks = ["metaworld-reach-v3", "panda-stack"]
    wam = steps_estimate(results, "wam", tasks, 0.5, reps=200)
    assert (wam.point, wam.lo, wam.hi, wam.censored) == (20_000, 20_000, 20_000, False)
    assert steps_estimate(results, "dreamerv3", tasks, 0.5, reps=200).point == 40_000
    never = steps_estimate(results, "wam-decoupled", tasks, 0.5, reps=200)
    assert never.censored and never.point > suite.budget
    assert steps_ratio(results, "wam", "dreamerv3", tasks, 0.5, reps=200).point == pytest.approx(0.5)
    verdicts = {v.claim.kind: v for v in judge_claims(results, reps=200)}
    assert verdicts["steps"].verdict == "supported" and "ratio 0.50" in verdicts["steps"].detail
    assert verdicts["success"].verdict == "supported"  # final 1.0 vs 0.7 on every seed: +30 points
    poi, shared = probability_of_improvement(results, "wam", "dreamerv3", suite.budget, reps=200)
    assert poi.point == pytest.approx(1.0) and shared == tasks


@pytest.mark.parametrize(
    "wam_final, dreamer_final, seeds, verdict",
    [
        ([0.9, 0.95, 1.0], [0.3, 0.35, 0.4], 3, "supported"),
        ([0.45, 0.5, 0.55], [0.3, 0.35, 0.4], 3, "not supported"),  # better, but by 15 points; the CI excludes +23
        ([0.1, 0.15, 0.2], [0.3, 0.35, 0.4], 3, "not supported"),
        ([0.1, 0.9, 0.5], [0.3, 0.35, 0.4], 3, "inconclusive"),  # the difference's CI contains +23 and 0
        ([0.5, 0.55, 0.6], [0.3, 0.35, 0.4], 3, "inconclusive"),  # +20 points: the CI contains +23 and less
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 3, "not supported"),  # both fail: a difference of 0 [0, 0] excludes +23
        ([0.9, 1.0], [0.3, 0.4], 2, "inconclusive"),  # too few seeds
    ],
)
def test_success_claim_verdicts(tmp_path: Path, wam_final, dreamer_final, seeds, verdict):
    suite = parse_suite(synthetic_suite())
    for seed in range(seeds):
        write_curve(tmp_path, suite, "wam", "panda-stack", seed, [0, 0, 0, 0, wam_final[seed]])
        write_curve(tmp_path, suite, "dreamerv3", "panda-stack", seed, [0, 0, 0, 0, dreamer_final[seed]])
    v = next(v for v in judge_claims(load_results(suite, tmp_path), reps=500) if v.claim.kind == "success")
    assert v.verdict == verdict, v.detail
    if seeds < MIN_SEEDS:
        assert "1 of 1 task lacks 3 complete seeds of wam or dreamerv3 (panda-stack)" in v.detail
        assert v.label == "inconclusive at this scale"
    assert ("Neither agent succeeded" in v.detail) == (max(wam_final + dreamer_final) == 0 and seeds >= MIN_SEEDS)


def test_missing_cells_are_reported(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    write_curve(tmp_path, suite, "wam", "metaworld-reach-v3", 0, [0.0, 0.5, 0.5, 0.5, 0.5])
    write_curve(tmp_path, suite, "wam", "metaworld-reach-v3", 1, [0.0, 0.5])  # still running
    results = load_results(suite, tmp_path)
    counts = seed_counts(results)
    assert counts[("wam", "metaworld-reach-v3")] == (1, 2)
    assert counts[("dreamerv3", "panda-stack")] == (0, 0)
    assert success_estimate(results, "dreamerv3", ["panda-stack"], suite.budget) is None
    assert success_estimate(results, "wam", ["metaworld-reach-v3"], 10_000, reps=100).seeds == 2
    assert all(v.verdict == "inconclusive" for v in judge_claims(results, reps=100))


def test_holes_in_a_curve_are_not_filled(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    for seed in range(3):
        write_curve(tmp_path, suite, "wam", "metaworld-reach-v3", seed, [0.0, 0.2, 0.6, 0.9, 1.0])
    path = tmp_path / suite.name / "wam" / "metaworld-reach-v3" / "seed2.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["eval/success"] = None  # an evaluation that recorded no success at 20k
    del rows[3]  # and one lost altogether at 30k
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = load_results(suite, tmp_path)
    assert results.success_at("wam", "metaworld-reach-v3", 20_000) == {0: 0.6, 1: 0.6}
    assert results.success_at("wam", "metaworld-reach-v3", 30_000) == {0: 0.9, 1: 0.9}  # not seed 2's 20k score
    matrix = results.curve_matrix("wam", "metaworld-reach-v3", [0, 2])
    assert np.isnan(matrix[1, 2:4]).all() and matrix[1, 4] == 1.0 and not np.isnan(matrix[0]).any()
    e = steps_estimate(results, "wam", ["metaworld-reach-v3"], 0.5, reps=100)  # used to raise KeyError
    assert e.point == 20_000 and e.seeds == 2  # the seed with holes is left out of the curves


def test_one_seed_prints_no_interval(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    write_curve(tmp_path / "results", suite, "wam", "metaworld-reach-v3", 0, [0.0, 0.1, 0.2, 0.3, 0.4])
    text = write_report([suite], tmp_path / "results", tmp_path / "RESULTS.md", reps=50).read_text()
    assert "40% [no CI] (n=1)" in text and "40% [40%, 40%]" not in text


# ---------------------------------------------------------------- report


def test_report_from_synthetic_results(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    rng = np.random.default_rng(0)
    for agent, speed in (("wam", 1.0), ("wam-decoupled", 0.7), ("dreamerv3", 0.5)):
        for task in ("metaworld-reach-v3", "panda-stack"):
            for seed in range(3 if agent != "wam-decoupled" or task != "panda-stack" else 1):  # one thin cell
                curve = np.clip(speed * np.linspace(0, 1, 5) + rng.normal(0, 0.05, 5), 0, 1).round(2).tolist()
                write_curve(tmp_path / "results", suite, agent, task, seed, curve)
                throughput = tmp_path / "results" / suite.name / agent / task / f"seed{seed}.throughput.json"
                throughput.write_text(
                    json.dumps(
                        {
                            "env_steps_per_s": 30.0,
                            "updates_per_s": 2.0,
                            "wall_clock_per_100k_s": 3333.0,
                            "peak_memory_mb": 700.0,
                            "act_ms_p50": 4.0,
                            "act_ms_p95": 6.0,
                        }
                    )
                )
    out = write_report([suite], tmp_path / "results", tmp_path / "RESULTS.md", reps=200)
    text = out.read_text()
    for heading in (
        "## Claims",
        "### Completeness",
        "### Success",
        "### Episode return",
        "### Probability of improvement",
        "### Environment steps to reach a success threshold",
        "### Throughput",
    ):
        assert heading in text, heading
    assert "**+23% on stacking** (suite `synth`): **" in text and "**15% fewer steps** (suite `synth`): **" in text
    assert "| wam-decoupled | 3/3 ✓ | 1/3 |" in text  # completeness, with the thin cell
    assert "| wam | state | 6 | 30.0 | 2.00 | 0.9 h | 700 | 4.0 / 6.0 |" in text
    png = tmp_path / "results" / "synth" / "success.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and "(results/synth/success.png)" in text
    assert (png.parent / "return.png").read_bytes()[:4] == b"\x89PNG" and "(results/synth/return.png)" in text


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_bench_runs_debug_suite_then_skips_it(tmp_path: Path):
    args = [
        sys.executable,
        "-m",
        "wam.cli.main",
        "bench",
        str(SUITES / "debug.toml"),
        "--agents",
        "wam",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "results"),
        "--report",
        str(tmp_path / "RESULTS.md"),
        "--jobs",
        "1",
        "--latency-steps",
        "5",
        "--bootstrap-reps",
        "100",
        "--sync-every",
        "1",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    curve = read_curve(tmp_path / "results" / "debug" / "wam" / "metaworld-reach-v3" / "seed0.jsonl")
    assert [r["env_steps"] for r in curve] == [0, 30, 60]
    record = json.loads(
        (tmp_path / "results" / "debug" / "wam" / "metaworld-reach-v3" / "seed0.throughput.json").read_text()
    )
    assert record["env_steps_per_s"] > 0 and "act_ms_p50" in record
    assert "## Claims" in (tmp_path / "RESULTS.md").read_text()

    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "1 already finished, 0 to run" in second.stdout + second.stderr
    assert (tmp_path / "runs" / "debug" / "logs" / "wam__metaworld-reach-v3__seed0.log").read_text().count("=== ") == 1


def test_steps_claim_needs_every_task_and_ignores_success_before_training(tmp_path: Path):
    suite = parse_suite(synthetic_suite())
    for seed in range(3):
        write_curve(tmp_path, suite, "wam", "metaworld-reach-v3", seed, [0.0, 0.6, 0.9, 1.0, 1.0])
        write_curve(tmp_path, suite, "dreamerv3", "metaworld-reach-v3", seed, [0.0, 0.1, 0.2, 0.3, 0.7])
    write_curve(tmp_path, suite, "wam", "panda-stack", 0, [0.0, 0.6, 0.9, 1.0, 1.0])
    verdict = next(v for v in judge_claims(load_results(suite, tmp_path), reps=200) if v.claim.kind == "steps")
    assert verdict.verdict == "inconclusive" and "panda-stack" in verdict.detail  # one task is not enough

    for seed in range(3):  # both tasks complete, but the baseline is at the threshold before any training
        for task in ("metaworld-reach-v3", "panda-stack"):
            write_curve(tmp_path, suite, "wam", task, seed, [0.0, 0.6, 0.9, 1.0, 1.0])
            write_curve(tmp_path, suite, "dreamerv3", task, seed, [0.6, 0.6, 0.6, 0.6, 0.6])
    results = load_results(suite, tmp_path)
    verdict = next(v for v in judge_claims(results, reps=200) if v.claim.kind == "steps")
    assert verdict.verdict == "inconclusive" and "before training" in verdict.detail
    ratio = steps_ratio(results, "wam", "dreamerv3", ["metaworld-reach-v3", "panda-stack"], 0.5, reps=200)
    assert ratio.point == pytest.approx(1.0)  # both at the first evaluation's resolution, not 10000 / 1


def test_runs_are_single_threaded_including_the_software_renderer(tmp_path: Path, monkeypatch):
    suite = load_suite("debug", SUITES)
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    env = BenchRunner(suite, paths)._env()
    assert env["OMP_NUM_THREADS"] == "1" and env["LP_NUM_THREADS"] == "0"
    monkeypatch.setenv("LP_NUM_THREADS", "4")  # a user's own choice is kept
    assert BenchRunner(suite, paths)._env()["LP_NUM_THREADS"] == "4"


def test_no_new_run_starts_after_its_window_but_checkpointed_runs_resume(tmp_path: Path, monkeypatch):
    suite = load_suite("quick-state", SUITES)
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    fresh, started = expand_grid(suite, seeds=2, agents=("wam",), tasks=("panda-stack",))
    (paths.run_dir(suite, started) / "checkpoint").mkdir(parents=True)
    (paths.run_dir(suite, started) / "checkpoint" / "COMPLETE").write_text("ok\n")
    trained = []
    runner = BenchRunner(suite, paths, jobs=1, sync_every=0.1, new_runs_until=0.0)  # the window closed long ago
    monkeypatch.setattr(runner, "_train", lambda run, *rest: trained.append(run.key) or True)
    outcome = runner.run([fresh, started])
    assert trained == [started.key] and outcome["finished"] == [started.key]
    assert outcome["not started"] == [fresh.key] and outcome["failed"] == []


def test_a_checkpoint_left_by_a_crash_mid_swap_is_resumed_not_deleted(tmp_path: Path):
    suite = load_suite("quick-state", SUITES)
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    run = expand_grid(suite, seeds=1, agents=("wam",), tasks=("panda-stack",))[0]
    run_dir = paths.run_dir(suite, run)
    (run_dir / "checkpoint.old").mkdir(parents=True)  # the trainer had moved the old one aside when it was killed
    (run_dir / "checkpoint.old" / "COMPLETE").write_text("ok\n")
    assert run_status(suite, run, paths) == "resume"
    assert train_command(suite, run, run_dir)[-2:] == ["--resume", str(run_dir)]


def test_progress_line_names_each_training_run_and_its_logged_step(tmp_path: Path):
    run = tmp_path / "run"
    assert logged_step(run) is None  # not started
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1000}\n{"step": 12000}\n{"step": 13')  # a torn last line
    assert logged_step(run) == 12000
    assert (
        progress_text({"wam/reach/seed0": 12000, "dreamerv3/reach/seed1": None}, 50_000)
        == "wam/reach/seed0 12k/50k, dreamerv3/reach/seed1 –/50k"
    )
    assert progress_text({"wam/toy/seed0": 300}, 4000) == "wam/toy/seed0 300/4000"


def test_suite_demonstrations_are_collected_once_and_reach_the_agents_that_ask(tmp_path: Path):
    from wam.bench.grid import collect_command, demos_needed

    agents = {"wam": ["--agent", "wamq"], "wam-demos": ["--agent", "wamq", "--demos", "{demos}"]}
    tasks = [{"env": "metaworld/reach-v3", "obs": ["state"], "flags": ["--max-episode-steps", "12"]}]
    with pytest.raises(SuiteError, match=r"agents \['wam-demos'\] train with \{demos\} but the suite has no \[demos\]"):
        parse_suite(synthetic_suite(agents=agents, tasks=tasks, claims=[]))
    with pytest.raises(SuiteError, match="episodes=0 must be an integer >= 1"):
        parse_suite(synthetic_suite(agents=agents, tasks=tasks, claims=[], demos={"episodes": 0}))
    suite = parse_suite(synthetic_suite(agents=agents, tasks=tasks, claims=[], demos={"episodes": 1, "seed": 3}))
    paths = BenchPaths(tmp_path / "runs", tmp_path / "results")
    grid = expand_grid(suite, seeds=1)
    assert demos_needed(suite, grid) == [suite.tasks[0]] and demos_needed(suite, grid[:1]) == []
    with_demos = next(r for r in grid if r.agent == "wam-demos")
    out = paths.demos(suite, with_demos.task)
    cmd = train_command(suite, with_demos, paths.run_dir(suite, with_demos), out)
    assert (
        cmd[cmd.index("--demos") + 1] == str(out) == str(tmp_path / "runs" / "synth" / "demos" / "metaworld-reach-v3")
    )
    with pytest.raises(SuiteError, match="give the path of its task's dataset"):
        train_command(suite, with_demos, paths.run_dir(suite, with_demos))
    collect = collect_command(suite, with_demos.task, out)
    assert collect[collect.index("--seed") + 1] == "3" and collect[collect.index("--max-episode-steps") + 1] == "12"
    runner = BenchRunner(suite, paths, jobs=1, log=lambda line: None)
    assert runner.command(with_demos) == cmd  # the command a worker runs, not only the planned one
    runner.collect_demos(grid)
    info = out / "meta" / "info.json"
    assert json.loads(info.read_text())["total_episodes"] == 1
    stamp = info.stat().st_mtime_ns
    runner.collect_demos(grid)  # present: not collected again
    assert info.stat().st_mtime_ns == stamp
