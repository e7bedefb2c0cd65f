"""One encoder's vectors for a build: reused from the embedding cache where the text was seen before,
embedded (in length-sorted chunks) where not, and written to the new version's files as they come.

Memory stays bounded by the passage vectors (N x dim float32, kept for the FAISS index) plus one
chunk: sentence vectors and token vectors go straight to their .npy files in the staging folder, with
positioned writes (no memory map, so the written pages do not count as this process's memory), and
the cache's segments are memory-mapped and read entry by entry.

Identical texts are embedded once (a one-sentence passage without a heading is also its sentence).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.encoder import Encoder
from index_builder import embed_cache

CHUNK_TEXTS = 512  # texts embedded per call (the encoder batches within it); also the progress step
TOKEN_CHUNK_TEXTS = 64


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """An OSError from writing `path` names it (a full disk's message says which file)."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno:
            raise OSError(err.errno, os.strerror(err.errno), str(path)) from err
        raise


class NpyWriter:
    """A .npy file of known shape, filled by positioned writes of row ranges in any order."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype: Any):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.fd = -1
        with _naming(path):
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
            self.offset = mm.offset
            del mm
            self.fd = os.open(path, os.O_RDWR)
        self.row_bytes = shape[1] * self.dtype.itemsize

    def write(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or start + len(rows) > self.shape[0]:
            raise ValueError(
                f"rows {start}..{start + len(rows)} of shape {rows.shape} do not fit {self.path.name} {self.shape}"
            )
        data = rows.tobytes()
        position = self.offset + start * self.row_bytes
        with _naming(self.path):
            while data:
                written = os.pwrite(self.fd, data, position)
                data, position = data[written:], position + written

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def close(self) -> dict[str, Any]:
        """Flush to disk; returns the manifest entry (sha256, bytes), hashed in one streaming pass."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return {"sha256": digest.hexdigest(), "bytes": self.path.stat().st_size}


@dataclass
class EncoderOutput:
    passage_vectors: np.ndarray  # (N, dim) float32
    sentence_file: dict[str, Any]  # manifest entry of the sentence vectors' .npy
    token_files: tuple[dict[str, Any], np.ndarray] | None  # token vectors' manifest entry, and their offsets
    stats: dict[str, embed_cache.CacheStats] = field(default_factory=dict)


def _unique(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts (first-seen order) and, for each input, its distinct text's index."""
    index: dict[str, int] = {}
    where = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index), where


def _chunks(rows: list[int], size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _by_length(texts: Sequence[str], rows: Sequence[int]) -> list[int]:
    return sorted(rows, key=lambda u: len(texts[u]))


def embed_for_version(
    encoder: Encoder,
    *,
    passage_texts: Sequence[str],
    sentence_texts: Sequence[str],
    token_texts: Sequence[str] | None,
    sentence_path: Path,
    token_path: Path | None,
    cache_root: Path | None,
    build_id: str,
    progress: Callable[[int], None] = lambda n: None,
) -> EncoderOutput:
    """Every vector `encoder` contributes to a version: passage vectors (returned), sentence vectors
    (written to `sentence_path`) and, when `token_texts` is given, each passage's token vectors
    (written to `token_path`; their offsets are returned). `progress(n)` is told of n texts done.

    `cache_root` None: no cache (everything embedded).
    """
    spec = encoder.spec
    dim = spec.dim
    n = len(passage_texts)
    unique, where = _unique([*passage_texts, *sentence_texts])
    destinations = np.argsort(where, kind="stable")  # all inputs grouped by their distinct text
    starts = np.searchsorted(where[destinations], np.arange(len(unique) + 1))
    passage_vectors = np.zeros((n, dim), np.float32)
    stats: dict[str, embed_cache.CacheStats] = {}

    def put(u: int, vector: np.ndarray) -> None:
        for d in destinations[starts[u] : starts[u + 1]]:
            if d < n:
                passage_vectors[d] = vector
            else:
                sentences.write(int(d) - n, vector[None, :])

    with NpyWriter(sentence_path, (len(sentence_texts), dim), np.float32) as sentences:
        with _namespace(cache_root, spec, "vector", build_id) as ns:
            missing = _from_cache(ns, unique, lambda u, rows: put(u, rows[0]), expect_rows=lambda u: 1)
            progress(len(unique) - len(missing))
            for rows in _chunks(_by_length(unique, missing), CHUNK_TEXTS):
                vectors = encoder.encode_passages([unique[u] for u in rows])
                for u, vector in zip(rows, vectors, strict=True):
                    put(u, vector)
                    if ns is not None:
                        ns.add(embed_cache.text_key(unique[u]), vector[None, :])
                progress(len(rows))
            if ns is not None:
                stats["vector"] = ns.stats
        sentence_file = sentences.close()

    token_files = None
    if token_texts is not None and token_path is not None:
        token_files = _token_vectors(encoder, token_texts, token_path, cache_root, build_id, stats)
    return EncoderOutput(passage_vectors, sentence_file, token_files, stats)


class _NoCache:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _namespace(cache_root: Path | None, spec, kind: str, build_id: str):
    return _NoCache() if cache_root is None else embed_cache.Namespace(cache_root, spec, kind, build_id)


def _from_cache(
    ns: embed_cache.Namespace | None,
    texts: Sequence[str],
    use: Callable[[int, np.ndarray], None],
    *,
    expect_rows: Callable[[int], int],
) -> list[int]:
    """Hand every cached, intact entry to `use`; returns the indexes of the texts still to embed."""
    if ns is None:
        return list(range(len(texts)))
    keys = [embed_cache.text_key(t) for t in texts]
    found = ns.find(keys)
    keep = ns.plan(found)
    missing = []
    for u, hit in enumerate(found):
        rows = ns.get(keys[u], hit, keep=keep, rows=expect_rows(u)) if hit is not None else None
        if rows is None:
            missing.append(u)
        else:
            use(u, rows)
    return missing


def _token_counts(encoder, texts: Sequence[str]) -> np.ndarray:
    """How many token vectors each text gets (its tokens without the two special ones, truncated)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(encoder.tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(encoder.spec.max_seq_length)
    prefix = encoder.spec.passage_prefix
    counts = np.zeros(len(texts), np.int64)
    for start in range(0, len(texts), 1024):
        batch = tokenizer.encode_batch([prefix + t for t in texts[start : start + 1024]])
        counts[start : start + len(batch)] = [max(0, len(e.ids) - 2) for e in batch]
    return counts


def _token_vectors(encoder, texts, path, cache_root, build_id, stats):
    unique, where = _unique(texts)
    counts = _token_counts(encoder, unique)
    per_passage = counts[where]
    offsets = np.concatenate([[0], np.cumsum(per_passage)]).astype(np.int64)
    destinations = np.argsort(where, kind="stable")
    starts = np.searchsorted(where[destinations], np.arange(len(unique) + 1))
    vectors_path = path

    def put(u: int, rows: np.ndarray) -> None:
        for d in destinations[starts[u] : starts[u + 1]]:
            out.write(int(offsets[d]), rows)

    with NpyWriter(vectors_path, (int(offsets[-1]), encoder.spec.dim), np.float16) as out:
        with _namespace(cache_root, encoder.spec, "tokens", build_id) as ns:
            missing = _from_cache(ns, unique, put, expect_rows=lambda u: int(counts[u]))
            for rows in _chunks(_by_length(unique, missing), TOKEN_CHUNK_TEXTS):
                tokens = encoder.passage_token_vectors([unique[u] for u in rows])
                for u, t in zip(rows, tokens, strict=True):
                    t16 = t.astype(np.float16)
                    if len(t16) != counts[u]:
                        raise RuntimeError(
                            f"the encoder gave {len(t16)} token vectors for a text of {counts[u]} tokens"
                        )
                    put(u, t16)
                    if ns is not None:
                        ns.add(embed_cache.text_key(unique[u]), t16)
            if ns is not None:
                stats["tokens"] = ns.stats
        vectors_file = out.close()
    return vectors_file, offsets
