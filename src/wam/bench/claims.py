"""Verdicts on a suite's registered claims: supported, not supported or inconclusive, judged on the 95%
stratified-bootstrap CI of the effect (a success difference or a steps-to-threshold ratio) computed in
:mod:`wam.bench.aggregate`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from wam.bench.aggregate import (
    MIN_SEEDS,
    Estimate,
    Results,
    censor_value,
    complete_tasks,
    iqm_batched,
    stack_by_task,
    steps_estimate,
    steps_ratio,
    stratified_bootstrap,
    success_estimate,
)
from wam.bench.suite import ClaimSpec


@dataclass(frozen=True)
class Verdict:
    """The data's answer to a claim."""

    claim: ClaimSpec
    verdict: str
    """``supported``, ``not supported`` or ``inconclusive``."""
    detail: str
    """The numbers behind the verdict, in words."""

    @property
    def label(self) -> str:
        """The verdict as printed: ``inconclusive`` reads "inconclusive at this scale"."""
        return "inconclusive at this scale" if self.verdict == "inconclusive" else self.verdict


def _fmt(e: Estimate, pct: bool) -> str:
    if pct:
        return f"{e.point:.0%} [{e.lo:.0%}, {e.hi:.0%}]"
    return f"{e.point:,.0f} [{e.lo:,.0f}, {e.hi:,.0f}]"


def judge_success_claim(results: Results, claim: ClaimSpec, reps: int = 2000) -> Verdict:
    """Final success of ``claim.agent`` minus ``claim.baseline`` (on ``claim.task`` or all tasks) vs ``claim.claimed``."""
    suite, step = results.suite, results.suite.budget
    tasks = [claim.task] if claim.task else [t.name for t in suite.tasks]
    where = claim.task or f"the {len(tasks)} tasks"
    if short := _too_few_seeds(results, claim, tasks):
        return short
    ea, eb = (success_estimate(results, a, tasks, step, reps) for a in (claim.agent, claim.baseline))
    sa, sb = (
        stack_by_task([list(results.success_at(a, t, step).values()) for t in tasks])
        for a in (claim.agent, claim.baseline)
    )
    d, dlo, dhi = stratified_bootstrap([sa, sb], lambda x, y: iqm_batched(x) - iqm_batched(y), reps)
    numbers = (
        f"IQM success at {step:,} env steps on {where}: {claim.agent} {_fmt(ea, True)} vs {claim.baseline} "
        f"{_fmt(eb, True)} (n = {ea.n} / {eb.n} seeds); difference {d * 100:+.0f} points [{dlo * 100:+.0f}, {dhi * 100:+.0f}], "
        f"claimed {claim.claimed * 100:+.0f}"
    )
    verdict = _verdict_from_interval(claim, numbers, dlo, dhi, higher_is_better=True)
    if all(_never_succeeded(results, a, tasks) for a in (claim.agent, claim.baseline)):
        verdict = replace(
            verdict,
            detail=verdict.detail + ". Neither agent succeeded at any evaluation of any seed (a "
            "floor): at this budget the data say that neither reaches the claimed level, not which "
            "architecture is better",
        )
    return verdict


def _too_few_seeds(results: Results, claim: ClaimSpec, tasks: list[str]) -> Verdict | None:
    """An inconclusive verdict naming the tasks that lack :data:`MIN_SEEDS` complete seeds of either agent, if any."""
    complete = set(complete_tasks(results, [claim.agent, claim.baseline], MIN_SEEDS))
    missing = [t for t in tasks if t not in complete]
    if not missing:
        return None
    about = "the claim is about all of them" if len(tasks) > 1 else "a verdict needs them"
    verb = "lack" if len(missing) > 1 else "lacks"
    return Verdict(
        claim,
        "inconclusive",
        f"{len(missing)} of {len(tasks)} task{'s' if len(tasks) > 1 else ''} {verb} "
        f"{MIN_SEEDS} complete seeds of {claim.agent} or {claim.baseline} "
        f"({', '.join(missing)}); {about}",
    )


