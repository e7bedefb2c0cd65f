"""Capture every log record the way `qabot run` configures logging, to check what reaches the logs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

from bot.conversation.privacy import LIBRARY_LOGGERS, configure_service_logging

# The loopback fakes are aiohttp servers in the test's own process: their access log is theirs, not the bot's.
FAKE_SERVER_LOGGERS = ("aiohttp.access",)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name not in FAKE_SERVER_LOGGERS:
            self.lines.append(self.format(record))  # the message, its arguments and any traceback

    def leaks(self, secrets: Iterable[str]) -> list[tuple[str, str]]:
        """(secret, line) for every captured line that contains one of `secrets`."""
        return [(s, line) for line in self.lines for s in secrets if s and s in line]


@contextlib.contextmanager
def service_logs(level: str = "DEBUG") -> Iterator[Captured]:
    """Logging as `qabot run` sets it at QABOT_LOG_LEVEL=`level`, captured from the root logger."""
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS})
    formatters = {h: h.formatter for h in root.handlers}
    configure_service_logging(level)
    handler = Captured()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for h, formatter in formatters.items():
            h.setFormatter(formatter)
        root.setLevel(saved[0])
        for name, lvl in saved[1].items():
            logging.getLogger(name).setLevel(lvl)
