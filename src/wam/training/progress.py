"""A rich progress bar for training: env steps, last eval success / return, training return, steps/s, updates."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """Context manager around a rich progress bar; a no-op when ``enabled`` is False."""

    def __init__(self, total: int, enabled: bool = True, start: int = 0):
        self.enabled = enabled
        self._fields = {"success": "-", "ret": "-", "train": "-", "sps": "-", "updates": "0"}
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("env steps"),
            TextColumn(
                "success {task.fields[success]} | eval return {task.fields[ret]} | train return {task.fields[train]}"
                " | {task.fields[sps]} steps/s | {task.fields[updates]} updates"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task("train", total=total, completed=start, **self._fields)

    def __enter__(self) -> "TrainProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def advance(self, steps: int) -> None:
        """Count ``steps`` more environment steps."""
        self._progress.update(self._task, advance=steps)

    def set_evaluating(self, done: int, total: int) -> None:
        """Show that an evaluation is under way (``done`` of ``total`` episodes finished)."""
        self._progress.update(self._task, success=f"evaluating {done}/{total}")

    def set_eval(self, success: float, ret: float) -> None:
        """Show the latest evaluation."""
        self._progress.update(self._task, success=f"{success:.0%}", ret=f"{ret:.1f}")

    def set_train(self, ret: float | None, sps: float, updates: int) -> None:
        """Show training return, throughput and update count."""
        self._progress.update(
            self._task, train="-" if ret is None else f"{ret:.1f}", sps=f"{sps:.0f}", updates=str(updates)
        )
