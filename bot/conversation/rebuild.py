"""Rebuild or roll back the index from chat, one operation at a time, while questions keep flowing.

The builder writes a new version next to the serving one and switches atomically; only then does
the engine reload. If anything fails, the engine keeps serving the version it had.
Adapters call this from a worker thread (it blocks for the whole build).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from bot.core.errors import BuildInProgressError

log = logging.getLogger(__name__)


class RebuildStatus(str, Enum):
    REBUILT = "rebuilt"  # a new version is built and serving
    UNCHANGED = "unchanged"  # the knowledge did not change: nothing to do
    BUSY = "busy"  # another rebuild/rollback is running
    FAILED = "failed"  # the build failed; the old version keeps serving
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class RebuildOutcome:
    status: RebuildStatus
    version: str = ""  # the version serving afterwards
    previous_version: str = ""
    passage_count: int = 0
    documents: int = 0
    took_s: float = 0.0
    error: str = ""  # for FAILED: what went wrong, fit to show a person
    warnings: tuple[str, ...] = ()  # the build's warnings (files refused, text skipped), for the person


def _default_builder(knowledge_dir: Path, index_dir: Path, *, force: bool = False) -> Any:
    from index_builder.build import build_index  # imported lazily: it pulls in the embedding stack

    return build_index(knowledge_dir, index_dir, force=force)


def _default_rollback(index_dir: Path) -> str:
    from index_builder.store import rollback

    return rollback(index_dir)


class RebuildCoordinator:
    def __init__(
        self,
        engine: Any,
        knowledge_dir: str | Path,
        index_dir: str | Path,
        builder: Callable[..., Any] | None = None,
        *,
        rollback: Callable[[Path], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.engine = engine
        self.knowledge_dir = Path(knowledge_dir)
        self.index_dir = Path(index_dir)
        self._builder = builder or _default_builder
        self._rollback = rollback or _default_rollback
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def _current_version(self) -> str:
        try:
            return str(self.engine.version)
        except Exception:  # no index loaded yet: a rebuild is exactly what fixes that
            return ""

    def rebuild(self, *, force: bool = False) -> RebuildOutcome:
        if not self._lock.acquire(blocking=False):
            return RebuildOutcome(RebuildStatus.BUSY, version=self._current_version())
        started = self._clock()
        previous = self._current_version()
        try:
            try:
                result = self._builder(self.knowledge_dir, self.index_dir, force=force)
            except BuildInProgressError:  # another process (e.g. `qabot index build`) holds the lock
                return RebuildOutcome(RebuildStatus.BUSY, version=previous)
            except Exception as err:
                log.exception("index rebuild failed; still serving %s", previous or "nothing")
                return RebuildOutcome(
                    RebuildStatus.FAILED, version=previous, previous_version=previous, error=_short(err)
                )
            built = str(result.version_id)
            if getattr(result, "skipped", False) and built == previous:
                return RebuildOutcome(
                    RebuildStatus.UNCHANGED,
                    version=previous,
                    previous_version=previous,
                    passage_count=result.passage_count,
                    documents=result.documents,
                    took_s=self._clock() - started,
                    warnings=tuple(getattr(result, "warnings", ())),
                )
            try:
                version = str(self.engine.reload())
            except Exception as err:
                log.exception("built %s but could not load it; still serving %s", built, previous)
                return RebuildOutcome(
                    RebuildStatus.FAILED,
                    version=previous,
                    previous_version=previous,
                    error=f"built version {built} but could not load it: {_short(err)}",
                )
            log.info("index rebuilt: %s -> %s (%s passages)", previous, version, result.passage_count)
            return RebuildOutcome(
                RebuildStatus.REBUILT,
                version=version,
                previous_version=previous,
                passage_count=result.passage_count,
                documents=result.documents,
                took_s=self._clock() - started,
                warnings=tuple(getattr(result, "warnings", ())),
            )
        finally:
            self._lock.release()

    def rollback(self) -> RebuildOutcome:
        """Serve the previous index version again."""
        if not self._lock.acquire(blocking=False):
            return RebuildOutcome(RebuildStatus.BUSY, version=self._current_version())
        started = self._clock()
        previous = self._current_version()
        try:
            try:
                self._rollback(self.index_dir)
                version = str(self.engine.reload())
            except BuildInProgressError:
                return RebuildOutcome(RebuildStatus.BUSY, version=previous)
            except Exception as err:
                log.warning("rollback failed; still serving %s: %s", previous, err)
                return RebuildOutcome(
                    RebuildStatus.FAILED, version=previous, previous_version=previous, error=_short(err)
                )
            log.info("index rolled back: %s -> %s", previous, version)
            passages = 0
            try:
                passages = int(self.engine.manifest.get("passage_count", 0))
            except Exception:
                pass
            return RebuildOutcome(
                RebuildStatus.ROLLED_BACK,
                version=version,
                previous_version=previous,
                passage_count=passages,
                took_s=self._clock() - started,
            )
        finally:
            self._lock.release()


def _short(err: BaseException, limit: int = 300) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
