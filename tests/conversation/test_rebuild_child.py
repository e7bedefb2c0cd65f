"""Rebuilds from chat run in a child process: the bot's memory and imports stay its own, and a builder that
crashes, is killed or finds the lock taken is a clear outcome while the bot keeps serving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.conversation.build_process import ChildProcessBuilder
from bot.conversation.rebuild import RebuildCoordinator, RebuildStatus
from bot.conversation.service import rebuild_text
from bot.core.engine import EngineHolder

from .conftest import FakeBuildResult

ROOT = Path(__file__).resolve().parents[2]


def test_reindex_leaves_the_bots_memory_where_it_was_and_never_imports_torch(index_copy, knowledge_copy):
    # the bot is a fresh process (this test process imported torch long ago for its fixtures)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.reindex_rss",
            "--index",
            index_copy,
            "--knowledge",
            knowledge_copy,
            "--questions",
            "20",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "rebuilt" and result["version_after"] != result["version_before"], result
    assert not result["torch_imported"] and not result["sentence_transformers_imported"], result
    assert result["rss_after_mib"] <= 1.10 * result["rss_before_mib"], result  # back within 10 % after the reindex


def _wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_killed_builder_is_a_failed_rebuild_and_the_bot_keeps_serving(index_copy, knowledge_copy):
    holder = EngineHolder(index_copy)
    before = holder.version
    link_before = os.readlink(index_copy / "current")
    coord = RebuildCoordinator(holder, knowledge_copy, index_copy)
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(coord.rebuild(force=True)))
    worker.start()
    pid = _wait_for(lambda: coord.builder_pid)
    assert pid != os.getpid()
    time.sleep(0.5)  # let it get going (importing the builder)
    os.kill(pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    worker.join(60)
    (outcome,) = outcomes
    assert outcome.status is RebuildStatus.FAILED
    assert "killed by SIGKILL" in outcome.error and "out of memory" in outcome.error
    text = rebuild_text("reindex", outcome)
    assert "Rebuild failed" in text and f"keeps serving (version {before})" in text and "Traceback" not in text
    assert holder.version == before and os.readlink(index_copy / "current") == link_before
    assert holder.answer("what is machine learning?").quotes  # still answering
    assert coord.builder_pid is None and not coord.running
    assert coord.rebuild().status is RebuildStatus.UNCHANGED  # the lock died with the child


def test_a_build_error_in_the_child_comes_back_as_its_sentence(tmp_path, index_copy):
    empty = tmp_path / "empty-knowledge"
    empty.mkdir()
    holder = EngineHolder(index_copy)
    outcome = RebuildCoordinator(holder, empty, index_copy).rebuild()
    assert outcome.status is RebuildStatus.FAILED
    assert "has no .md or .txt documents" in outcome.error and outcome.version == holder.version


def test_the_lock_held_by_another_process_is_busy(index_copy, knowledge_copy):
    from index_builder.store import build_lock

    holder = EngineHolder(index_copy)
    with build_lock(index_copy):  # e.g. `qabot index build` running now
        outcome = RebuildCoordinator(holder, knowledge_copy, index_copy).rebuild(force=True)
    assert outcome.status is RebuildStatus.BUSY and outcome.version == holder.version


def test_a_builder_that_dies_without_a_report_is_a_failure(fake_engine, tmp_path):
    outcome = RebuildCoordinator(
        fake_engine, tmp_path, tmp_path, builder=ChildProcessBuilder(python="/bin/false")
    ).rebuild()
    assert outcome.status is RebuildStatus.FAILED and "exited with code 1" in outcome.error
    assert fake_engine.reloads == 0


def test_the_childs_result_and_warnings_come_back(fake_engine, tmp_path):
    report = {
        "ok": True,
        "result": {
            "version_id": "v2",
            "passage_count": 7,
            "documents": 2,
            "took_s": 1.5,
            "skipped": False,
            "version_dir": str(tmp_path / "versions" / "v2"),
            "warnings": ["notes.md: 12 words were not indexed", "big.md: a passage of 40,000 characters"],
        },
    }
    child = tmp_path / "fake-python"  # stands in for the interpreter: prints what a finished build prints
    child.write_text(f"#!/bin/sh\necho 'some library chatter'\necho '{json.dumps(report)}'\n")
    child.chmod(0o755)
    outcome = RebuildCoordinator(
        fake_engine, tmp_path, tmp_path, builder=ChildProcessBuilder(python=str(child))
    ).rebuild()
    assert outcome.status is RebuildStatus.REBUILT and outcome.version == "v2"
    assert (outcome.passage_count, outcome.documents) == (7, 2)
    assert outcome.warnings == tuple(report["result"]["warnings"])
    text = rebuild_text("reindex", outcome)
    assert "Warnings (2):" in text and "12 words were not indexed" in text


def test_warnings_of_an_unchanged_build_are_shown_too(fake_engine, tmp_path):
    result = FakeBuildResult("v1", 3, 1, 0.1, True)
    result.warnings = ("w",) * 7  # type: ignore[attr-defined]
    outcome = RebuildCoordinator(fake_engine, tmp_path, tmp_path, builder=lambda k, i, force=False: result).rebuild()
    assert outcome.status is RebuildStatus.UNCHANGED and len(outcome.warnings) == 7
    assert "and 2 more" in rebuild_text("reindex", outcome)
