"""``wam data collect``: scripted-expert datasets in the LeRobot v3.0 layout (see docs/data.md)."""

from __future__ import annotations

from dataclasses import dataclass

from wam.data.collect import CollectConfig, CollectSummary, collect


@dataclass
class CollectArgs(CollectConfig):
    """Roll out an environment's scripted expert and write the episodes as a LeRobot v3.0 dataset.

    Example: wam data collect --env metaworld/reach-v3 --episodes 50 --obs proprio,rgb,depth --out data/reach
    """

    quiet: bool = False
    """Hide the progress bar; print only the summary."""


def collect_cli(args: CollectArgs) -> CollectSummary:
    """Run a collection from parsed command-line arguments and print a one-paragraph summary."""
    summary = collect(args, progress=not args.quiet)
    mb = summary.bytes_on_disk / 1e6
    print(
        f"wrote {summary.episodes} episodes / {summary.frames} frames of {args.env} to {summary.path}\n"
        f"  expert success {summary.successes}/{summary.episodes} ({summary.success_rate:.0%}), "
        f"{summary.frames_per_s:.0f} frames/s, {mb:.2f} MB on disk ({1e3 * mb / max(summary.frames, 1):.2f} MB per 1k frames), "
        f"fps {summary.fps:g}"
    )
    return summary
