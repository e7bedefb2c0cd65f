"""The answering engine over one index version, and a thread-safe holder that reloads it atomically."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.core.answerer import Answerer
from bot.core.encoder import load_encoder
from bot.core.errors import IndexCorruptError
from bot.core.index_store import BUILD_FIX, current_version_dir, load_version
from bot.core.retriever import HybridRetriever
from bot.core.types import Answer, Turn


class QAEngine:
    """Everything needed to answer from one index version, loaded once."""

    def __init__(self, version_dir: Path):
        self.index = load_version(version_dir)
        try:
            self.encoders = [load_encoder(data.spec, data.folder) for data in self.index.encoders]
        except Exception as err:  # an unloadable model is a damaged (or foreign) index, never a traceback
            raise IndexCorruptError(f"The index {self.index.version} has an encoder that cannot be loaded ({err}).", BUILD_FIX) from err
        self.retriever = HybridRetriever(self.index, self.encoders)
        self.answerer = Answerer(self.retriever, index_version=self.index.version)

    @classmethod
    def from_index_dir(cls, index_dir: Path) -> QAEngine:
        return cls(current_version_dir(Path(index_dir)))

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.index.manifest

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        return self.answerer.answer(question, context=context)


class EngineHolder:
    """Holds the engine for the current index version. Loading is lazy and happens once; `reload`
    builds the new engine first and then swaps one reference, so questions in flight finish on the
    engine they started with."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self._engine: QAEngine | None = None
        self._lock = threading.Lock()

    def get(self) -> QAEngine:
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                self._engine = QAEngine.from_index_dir(self.index_dir)
            return self._engine

    def reload(self) -> str:
        engine = QAEngine.from_index_dir(self.index_dir)
        with self._lock:
            self._engine = engine
        return engine.version

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        return self.get().answer(question, context)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.get().manifest

    @property
    def version(self) -> str:
        return self.get().version

    @property
    def loaded(self) -> bool:
        return self._engine is not None
