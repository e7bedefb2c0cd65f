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
import json
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


def _groups(where: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs grouped by their distinct text: distinct text u's inputs are
    destinations[starts[u]:starts[u + 1]], first-seen first."""
    destinations = np.argsort(where, kind="stable")
    return destinations, np.searchsorted(where[destinations], np.arange(count + 1))


def _embed_missing(encoder, ns, texts: Sequence[str], put: Callable[[int, np.ndarray], None], progress) -> None:
    """One pooled vector per text: from the cache where it is intact, else embedded (length-sorted
    chunks) and added to the cache; put(u, vector) for each."""
    missing = _from_cache(ns, texts, lambda u, rows: put(u, rows[0]), expect_rows=lambda u: 1)
    progress(len(texts) - len(missing))
    for rows in _chunks(_by_length(texts, missing), CHUNK_TEXTS):
        for u, vector in zip(rows, encoder.encode_passages([texts[u] for u in rows]), strict=True):
            put(u, vector)
            if ns is not None:
                ns.add(embed_cache.text_key(texts[u]), vector[None, :])
        progress(len(rows))


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
    contexts: Sequence[tuple[int, Sequence[tuple[int, int]]]] | None = None,
) -> EncoderOutput:
    """Every vector `encoder` contributes to a version: passage vectors (returned), sentence vectors
    (written to `sentence_path`) and, when `token_texts` is given, each passage's token vectors
    (written to `token_path`; their offsets are returned). `progress(n)` is told of n texts done.

    `contexts` (for an encoder whose spec says tokens_in_context or sentences_in_context): for each
    passage, where its own text starts in its passage text and its sentences' (begin, end) in that text;
    the passage's one forward pass then gives its token vectors and/or its sentences' vectors too
    (`_in_context`).

    `cache_root` None: no cache (everything embedded).
    """
    spec = encoder.spec
    want_tokens = token_texts is not None and token_path is not None
    if (
        contexts is not None
        and ((spec.tokens_in_context and want_tokens) or spec.sentences_in_context)
        and hasattr(encoder, "encode_in_context")
    ):
        return _in_context(
            encoder,
            passage_texts=passage_texts,
            contexts=contexts,
            sentence_texts=sentence_texts,
            want_tokens=want_tokens,
            sentences_in_context=spec.sentences_in_context,
            sentence_path=sentence_path,
            token_path=token_path,
            cache_root=cache_root,
            build_id=build_id,
            progress=progress,
        )
    dim = spec.dim
    n = len(passage_texts)
    unique, where = _unique([*passage_texts, *sentence_texts])
    destinations, starts = _groups(where, len(unique))
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
            _embed_missing(encoder, ns, unique, put, progress)
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


def _token_counts(encoder, texts: Sequence[str], starts: Sequence[int] | None = None) -> np.ndarray:
    """How many token vectors each text gets: its tokens but the special ones, truncated; with `starts`,
    only those from character starts[i] of texts[i] on (where a passage's own text starts)."""
    tokenizer = encoder.tokenizer  # truncated as the model reads, unpadded
    prefix = encoder.spec.passage_prefix
    counts = np.zeros(len(texts), np.int64)
    for first in range(0, len(texts), 1024):
        batch = tokenizer.encode_batch([prefix + t for t in texts[first : first + 1024]])
        for j, e in enumerate(batch):
            begin = 0 if starts is None else len(prefix) + starts[first + j]
            counts[first + j] = sum(
                1
                for (b, _), special in zip(e.offsets, e.special_tokens_mask, strict=True)
                if not special and b >= begin
            )
    return counts


def _token_vectors(encoder, texts, path, cache_root, build_id, stats):
    unique, where = _unique(texts)
    counts = _token_counts(encoder, unique)
    per_passage = counts[where]
    offsets = np.concatenate([[0], np.cumsum(per_passage)]).astype(np.int64)
    destinations, starts = _groups(where, len(unique))
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


def _in_context_key(text: str, start: int, spans: Sequence[tuple[int, int]]) -> str:
    return f"{text}\x00{start}\x00{json.dumps([list(span) for span in spans])}"


def _in_context(
    encoder,
    *,
    passage_texts: Sequence[str],
    contexts: Sequence[tuple[int, Sequence[tuple[int, int]]]],
    sentence_texts: Sequence[str],
    want_tokens: bool,
    sentences_in_context: bool,
    sentence_path: Path,
    token_path: Path | None,
    cache_root: Path | None,
    build_id: str,
    progress: Callable[[int], None],
) -> EncoderOutput:
    """One forward pass per distinct passage: its vector, its token vectors (`want_tokens`) and, with
    `sentences_in_context`, its sentences' vectors (pooled over their tokens in the passage; a sentence
    the maximum length cut out of the pass, and every sentence without it, is embedded on its own).
    Cached per passage (the text, where its own part starts and the sentence spans pooled): "in-context"
    holds the passage vector then one row per sentence (zeros: embedded on its own), "tokens-in-context"
    the token vectors."""
    spec = encoder.spec
    dim = spec.dim
    n = len(passage_texts)
    if len(contexts) != n or sum(len(spans) for _, spans in contexts) != len(sentence_texts):
        raise ValueError("contexts must give every passage's sentence spans, in sentence_texts' order")
    items = [
        (text, start, tuple(spans) if sentences_in_context else ())
        for text, (start, spans) in zip(passage_texts, contexts, strict=True)
    ]
    unique, where = _unique([_in_context_key(*item) for item in items])
    destinations, starts = _groups(where, len(unique))
    first = destinations[starts[:-1]]  # the first passage of each distinct key
    sentence_start = np.concatenate([[0], np.cumsum([len(spans) for _, spans in contexts])]).astype(np.int64)
    spans_of = [len(items[int(first[u])][2]) for u in range(len(unique))]
    passage_vectors = np.zeros((n, dim), np.float32)
    # sentences to embed on their own
    alone: list[int] = [] if sentences_in_context else list(range(len(sentence_texts)))
    stats: dict[str, embed_cache.CacheStats] = {}

    def put_vectors(u: int, rows: np.ndarray) -> None:
        for d in destinations[starts[u] : starts[u + 1]]:
            passage_vectors[d] = rows[0]
            at = int(sentence_start[d])
            sentences.write(at, rows[1:])
            alone.extend(at + k for k in np.flatnonzero(~rows[1:].any(axis=1)))

    counts = (
        _token_counts(encoder, [items[int(f)][0] for f in first], [items[int(f)][1] for f in first])
        if want_tokens
        else None
    )
    token_offsets = np.concatenate([[0], np.cumsum(counts[where])]).astype(np.int64) if counts is not None else None

    def put_tokens(u: int, rows: np.ndarray) -> None:
        for d in destinations[starts[u] : starts[u + 1]]:
            tokens.write(int(token_offsets[d]), rows)

    with contextlib.ExitStack() as stack:
        sentences = stack.enter_context(NpyWriter(sentence_path, (len(sentence_texts), dim), np.float32))
        tokens = (
            stack.enter_context(NpyWriter(token_path, (int(token_offsets[-1]), dim), np.float16))
            if token_offsets is not None and token_path is not None
            else None
        )
        ns = stack.enter_context(_namespace(cache_root, spec, "in-context", build_id))
        ns_tokens = stack.enter_context(_namespace(cache_root, spec, "tokens-in-context", build_id)) if tokens else None
        missing = set(_from_cache(ns, unique, put_vectors, expect_rows=lambda u: 1 + spans_of[u]))
        missing_tokens = (
            set(_from_cache(ns_tokens, unique, put_tokens, expect_rows=lambda u: int(counts[u])))
            if tokens is not None
            else set()
        )
        progress(sum(1 + spans_of[u] for u in range(len(unique)) if u not in missing))
        for rows in _chunks(_by_length(unique, sorted(missing | missing_tokens)), TOKEN_CHUNK_TEXTS):
            results = encoder.encode_in_context([items[int(first[u])] for u in rows])
            for u, r in zip(rows, results, strict=True):
                key = embed_cache.text_key(unique[u])
                if u in missing:
                    vectors = np.zeros((1 + spans_of[u], dim), np.float32)
                    vectors[0] = r.vector
                    for k, v in enumerate(r.spans):
                        if v is not None:
                            vectors[1 + k] = v
                    put_vectors(u, vectors)
                    if ns is not None:
                        ns.add(key, vectors)
                if u in missing_tokens:
                    t16 = r.tokens.astype(np.float16)
                    if len(t16) != counts[u]:
                        raise RuntimeError(f"the encoder gave {len(t16)} token vectors for {counts[u]} tokens")
                    put_tokens(u, t16)
                    if ns_tokens is not None:
                        ns_tokens.add(key, t16)
            progress(sum(1 + spans_of[u] for u in rows if u in missing))
        if ns is not None:
            stats["in-context"] = ns.stats
        if ns_tokens is not None:
            stats["tokens-in-context"] = ns_tokens.stats
        if alone:  # sentences cut out of their passage's pass: on their own, like a build without contexts
            texts, at = _unique([sentence_texts[i] for i in alone])
            by_text, text_starts = _groups(at, len(texts))

            def put_alone(u: int, vector: np.ndarray) -> None:
                for j in by_text[text_starts[u] : text_starts[u + 1]]:
                    sentences.write(alone[int(j)], vector[None, :])

            with _namespace(cache_root, spec, "vector", build_id) as ns_alone:
                _embed_missing(encoder, ns_alone, texts, put_alone, progress)
                if ns_alone is not None:
                    stats["vector"] = ns_alone.stats
        sentence_file = sentences.close()
        token_files = (tokens.close(), token_offsets) if tokens is not None else None
    return EncoderOutput(passage_vectors, sentence_file, token_files, stats)
