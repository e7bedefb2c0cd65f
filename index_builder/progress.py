"""What a build shows while it runs (issue 9, item 7): a rich progress display on a terminal.

`qabot index build` (and `qabot chat` building its first index) shows, on stderr when it is a
terminal, the step in progress with a spinner that keeps turning while a model embeds the knowledge
(the slow part: minutes for mpnet on two cores), the steps done out of all, and the time spent. It
disappears when the build ends, leaving the one-line result. Not a terminal, or `--quiet`: nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

STEP_TEXT = {"write": "writing the index files", "verify": "loading and probing the new version"}


def _describe(step: str) -> str:
    if step.startswith("encoder "):
        return f"embedding the knowledge with {step.removeprefix('encoder ')}"
    return STEP_TEXT.get(step, step)


class BuildProgress:
    """The steps of one build, as a context manager; `done(step)` when one ends."""

    def __init__(self, steps: Sequence[str], *, enabled: bool, stream: IO[str] | None = None):
        self.steps = list(steps)
        self._next = 0
        self._progress: Progress | None = None
        if not enabled or not self.steps:
            return
        console = Console(file=stream or sys.stderr, markup=False, highlight=False)
        if not console.is_terminal:
            return
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("building the index: {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(_describe(self.steps[0]), total=len(self.steps))
        self._progress.start()

    def done(self, step: str) -> None:
        if self._progress is None:
            return
        self._next = min(self._next + 1, len(self.steps))
        following = self.steps[self._next] if self._next < len(self.steps) else "done"
        self._progress.update(self._task, advance=1, description=_describe(following))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # on failure too: the display stops and the terminal's cursor comes back
