"""The answering engine over one index version, and a thread-safe holder that reloads it atomically."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bot.core.answerer import Answerer
from bot.core.encoder import OnnxEncoder
from bot.core.errors import IndexCorruptError, IndexProblem, describe_error
from bot.core.index_store import BUILD_FIX, current_version_dir, load_version
from bot.core.retriever import HybridRetriever
from bot.core.types import Answer


class QAEngine:
    """Everything needed to answer from one index version, loaded once."""

    def __init__(self, version_dir: Path):
        """Every failure to load is an IndexProblem (exit code 3 with the fix), whatever raised it."""
        self.index = load_version(version_dir)
        try:
            self.encoder = OnnxEncoder(self.index.encoder_dir)
            if self.encoder.dim != self.index.manifest["embedding_dim"]:
                raise ValueError(f"it makes {self.encoder.dim}-dim vectors, the index holds {self.index.faiss_index.d}")
        except MemoryError:
            raise
        except Exception as err:  # tokenizer or ONNX model that does not parse, wrong config
            raise IndexCorruptError(
                f"The encoder of the index {self.index.version} cannot be loaded ({describe_error(err)}).", BUILD_FIX
            ) from err
        try:
            self.retriever = HybridRetriever(self.index, self.encoder)
            self.answerer = Answerer(self.retriever, index_version=self.index.version)
        except (IndexProblem, MemoryError):
            raise
        except Exception as err:
            raise IndexCorruptError(
                f"The index {self.index.version} cannot be served ({describe_error(err)}).", BUILD_FIX
            ) from err

    @classmethod
    def from_index_dir(cls, index_dir: Path) -> QAEngine:
        return cls(current_version_dir(Path(index_dir)))

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.index.manifest

    def answer(self, question: str) -> Answer:
        return self.answerer.answer(question)


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

    def answer(self, question: str) -> Answer:
        return self.get().answer(question)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.get().manifest

    @property
    def version(self) -> str:
        return self.get().version

    @property
    def loaded(self) -> bool:
        return self._engine is not None
