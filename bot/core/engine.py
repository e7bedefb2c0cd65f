"""The answering engine over one index version, and a thread-safe holder that reloads it atomically."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.answerer import Answerer
from bot.core.encoder import load_encoder
from bot.core.errors import IndexCorruptError, IndexProblem, describe_error
from bot.core.index_store import BUILD_FIX, CURRENT_LINK, current_version_dir, load_version
from bot.core.retriever import HybridRetriever
from bot.core.steering import Steering
from bot.core.types import Answer, Quote, Turn

log = logging.getLogger(__name__)

# How often a running process looks at `current` for a version another process published (one readlink).
DEFAULT_CHECK_INTERVAL_S = 1.0


class QAEngine:
    """Everything needed to answer from one index version, loaded once."""

    def __init__(self, version_dir: Path, *, steering: Steering | None = None):
        """Every failure to load is an IndexProblem (exit code 3 with the fix), whatever raised it.
        `steering`: what admins taught (bot/core/steering.py), given to the answerer."""
        self.index = load_version(version_dir)
        try:
            self.encoders = [load_encoder(data.spec, data.folder) for data in self.index.encoders]
            for enc, data in zip(self.encoders, self.index.encoders, strict=True):
                if enc.dim != data.faiss_index.d:
                    raise ValueError(
                        f"{data.spec.id} makes {enc.dim}-dim vectors, the index holds {data.faiss_index.d}"
                    )
        except MemoryError:
            raise
        except Exception as err:  # tokenizer or ONNX model that does not parse, engine missing, wrong config
            raise IndexCorruptError(
                f"An encoder of the index {self.index.version} cannot be loaded ({describe_error(err)}).", BUILD_FIX
            ) from err
        try:
            self.retriever = HybridRetriever(self.index, self.encoders)
            self.answerer = Answerer(self.retriever, index_version=self.index.version, steering=steering)
        except (IndexProblem, MemoryError):
            raise
        except Exception as err:
            raise IndexCorruptError(
                f"The index {self.index.version} cannot be served ({describe_error(err)}).", BUILD_FIX
            ) from err

    @classmethod
    def from_index_dir(cls, index_dir: Path, *, steering: Steering | None = None) -> QAEngine:
        return cls(current_version_dir(Path(index_dir)), steering=steering)

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.index.manifest

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        return self.answerer.answer(question, context=context)

    def candidates(self, question: str, limit: int = 5) -> list[Quote]:
        """The top passages for `question` as retrieval ranks them (what an admin teaches from)."""
        return self.answerer.candidates(question, limit)

    @property
    def passages(self) -> list[dict]:
        return self.index.passages

    @property
    def question_encoder(self) -> str:
        """Which encoder `embed_questions` uses: its id and weights, so vectors of another model never compare."""
        spec = self.index.encoders[0].spec
        return f"{spec.id}@{spec.weights_sha256[:12]}"

    def embed_questions(self, texts: Sequence[str]) -> tuple[str, np.ndarray]:
        """Unit vectors of questions by the index's first encoder (cosine = dot product), with its name:
        what repeats and the knowledge-gap report compare questions by. A (normalised) question the
        retriever encoded lately is not encoded again."""
        texts = list(texts)
        vectors = np.zeros((len(texts), self.encoders[0].dim), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):  # a question just answered: the retriever's vector, no second encoding
            known = self.retriever.recent_vector(text)
            if known is not None and known.shape == vectors[i].shape:
                vectors[i] = known
            else:
                missing.append(i)
        if missing:
            vectors[missing] = np.asarray(
                self.encoders[0].encode_queries([texts[i] for i in missing]), dtype=np.float32
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return self.question_encoder, vectors / np.maximum(norms, 1e-12)


class EngineHolder:
    """Holds the engine for the current index version. Loading is lazy and happens once; `reload`
    builds the new engine first and then swaps one reference, so questions in flight finish on the
    engine they started with.

    Another process may publish a new version (`qabot index build`, the other bot of the compose file,
    a rebuild that won the lock race): at most once per `check_interval_s`, `get()` reads the `current`
    link (one readlink) and, when it points elsewhere, reloads the same atomic way. A version that
    cannot be loaded is logged once and the loaded one keeps serving until `current` moves again."""

    def __init__(
        self,
        index_dir: Path,
        *,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        steering: Steering | None = None,
    ):
        """`steering` is given to every engine this holder loads (bot/core/steering.py)."""
        self.index_dir = Path(index_dir)
        self.steering = steering
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._engine: QAEngine | None = None
        self._target: str | None = None  # the `current` link's target the engine was loaded from
        self._refused: str | None = None  # a target that failed to load (not retried until the link moves)
        self._next_check = 0.0
        self._trim_due = False
        self._lock = threading.Lock()

    def _link_target(self) -> str | None:
        try:
            return os.readlink(self.index_dir / CURRENT_LINK)
        except OSError:
            return None

    def _load(self) -> QAEngine:
        target = self._link_target()
        engine = QAEngine.from_index_dir(self.index_dir, steering=self.steering)
        # the link may have moved while loading: remember what the engine actually holds
        if target is not None and Path(target).name != engine.index.version_dir.name:
            target = None
        self._target = target
        self._refused = None
        self._next_check = self._clock() + self.check_interval_s
        return engine

    def _swap(self, engine: QAEngine) -> None:
        """Serve `engine` from now on and give the old one's memory back to the operating system."""
        old, self._engine = self._engine, engine
        if old is not None:
            del old
            _release_freed_memory()
            self._trim_due = True  # questions in flight may still hold the old engine: trim again later

    def get(self) -> QAEngine:
        engine = self._engine
        if engine is not None:
            if self._clock() >= self._next_check:
                self._follow_current()
            return self._engine or engine
        with self._lock:
            if self._engine is None:
                self._engine = self._load()
            return self._engine

    def _follow_current(self) -> None:
        """Reload when another process switched `current`; one thread reloads, the others keep answering."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._next_check = self._clock() + self.check_interval_s
            if self._trim_due:
                self._trim_due = False
                _release_freed_memory()
            target = self._link_target()
            if target is None or target == self._target or target == self._refused:
                return
            previous = self._engine.version if self._engine is not None else "nothing"
            try:
                self._swap(self._load())
            except Exception as err:
                self._refused = target
                log.warning(
                    "the index now points to %s, which cannot be loaded (%s); still serving %s",
                    Path(target).name,
                    getattr(err, "message", err),
                    previous,
                )
                return
            log.info(
                "index %s was published by another process; now serving it (was %s)", self._engine.version, previous
            )
        finally:
            self._lock.release()

    def follow_current(self) -> bool:
        """Reload now if `current` points at another version than the loaded one (a new version was
        announced, or a background check); True when the engine changed. Does nothing before the first load."""
        engine = self._engine
        if engine is None:
            return False
        self._next_check = 0.0
        self._follow_current()
        return self._engine is not engine

    def reload(self) -> str:
        with self._lock:
            self._swap(self._load())
            return self._engine.version

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        return self.get().answer(question, context)

    def embed_questions(self, texts: Sequence[str]) -> tuple[str, np.ndarray]:
        return self.get().embed_questions(texts)

    def candidates(self, question: str, limit: int = 5) -> list[Quote]:
        return self.get().candidates(question, limit)

    @property
    def passages(self) -> list[dict]:
        return self.get().passages

    @property
    def manifest(self) -> dict[str, Any]:
        return self.get().manifest

    @property
    def version(self) -> str:
        return self.get().version

    @property
    def loaded(self) -> bool:
        return self._engine is not None


def _release_freed_memory() -> None:
    """Collect the old engine and hand the freed heap back (glibc keeps it otherwise: measured, a reload
    left the process ~55 MiB larger until malloc_trim)."""
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:  # no C library to ask (not glibc): nothing to give back explicitly
        pass
