"""Variant studies: short ``wam train`` runs that differ in one or two flags, with their curves kept and tabulated.

A *study* fixes an environment and a schedule (``BASE`` flags); each named *variant* adds flags. ``run`` trains a
variant into ``runs/<study>/<variant>_s<seed>`` and copies its evaluation curve (with the flags and the code
version) to ``benchmarks/results/<study>/``; ``report`` rebuilds ``benchmarks/results/<study>.md`` from those curves;
``store`` records an existing run folder made with a variant's exact flags. An interrupted ``run`` continues from
its last checkpoint when called again (``--fresh`` starts over); its recorded code version is the one that finished it.

    python benchmarks/variants.py reach_v3 run repval --seed 0
    python benchmarks/variants.py reach_v3 report

Studies: ``toy_reach2d`` (4k steps on the 2-D toy; standing still returns ≈ 10–14, a greedy policy ≈ 40),
``reach_v3`` (MetaWorld reach-v3 from state, 30k steps, the quick-state grid's prefill), ``readme_reach`` (the
README's main command: the Q-learning WAM on reach-v3 from state, 15k steps) and ``demos_reach`` (the same WAM with
10 expert episodes mixed into its batches against from scratch, 10k steps).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wam.bench.process import run_to_end

RESULTS_ROOT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Study:
    """An environment + schedule, and the named variants run on it."""

    base: tuple[str, ...]
    milestones: tuple[int, ...]
    note: str
    #: Variant name → extra ``wam train`` flags. Flags spell out every setting that differs from the defaults of
    #: the commit that ran them, so old rows stay meaningful after defaults change.
    variants: dict[str, tuple[str, ...]]
    #: Data the variants read (not committed): path → the command that makes it, run by ``run`` when it is absent.
    data: dict[str, tuple[str, ...]] = field(default_factory=dict)


#: The WAM of record on reach-v3 from state at one update per env step (the README's main command, without budget).
WAM_REACH = ("--agent", "wamq", "--env", "metaworld/reach-v3", "--obs", "state", "--train-ratio", "384")

STUDIES: dict[str, Study] = {
    "toy_reach2d": Study(
        base=("--env", "toy/reach2d", "--obs", "state", "--steps", "4000", "--prefill", "500", "--eval-every", "1000"),
        milestones=(0, 1000, 2000, 3000, 4000),
        note="Standing still returns ≈ 10–14, a greedy policy ≈ 40. Variants recorded with `store` ran before "
        "`--wam.actor-warmup` existed when their commit predates it (same thing as 0).",
        variants={
            "nowarmup_r64": ("--train-ratio", "64", "--wam.actor-warmup", "0"),
            "nowarmup_r64_pathwise": ("--train-ratio", "64", "--wam.actor-warmup", "0", "--wam.actor-grad", "pathwise"),
            "nowarmup_r128": ("--train-ratio", "128", "--wam.actor-warmup", "0"),
            "nowarmup_r128_decoupled": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "0",
                "--wam.coupling",
                "decoupled",
            ),
            "warmup500_r128": ("--train-ratio", "128", "--wam.actor-warmup", "500"),
            "warmup500_r128_decoupled": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--wam.coupling",
                "decoupled",
            ),
            # The toy suite's WAM cell differs from warmup500_r128 only in these run flags, yet ended at 32.4 / 10%.
            "warmup500_r128_cap4000": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--replay-capacity",
                "4000",
            ),
            # 50-step episodes take 51 replay rows, so a 4000-row replay wraps at ≈3922 env steps; 4100 rows never wrap
            # in 4k steps. If wrapping is the whole difference, this reproduces warmup500_r128 exactly.
            "warmup500_r128_cap4100": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--replay-capacity",
                "4100",
            ),
            "warmup500_r128_actorlr3e-5": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--wam.actor-lr",
                "3e-5",
            ),
            "warmup500_r128_pathwise": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--wam.actor-grad",
                "pathwise",
            ),
            "warmup500_r128_bounded": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--wam.policy-dist",
                "bounded_normal",
            ),
            "warmup500_r128_h1": (
                "--train-ratio",
                "128",
                "--wam.actor-warmup",
                "500",
                "--wam.extra",
                "model_horizon",
                "1",
            ),
            # DreamerV3 at the paper's ratio: 2000 updates in 4k steps (its batch is 16 x 64 steps), the WAM runs' order.
            "dreamerv3_r512": ("--agent", "dreamerv3", "--train-ratio", "512", "--dreamerv3.warmup", "50"),
        },
    ),
    "reach_v3": Study(
        base=(
            "--env",
            "metaworld/reach-v3",
            "--obs",
            "state",
            "--steps",
            "30000",
            "--prefill",
            "2500",
            "--eval-every",
            "5000",
            "--threads",
            "1",
        ),
        milestones=(0, 5000, 10000, 15000, 20000, 25000, 30000),
        note="WAM defaults of the commit unless the flags say otherwise; 10 deterministic evaluation episodes, success "
        "= any-step success. The SAC reference in the same harness reached 60% at 20k "
        "(`benchmarks/results/quick-state/sac/`).",
        variants={
            "r16": ("--train-ratio", "16"),
            "r64": ("--train-ratio", "64"),
            "r16_rec39": ("--train-ratio", "16", "--wam.beta-rec", "39"),
            "r16_repval": ("--train-ratio", "16", "--wam.beta-repval", "0.3"),
            "r16_gamma099": ("--train-ratio", "16", "--wam.extra", "gamma", "0.99"),
            "r16_pathwise": ("--train-ratio", "16", "--wam.actor-grad", "pathwise"),
            # DreamerV3 imagines from every replayed step; the CPU default is 32 starts per update (~4x cheaper).
            "r16_starts256": ("--train-ratio", "16", "--wam.imag-starts", "256"),
            # DreamerV3's bounded Normal policy: the entropy bonus no longer pulls the mean to 0 (docs/reach_diagnosis.md).
            "r16_bounded": ("--train-ratio", "16", "--wam.policy-dist", "bounded_normal"),
            "r16_bounded_starts256": (
                "--train-ratio",
                "16",
                "--wam.policy-dist",
                "bounded_normal",
                "--wam.imag-starts",
                "256",
            ),
            "r16_bounded_pathwise": (
                "--train-ratio",
                "16",
                "--wam.policy-dist",
                "bounded_normal",
                "--wam.actor-grad",
                "pathwise",
            ),
            # SAC-like update count: one update of 16 x 16 replayed steps per env step (~27.5k updates by 30k, 16x the
            # grid's), affordable on one CPU core only with the `tiny` model (0.24 s/update against 0.6-0.8 for `small`).
            "tiny_r256": ("--train-ratio", "256", "--wam.size", "tiny"),
            # Pathwise again after the coupled-mode gradient-routing fix of 2026-11-25 (the critic trained the policy
            # through imagined states; returns reached the encoder/trunk through the real prefix): the runs above
            # with `pathwise` in their name predate it.
            "r16_bounded_pathwise_fixed": (
                "--train-ratio",
                "16",
                "--wam.policy-dist",
                "bounded_normal",
                "--wam.actor-grad",
                "pathwise",
            ),
        },
    ),
    "readme_reach": Study(
        base=(*WAM_REACH, "--steps", "15000", "--eval-every", "5000"),
        milestones=(0, 5000, 10000, 15000),
        note="The README's main command (the Q-learning WAM at its defaults, one update per env step); `minutes` is "
        "the run's wall-clock from start to final evaluation, one thread.",
        variants={"default": ()},
    ),
    "demos_reach": Study(
        base=(*WAM_REACH, "--steps", "10000", "--eval-every", "2500"),
        milestones=(0, 2500, 5000, 7500, 10000),
        note="Issue 35: the WAM at its defaults with 10 expert episodes in half of every batch (`--demos`, RLPD's "
        "share) against the same run from scratch. The demonstrations are MetaWorld's scripted policy on the "
        "environment seeded 0 (`wam data collect`, no action noise); evaluations use other goals (seed + 10000).",
        variants={
            "scratch": (),
            "demos10": ("--demos", "runs/demos/reach-v3_10"),
            # With demonstrations there is data to train on from the first step: a short random prefill.
            "demos10_prefill500": ("--demos", "runs/demos/reach-v3_10", "--prefill", "500"),
            "scratch_prefill500": ("--prefill", "500"),
        },
        data={
            "runs/demos/reach-v3_10": (
                "wam",
                "data",
                "collect",
                "--env",
                "metaworld/reach-v3",
                "--episodes",
                "10",
                "--out",
                "runs/demos/reach-v3_10",
                "--quiet",
            )
        },
    ),
}


def commit() -> str:
    """Short hash of the checked-out code (with ``+dirty`` when ``src/`` has changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def store(study: str, variant: str, seed: int, run_dir: Path, code: str) -> Path:
    """Copy a run's evaluation curve (with its flags and code version) into the study's results folder."""
    rows = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines() if line.strip()]
    folder = RESULTS_ROOT / study
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{variant}_s{seed}.jsonl"
    meta = {"variant": variant, "seed": seed, "flags": list(STUDIES[study].variants[variant]), "commit": code}
    with target.open("w") as f:
        for row in rows:
            f.write(
                json.dumps(
                    {
                        **meta,
                        "step": row["step"],
                        "success": row["eval/success"],
                        "return": row["eval/return"],
                        "updates": row.get("updates"),
                        "wall_time": row.get("wall_time"),
                    }
                )
                + "\n"
            )
    return target


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f}"


