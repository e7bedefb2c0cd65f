"""A running process notices a version another process published and reloads it atomically (issue 11 item 3)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bot.core.engine import EngineHolder
from index_builder.store import switch_current

ROOT = Path(__file__).resolve().parents[2]


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _qabot(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )


def _eventually(holder: EngineHolder, version: str, within_s: float = 3.0) -> float:
    """Ask questions until the holder serves `version`; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if holder.answer("what is machine learning?").index_version == version:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"still serving {holder.version}, not {version}, after {within_s} s")


def test_a_version_switched_by_another_process_is_served_within_seconds(fast_index_copy, knowledge_copy, fast_build):
    index_copy = fast_index_copy
    (knowledge_copy / "faq.md").write_text("# FAQ\n\nQabot answers questions about the knowledge folder.\n")
    first = os.readlink(index_copy / "current").rsplit("/", 1)[-1]
    second = fast_build(knowledge_copy, index_copy).version_id
    holder = EngineHolder(index_copy)
    assert holder.answer("what is machine learning?").index_version == second
    # another process (`qabot index rollback`, as an admin would run it) switches `current` back
    rolled = _qabot("index", "rollback", "--index", str(index_copy))
    assert rolled.returncode == 0, rolled.stderr
    # the link is checked at most once a second; loading the version takes the rest (more on a busy machine)
    assert _eventually(holder, first, within_s=10.0) <= 5.0
    assert "faq.md" not in {d["path"] for d in holder.manifest["documents"]}
    # and forward again (the switch a publish does)
    switch_current(index_copy, index_copy / "versions" / second)
    _eventually(holder, second)


def _second_version(index_dir: Path, suffix: str = "-copy") -> Path:
    """A byte-identical copy of the current version under another name (what a publish looks like)."""
    current = (index_dir / "current").resolve()
    copy = current.parent / (current.name + suffix)
    shutil.copytree(current, copy)
    return copy


def test_the_link_is_read_at_most_once_per_interval_and_the_swap_is_atomic(index_copy):
    clock = ManualClock()
    holder = EngineHolder(index_copy, clock=clock)
    original = holder.get()
    copy = _second_version(index_copy)
    switch_current(index_copy, copy)
    assert holder.get() is original  # within the interval: not even looked at
    clock.now += 1.0
    reloaded = holder.get()
    assert reloaded is not original and reloaded.index.version_dir == copy
    assert original.answer("what is machine learning?").quotes  # a question in flight finishes on the old one
    clock.now += 1.0
    assert holder.get() is reloaded  # the link did not move: no reload


def test_a_published_version_that_cannot_be_loaded_is_refused_and_the_old_one_keeps_serving(index_copy, caplog):
    clock = ManualClock()
    holder = EngineHolder(index_copy, clock=clock)
    serving = holder.get()
    broken = _second_version(index_copy)
    (broken / "passages.json").write_text('{"passages": []}')
    switch_current(index_copy, broken)
    with caplog.at_level(logging.WARNING, logger="bot.core.engine"):
        for _ in range(3):
            clock.now += 1.0
            assert holder.answer("what is machine learning?").quotes
            assert holder.get() is serving
    warnings = [r for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert len(warnings) == 1 and broken.name in warnings[0].getMessage()  # said once, not every second
    switch_current(index_copy, serving.index.version_dir)
    good = _second_version(index_copy, "-good")
    switch_current(index_copy, good)
    clock.now += 1.0
    assert holder.get().index.version_dir == good