def _never_succeeded(results: Results, agent: str, tasks: list[str]) -> bool:
    """Whether every evaluation of every complete seed of ``agent`` on ``tasks`` has zero success."""
    return all(
        not row.get("eval/success")
        for t in tasks
        for seed in results.complete_seeds(agent, t)
        for row in results.curves[agent][t][seed]
    )


def _verdict_from_interval(claim: ClaimSpec, numbers: str, lo: float, hi: float, higher_is_better: bool) -> Verdict:
    """Supported when the whole 95% CI of the effect (a difference, or a ratio) reaches the claimed effect, not
    supported when it excludes it, inconclusive when it contains it (and smaller effects too)."""
    if higher_is_better:  # a difference: the claim is an improvement of at least `claimed` (> 0)
        reached, excluded = lo >= claim.claimed and lo > 0, hi < claim.claimed or hi <= 0
    else:  # a ratio: the claim is at most `claimed` (< 1) of the baseline's steps
        reached, excluded = hi <= claim.claimed and hi < 1, lo > claim.claimed or lo >= 1
    if reached:
        return Verdict(claim, "supported", f"the 95% CI of the effect lies at or beyond the claim. {numbers}")
    if excluded:
        return Verdict(claim, "not supported", f"the 95% CI of the effect excludes the claim. {numbers}")
    return Verdict(claim, "inconclusive", f"the 95% CI of the effect contains the claim and smaller effects. {numbers}")


def judge_steps_claim(results: Results, claim: ClaimSpec, reps: int = 2000) -> Verdict:
    """Steps-to-threshold ratio ``claim.agent`` / ``claim.baseline`` over the claim's tasks (``claim.task`` or all of
    them, each with at least :data:`MIN_SEEDS` complete seeds of both) against ``claim.claimed``."""
    suite = results.suite
    threshold = claim.threshold if claim.threshold is not None else suite.thresholds[0]
    pair = [claim.agent, claim.baseline]
    tasks = [claim.task] if claim.task else [t.name for t in suite.tasks]
    if short := _too_few_seeds(results, claim, tasks):
        return short
    ea, eb = (steps_estimate(results, a, tasks, threshold, reps) for a in pair)
    cover = f"{len(tasks)} task{'s' if len(tasks) > 1 else ''} ({', '.join(tasks)})"
    if ea.censored and eb.censored:
        return Verdict(
            claim,
            "inconclusive",
            f"neither agent's IQM success reached {threshold:.0%} within "
            f"{suite.budget:,} env steps on {cover} (n = {ea.n} / {eb.n} seeds)",
        )
    if min(ea.point, eb.point) <= 0:
        return Verdict(
            claim,
            "inconclusive",
            f"the IQM success was already at {threshold:.0%} before training on {cover}: nothing to learn faster",
        )
    ratio = steps_ratio(results, claim.agent, claim.baseline, tasks, threshold, reps)

    def steps_text(e: Estimate) -> str:
        return f"> {suite.budget:,} (not reached)" if e.censored else _fmt(e, False)

    numbers = (
        f"env steps for the IQM success to reach {threshold:.0%} on {cover}: {claim.agent} {steps_text(ea)} vs "
        f"{claim.baseline} {steps_text(eb)} (n = {ea.n} / {eb.n} seeds); ratio {ratio.point:.2f} "
        f"[{ratio.lo:.2f}, {ratio.hi:.2f}], claimed ≤ {claim.claimed:.2f}"
    )
    if eb.censored or ea.censored:
        late = claim.baseline if eb.censored else claim.agent
        numbers += (
            f" ({late} did not reach the threshold: its steps count as {censor_value(suite):,}, so the ratio is "
            f"{'an upper' if eb.censored else 'a lower'} bound; steps are resolved to the {suite.eval_every:,}-step "
            "evaluation interval)"
        )
    return _verdict_from_interval(claim, numbers, ratio.lo, ratio.hi, higher_is_better=False)


def judge_claims(results: Results, reps: int = 2000) -> list[Verdict]:
    """A verdict for every claim registered in the suite."""
    judges = {"success": judge_success_claim, "steps": judge_steps_claim}
    return [judges[c.kind](results, c, reps) for c in results.suite.claims]