def _k(step: int) -> str:
    return f"{step / 1000:g}k" if step else "0"


def report(study: str) -> str:
    """Markdown table of every stored curve of ``study``, written to ``benchmarks/results/<study>.md``."""
    spec = STUDIES[study]
    lines = [
        f"# {study}: variant runs",
        "",
        f"Generated by `python benchmarks/variants.py {study} report` from `benchmarks/results/{study}/`. Each cell: "
        f"eval return / success. {spec.note} Common flags: `{' '.join(spec.base)}`; – = not reached (run stopped).",
        "",
        "| variant | seed | code | flags | " + " | ".join(_k(m) for m in spec.milestones) + " | updates | minutes |",
        "|---|---|---|---|" + "---|" * len(spec.milestones) + "---|---|",
    ]
    for path in sorted((RESULTS_ROOT / study).glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        cells = {r["step"]: f"{r['return']:.1f} / {r['success']:.0%}" for r in rows}
        first = rows[0]
        lines.append(
            f"| {first['variant']} | {first['seed']} | {first['commit']} | `{' '.join(first['flags'])}` | "
            + " | ".join(cells.get(m, "–") for m in spec.milestones)
            + f" | {int(rows[-1]['updates'] or 0)} | {_minutes(rows[-1].get('wall_time'))} |"
        )
    table = RESULTS_ROOT / f"{study}.md"
    table.write_text("\n".join(lines) + "\n")
    return table.read_text()


def main(argv: list[str] | None = None, study: str | None = None) -> None:
    """``STUDY run VARIANT [--seed S]``, ``STUDY store VARIANT RUN_DIR --commit C`` or ``STUDY report``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if study is None:
        parser.add_argument("study", choices=sorted(STUDIES))
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("variant")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--fresh", action="store_true", help="start over even if the run folder has a checkpoint")
    keep = sub.add_parser("store", help="record an existing run folder made with a variant's flags")
    keep.add_argument("variant")
    keep.add_argument("run_dir", type=Path)
    keep.add_argument("--seed", type=int, default=0)
    keep.add_argument("--commit", required=True, help="code version the run was made with")
    sub.add_parser("report")
    args = parser.parse_args(argv)
    study = study or args.study
    variants = STUDIES[study].variants
    if args.cmd in ("run", "store") and args.variant not in variants:
        parser.error(f"unknown variant {args.variant!r} of study {study}; choose from {sorted(variants)}")
    if args.cmd == "run":
        for path, make in STUDIES[study].data.items():
            if not Path(path).exists() and run_to_end(list(make)):
                sys.exit(f"could not make {path}: {' '.join(make)}")
        run_dir = Path("runs") / study / f"{args.variant}_s{args.seed}"
        if (run_dir / "checkpoint" / "COMPLETE").is_file() and not args.fresh:  # an interrupted run continues
            cmd = ["wam", "train", "--resume", str(run_dir)]
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            cmd = [
                "wam",
                "train",
                *STUDIES[study].base,
                *variants[args.variant],
                "--seed",
                str(args.seed),
                "--out",
                str(run_dir),
                "--no-progress",
            ]
        code = commit()
        try:
            failed = run_to_end(cmd)
        except KeyboardInterrupt:  # the run was stopped with a checkpoint
            sys.exit(f"stopped; rerun the same command to continue {run_dir}")
        if failed:
            sys.exit(f"training failed: {' '.join(cmd)}")
        print(f"stored {store(study, args.variant, args.seed, run_dir, code)}")
    elif args.cmd == "store":
        print(f"stored {store(study, args.variant, args.seed, args.run_dir, args.commit)}")
    else:
        print(report(study))


if __name__ == "__main__":
    main()
