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

from bot.conversation.build_process import ChildProcessBuilder
from bot.core.errors import BuildError, BuildInProgressError
from bot.state.base import RebuildLock
from bot.state.local import LocalRebuildLock

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
    warnings: tuple[str, ...] = ()  # what the build reported but did not stop for (e.g. skipped files)


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
        lock: RebuildLock | None = None,
        announce: Callable[[str], None] | None = None,
        observe: Callable[[str, str, float], None] | None = None,
    ):
        self.engine = engine
        self.knowledge_dir = Path(knowledge_dir)
        self.index_dir = Path(index_dir)
        # by default a child process builds: torch and the embedding model never load into the bot
        self._builder = builder or ChildProcessBuilder()
        self._rollback = rollback or _default_rollback
        self._clock = clock
        self._lock = threading.Lock()
        # one rebuild across replicas (bot/state: a Redis lock), a new version announced to all of them,
        # and each operation's outcome and duration reported (metrics)
        self._shared_lock = lock or LocalRebuildLock()
        self._announce = announce
        self._observe = observe

    @property
    def running(self) -> bool:
        return self._lock.locked()

    @property
    def builder_pid(self) -> int | None:
        """The pid of the child process building right now, if any."""
        return getattr(self._builder, "pid", None)

    def _current_version(self) -> str:
        try:
            return str(self.engine.version)
        except Exception:  # no index loaded yet: a rebuild is exactly what fixes that
            return ""

    def rebuild(self, *, force: bool = False) -> RebuildOutcome:
        return self._shared("reindex", lambda: self._rebuild(force=force))

    def rollback(self) -> RebuildOutcome:
        """Serve the previous index version again."""
        return self._shared("rollback", self._rollback_now)

    def _shared(self, operation: str, run: Callable[[], RebuildOutcome]) -> RebuildOutcome:
        """Run a rebuild or rollback under the lock shared by every replica, announce the version it
        switched to, and report how it went."""
        started = time.perf_counter()
        if self._lock.locked():
            outcome = RebuildOutcome(RebuildStatus.BUSY, version=self._current_version())
        else:
            with self._shared_lock.hold() as mine:
                if mine:
                    outcome = run()
                else:
                    log.info("%s refused: another replica is rebuilding or rolling back", operation)
                    outcome = RebuildOutcome(RebuildStatus.BUSY, version=self._current_version())
            if outcome.status in (RebuildStatus.REBUILT, RebuildStatus.ROLLED_BACK) and self._announce is not None:
                try:
                    self._announce(outcome.version)
                except Exception:  # the other replicas still find it at their next look at `current`
                    log.exception("could not announce index version %s", outcome.version)
        if self._observe is not None:
            try:
                self._observe(operation, outcome.status.value, time.perf_counter() - started)
            except Exception:
                log.exception("could not record the %s in the metrics", operation)
        return outcome

    def _rebuild(self, *, force: bool = False) -> RebuildOutcome:
        if not self._lock.acquire(blocking=False):
            return RebuildOutcome(RebuildStatus.BUSY, version=self._current_version())
        started = self._clock()
        previous = self._current_version()
        try:
            try:
                result = self._builder(self.knowledge_dir, self.index_dir, force=force)
            except BuildInProgressError:  # another process (e.g. `qabot index build`) holds the lock
                return RebuildOutcome(RebuildStatus.BUSY, version=previous)
            except BuildError as err:  # said in a sentence already: no traceback in the log
                log.warning("index rebuild failed; still serving %s: %s", previous or "nothing", err)
                return RebuildOutcome(
                    RebuildStatus.FAILED, version=previous, previous_version=previous, error=_short(err)
                )
            except Exception as err:
                log.exception("index rebuild failed; still serving %s", previous or "nothing")
                return RebuildOutcome(
                    RebuildStatus.FAILED, version=previous, previous_version=previous, error=_short(err)
                )
            built = str(result.version_id)
            warnings = tuple(str(w) for w in getattr(result, "warnings", ()) or ())
            if getattr(result, "skipped", False) and built == previous:
                return RebuildOutcome(
                    RebuildStatus.UNCHANGED,
                    version=previous,
                    previous_version=previous,
                    passage_count=result.passage_count,
                    documents=result.documents,
                    took_s=self._clock() - started,
                    warnings=warnings,
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
                    warnings=warnings,
                )
            log.info("index rebuilt: %s -> %s (%s passages)", previous, version, result.passage_count)
            return RebuildOutcome(
                RebuildStatus.REBUILT,
                version=version,
                previous_version=previous,
                passage_count=result.passage_count,
                documents=result.documents,
                took_s=self._clock() - started,
                warnings=warnings,
            )
        finally:
            self._lock.release()

    def _rollback_now(self) -> RebuildOutcome:
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
