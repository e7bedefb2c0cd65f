"""Writing index versions atomically, switching `current`, rolling back, and keeping a few old versions.

A build writes into INDEX_DIR/.staging-<id>/ (same filesystem), fsyncs, renames it into
versions/<id>/, then points `current` at it by renaming a fresh symlink over the old one: readers see
the old version or the new one, never a mix. The previous versions stay for rollback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from bot.core.errors import BuildError, BuildInProgressError, IndexProblem
from bot.core.index_store import CURRENT_LINK, VERSIONS_DIR, current_version_dir

KEEP_VERSIONS = 3
LOCK_FILE = ".build.lock"
STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes (an advisory file lock)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise BuildInProgressError("A rebuild of this index is already running.") from err
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def new_staging_dir(index_dir: Path, version_id: str) -> Path:
    path = index_dir / f"{STAGING_PREFIX}{version_id}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def clear_stale_staging(index_dir: Path) -> None:
    """Remove what a crashed build left behind (only called while holding the build lock)."""
    for path in index_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(index_dir: Path, staging: Path, version_id: str) -> Path:
    """Move a finished staging folder into versions/ and switch `current` to it in one rename."""
    _fsync_tree(staging)
    versions = index_dir / VERSIONS_DIR
    versions.mkdir(exist_ok=True)
    final = versions / version_id
    if final.exists():
        raise BuildError(f"Index version {version_id} exists already.")
    os.rename(staging, final)
    switch_current(index_dir, final)
    prune(index_dir)
    return final


def switch_current(index_dir: Path, version_dir: Path) -> None:
    tmp_link = index_dir / f".{CURRENT_LINK}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    os.symlink(os.path.relpath(version_dir, index_dir), tmp_link)
    os.replace(tmp_link, index_dir / CURRENT_LINK)
    fd = os.open(index_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_versions(index_dir: Path) -> list[Path]:
    """Published versions, oldest first (version ids start with their UTC build time)."""
    versions = index_dir / VERSIONS_DIR
    if not versions.is_dir():
        return []
    return sorted(p for p in versions.iterdir() if p.is_dir())


def prune(index_dir: Path, keep: int = KEEP_VERSIONS) -> None:
    """Keep the newest `keep` versions and the current one; remove older ones."""
    try:
        current = current_version_dir(index_dir)
    except Exception:
        return
    old = [p for p in list_versions(index_dir) if p.resolve() != current][: -keep + 1 or None]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)


def rollback(index_dir: Path) -> str:
    """Point `current` at the version before it, once that version has passed the full check (every
    checksum, the schema, loading with the query-time engine and answering a probe question);
    returns its id.

    A damaged previous version is refused with the reason (BuildError) and `current` stays where it
    is: rollback never skips silently to an older version the caller did not expect.
    """
    from bot.core.probe import load_and_probe

    with build_lock(index_dir):
        current = current_version_dir(index_dir)
        earlier = [p for p in list_versions(index_dir) if p.name < current.name]
        if not earlier:
            raise BuildError("There is no earlier index version to roll back to.")
        target = earlier[-1]
        try:
            load_and_probe(target)
        except IndexProblem as err:
            raise BuildError(
                f"Not rolling back: {err.message} {current.name} keeps serving. To roll back further, remove "
                f"{target} first; to start afresh, run `qabot index build --force`."
            ) from err
        switch_current(index_dir, target)
        return target.name
