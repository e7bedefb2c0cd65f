"""Fixtures for the builder tests: the real model's vectors, remembered, so rebuilding the same knowledge is cheap."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


class CachingEmbedder:
    """Wraps the real SentenceTransformerEmbedder and remembers each text's vector.

    Every vector still comes from the real model (the session index was built with it); a test that
    rebuilds the article only pays for texts the session has not embedded yet. Building still runs the
    ONNX parity check against these vectors.
    """

    def __init__(self, inner):
        self.inner = inner
        self.vectors: dict[str, np.ndarray] = {}
        self.encoded_texts = 0  # texts that had to go through the model

    @property
    def model(self):
        return self.inner.model

    @property
    def model_dir(self) -> Path:
        return self.inner.model_dir

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    def encode(self, texts: list[str], *, show_progress: bool = False, batch_size: int = 32) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.encoded_texts += len(missing)
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self.vectors[text] = vector
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def export_onnx(self, out_dir: Path) -> None:
        self.inner.export_onnx(out_dir)

    def remember_index(self, version_dir: Path) -> None:
        """Take the passage and sentence vectors of a built index version."""
        import faiss

        from index_builder.build import embedding_text

        passages = json.loads((version_dir / "passages.json").read_text(encoding="utf-8"))["passages"]
        index = faiss.read_index(str(version_dir / "vectors.faiss"))
        sentence_vectors = np.load(version_dir / "sentence_vectors.npy", allow_pickle=False)
        row = 0
        for n, p in enumerate(passages):
            self.vectors[embedding_text(SimpleNamespace(section_path=p["section_path"], text=p["text"]))] = (
                index.reconstruct(n)
            )
            for start, end in p["sentences"]:
                self.vectors[p["text"][start:end]] = sentence_vectors[row]
                row += 1


@pytest.fixture(scope="session")
def cached_embedder(st_embedder, built_index_dir) -> CachingEmbedder:
    embedder = CachingEmbedder(st_embedder)
    embedder.remember_index((built_index_dir / "current").resolve())
    return embedder
