"""Errors the core raises; each carries the one-line fix a person should apply.

The CLI maps IndexProblem to exit code 3; chat adapters show `str(err)`.
"""

from __future__ import annotations


class QabotError(Exception):
    """Base class for errors with a message fit for a user."""


class IndexProblem(QabotError):
    """The index cannot be served. `fix` says what to run."""

    def __init__(self, message: str, fix: str = "Run `qabot index build --force` to rebuild it."):
        super().__init__(f"{message} {fix}".strip())
        self.message = message
        self.fix = fix


class IndexMissingError(IndexProblem):
    pass


class IndexCorruptError(IndexProblem):
    pass


class IndexMismatchError(IndexProblem):
    pass


class BuildError(QabotError):
    """A rebuild failed; the index that was serving is untouched."""


class BuildInProgressError(QabotError):
    """Another rebuild holds the lock."""


def describe_error(err: BaseException, limit: int = 200) -> str:
    """`Type: first line of the message`, short: what a one-line user message may say about an exception."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
