from __future__ import annotations

import threading

from bot.conversation.rebuild import RebuildCoordinator, RebuildStatus
from bot.core.errors import BuildError, BuildInProgressError

from .conftest import FakeBuildResult


def test_second_request_while_running_is_refused(fake_engine, tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow_builder(knowledge_dir, index_dir, *, force=False):
        started.set()
        assert release.wait(5)
        return FakeBuildResult("v2", 10, 1, 1.0)

    coord = RebuildCoordinator(fake_engine, tmp_path / "k", tmp_path / "i", builder=slow_builder)
    results = []
    worker = threading.Thread(target=lambda: results.append(coord.rebuild()))
    worker.start()
    assert started.wait(5)
    assert coord.running
    busy = coord.rebuild()
    assert busy.status is RebuildStatus.BUSY and busy.version == "v1"
    assert coord.rollback().status is RebuildStatus.BUSY  # rollback shares the lock
    release.set()
    worker.join(5)
    assert results[0].status is RebuildStatus.REBUILT and results[0].version == "v2"
    assert not coord.running
    assert fake_engine.reloads == 1


def test_failing_builder_keeps_old_version(fake_engine, tmp_path):
    def broken(knowledge_dir, index_dir, *, force=False):
        raise BuildError("embedding model not found")

    coord = RebuildCoordinator(fake_engine, tmp_path, tmp_path, builder=broken)
    out = coord.rebuild()
    assert out.status is RebuildStatus.FAILED
    assert out.version == "v1" and "embedding model not found" in out.error
    assert fake_engine.reloads == 0 and fake_engine.version == "v1"
    # the lock is released: the next rebuild may run
    assert coord.rebuild().status is RebuildStatus.FAILED


def test_any_exception_is_a_failure_not_a_crash(fake_engine, tmp_path):
    def broken(knowledge_dir, index_dir, *, force=False):
        raise MemoryError()

    out = RebuildCoordinator(fake_engine, tmp_path, tmp_path, builder=broken).rebuild()
    assert out.status is RebuildStatus.FAILED and out.error == "MemoryError"


def test_reload_failure_keeps_old_version(fake_engine, tmp_path):
    def reload_fails():
        raise RuntimeError("corrupt vectors")

    fake_engine.reload = reload_fails
    coord = RebuildCoordinator(
        fake_engine, tmp_path, tmp_path, builder=lambda k, i, force=False: FakeBuildResult("v2", 1, 1, 0)
    )
    out = coord.rebuild()
    assert out.status is RebuildStatus.FAILED and "v2" in out.error and out.version == "v1"


def test_unchanged_knowledge_does_not_reload(fake_engine, tmp_path):
    coord = RebuildCoordinator(
        fake_engine, tmp_path, tmp_path, builder=lambda k, i, force=False: FakeBuildResult("v1", 3, 1, 0.01, True)
    )
    out = coord.rebuild()
    assert out.status is RebuildStatus.UNCHANGED and out.version == "v1" and out.passage_count == 3
    assert fake_engine.reloads == 0


def test_skipped_build_of_another_version_is_loaded(fake_engine, tmp_path):
    # e.g. `qabot index build` ran in another process: the files are new, this engine is not
    coord = RebuildCoordinator(
        fake_engine, tmp_path, tmp_path, builder=lambda k, i, force=False: FakeBuildResult("v2", 3, 1, 0.01, True)
    )
    assert coord.rebuild().status is RebuildStatus.REBUILT
    assert fake_engine.reloads == 1


def test_build_lock_held_by_another_process_is_busy(fake_engine, tmp_path):
    def locked(k, i, force=False):
        raise BuildInProgressError("another build holds the lock")

    assert RebuildCoordinator(fake_engine, tmp_path, tmp_path, builder=locked).rebuild().status is RebuildStatus.BUSY


def test_rollback_without_previous_version(fake_engine, tmp_path):
    def no_previous(index_dir):
        raise BuildError("there is no previous version to roll back to")

    out = RebuildCoordinator(fake_engine, tmp_path, tmp_path, rollback=no_previous).rollback()
    assert out.status is RebuildStatus.FAILED and "no previous version" in out.error
    assert fake_engine.reloads == 0


def test_the_builds_warnings_reach_the_outcome(fake_engine, tmp_path):
    warnings = ("passwd.md: skipped: a link to a file outside the knowledge folder (/etc/passwd)",)
    built = RebuildCoordinator(
        fake_engine,
        tmp_path,
        tmp_path,
        builder=lambda k, i, force=False: FakeBuildResult("v2", 3, 1, 0.1, False, warnings),
    ).rebuild()
    assert built.status is RebuildStatus.REBUILT and built.warnings == warnings
    fake_engine.version = "v2"
    same = RebuildCoordinator(
        fake_engine,
        tmp_path,
        tmp_path,
        builder=lambda k, i, force=False: FakeBuildResult("v2", 3, 1, 0.1, True, warnings),
    ).rebuild()
    assert same.status is RebuildStatus.UNCHANGED and same.warnings == warnings
