"""The progress display of a build (issue 9, item 7): on a terminal, the step in progress with a
spinner; nothing when not a terminal or not asked; always stopped, on failure too."""

from __future__ import annotations

import io
import re
import sys
import time

import pytest

from index_builder.progress import BuildProgress

STEPS = ["encoder mpnet", "encoder e5", "write", "verify"]
SHOW_CURSOR = "\x1b[?25h"


class _TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _a_color_terminal(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def _shown(stream: io.StringIO) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())


def test_on_a_terminal_each_step_is_shown_while_it_runs():
    stream = _TerminalStream()
    with BuildProgress(STEPS, enabled=True, stream=stream) as progress:
        time.sleep(0.3)
        assert "building the index: embedding the knowledge with mpnet" in _shown(stream)
        assert "0/4" in _shown(stream)
        progress.done("encoder mpnet")
        progress.done("encoder e5")
        time.sleep(0.3)
        assert "writing the index files" in _shown(stream) and "2/4" in _shown(stream)
    assert stream.getvalue().endswith(SHOW_CURSOR) or SHOW_CURSOR in stream.getvalue()[-40:]


@pytest.mark.parametrize(("enabled", "stream"), [(False, _TerminalStream()), (True, io.StringIO())])
def test_nothing_is_shown_when_not_asked_or_not_a_terminal(enabled, stream):
    with BuildProgress(STEPS, enabled=enabled, stream=stream) as progress:
        progress.done("encoder mpnet")
    assert stream.getvalue() == ""


def test_a_failing_build_stops_the_display():
    stream = _TerminalStream()
    with pytest.raises(RuntimeError), BuildProgress(STEPS, enabled=True, stream=stream):
        raise RuntimeError("the encoder failed")
    assert SHOW_CURSOR in stream.getvalue()  # the cursor is back; no display thread left running
    deadline = time.monotonic() + 2  # rich's refresh thread ends at its next tick once stopped
    while _refresh_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _refresh_threads()


def _refresh_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if type(t).__name__ == "_RefreshThread"]


def test_a_real_build_shows_its_steps_on_a_terminal(fast_index_copy, fast_build, monkeypatch):
    from tests.conftest import KNOWLEDGE_DIR

    stream = _TerminalStream()
    monkeypatch.setattr(sys, "stderr", stream)
    result = fast_build(KNOWLEDGE_DIR, fast_index_copy, force=True, show_progress=True)
    assert result.passage_count > 0
    shown = _shown(stream)
    assert "building the index: embedding the knowledge with" in shown
    assert SHOW_CURSOR in stream.getvalue()
