"""The embedding cache: vectors of texts already embedded, reused by the next build.

A rebuild after one document changed embeds only that document's texts; every other vector comes
from here. An entry is keyed by the exact text (its sha256) inside a *namespace* that names
everything else the vector depends on: the encoder (id, model, weights sha256, runtime, pooling,
normalisation, maximum length, passage prefix), the kind of vector ("vector": one pooled vector per
text, passages and sentences alike; "tokens": a passage's token vectors for late interaction) and the
cache format. A different model, weights file or prefix is a different namespace, never a wrong hit.

    INDEX_DIR/.cache/embeddings/<encoder>-<kind>-<namespace hash>/
      namespace.json                what the namespace hash was computed from
      seg-<build id>/               one segment per build that embedded something (or compacted)
        keys.npy      (n, 32) uint8    sha256 of each entry's text
        offsets.npy   (n + 1,) int64   entry i is data[offsets[i]:offsets[i+1]] (one row for "vector")
        data.bin      (rows, dim)      raw float32 vectors or float16 token vectors (what the index stores),
                                       written as they come (a build never holds them all in memory)
        sums.npy      (n, 16) uint8    blake2b of each entry's key, row count and bytes
        users.json    the index versions that read from this segment (the build lock serialises writers)

A segment is written into a temporary folder and renamed into place complete. A build writes its new
entries in segments of at most SEGMENT_BYTES as it goes, so a build that fails half-way still
leaves what it embedded for the next one. Reading checks each entry against its checksum before it
is used: a damaged entry (or a segment whose files no longer parse) is never served; its text is
embedded again and the build logs how many.

Bounded: a build records itself in `users.json` of every segment it read from or wrote; after it
publishes, segments that no kept index version used are deleted (they go with the old versions), and
so are leftovers of interrupted writes. A build that would read a segment of which it needs less than
half, or more than MAX_SEGMENTS segments (then the smaller half), copies the entries it needs into its
own segment instead,
so the cache holds at most about twice the vectors of the versions kept (and of a failed build's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.encoder import EncoderSpec

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
KINDS = ("vector", "tokens", "in-context", "tokens-in-context")
SEGMENT_BYTES = 256 << 20  # data per segment a build writes before starting the next (a checkpoint)
MAX_SEGMENTS = 8  # segments one build reads from; beyond it the smaller ones are copied into its own
MIN_LIVE_FRACTION = 0.5  # a segment of which a build needs less is copied from, not kept
SEGMENT_PREFIX = "seg-"
TMP_PREFIX = ".tmp-"
USERS = "users.json"
DATA = "data.bin"
DTYPES = {"vector": np.float32, "tokens": np.float16, "in-context": np.float32, "tokens-in-context": np.float16}


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _entry_sum(key: bytes, data: np.ndarray) -> bytes:
    digest = hashlib.blake2b(key, digest_size=16)
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(np.ascontiguousarray(data).tobytes())
    return digest.digest()


def namespace(spec: EncoderSpec, kind: str) -> tuple[str, dict[str, Any]]:
    """The folder name of (encoder, kind) and what it was derived from."""
    if kind not in KINDS:
        raise ValueError(f"unknown embedding kind {kind!r}")
    described = {
        "format": CACHE_FORMAT,
        "kind": kind,
        "encoder": spec.id,
        "model_name": spec.model_name,
        "weights_sha256": spec.weights_sha256,
        "runtime": spec.runtime,
        "dim": spec.dim,
        "max_seq_length": spec.max_seq_length,
        "pooling": spec.pooling,
        "normalize": spec.normalize,
        "passage_prefix": spec.passage_prefix,
        "pad_token_id": spec.pad_token_id,
        "dtype": np.dtype(DTYPES[kind]).name,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return f"{spec.id}-{kind}-{digest}", described


@dataclass
class _Segment:
    path: Path
    keys: np.ndarray  # (n, 32) uint8
    offsets: np.ndarray
    sums: np.ndarray
    data: np.ndarray  # memory-mapped
    used: set[int] = field(default_factory=set)

    @classmethod
    def open(cls, path: Path, dim: int, dtype: np.dtype) -> _Segment | None:
        try:
            keys = np.load(path / "keys.npy", allow_pickle=False)
            offsets = np.load(path / "offsets.npy", allow_pickle=False)
            sums = np.load(path / "sums.npy", allow_pickle=False)
            size = (path / DATA).stat().st_size
            row_bytes = dim * dtype.itemsize
            if size % row_bytes:
                raise ValueError(f"{DATA} is {size} bytes, not a whole number of rows")
            rows = size // row_bytes
            data = (
                np.memmap(path / DATA, dtype=dtype, mode="r", shape=(rows, dim)) if rows else np.zeros((0, dim), dtype)
            )
            n = len(keys)
            if (
                keys.shape != (n, 32)
                or keys.dtype != np.uint8
                or sums.shape != (n, 16)
                or sums.dtype != np.uint8
                or offsets.shape != (n + 1,)
                or offsets.dtype != np.int64
                or (n and (offsets[0] != 0 or offsets[-1] != rows))
            ):
                raise ValueError("shapes or types do not match")
        except (OSError, ValueError, EOFError, TypeError, OverflowError) as err:
            log.warning("embedding cache: segment %s cannot be read (%s); its texts are embedded again", path.name, err)
            return None
        return cls(path, keys, offsets, sums, data)

    def entry(self, i: int) -> np.ndarray | None:
        """Entry i's rows, or None when they do not match their checksum (or point outside the data)."""
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if not 0 <= start <= end <= len(self.data):
            return None
        try:
            rows = np.array(self.data[start:end])
        except OSError:  # the data file shrank under the mapping, or cannot be read
            return None
        if _entry_sum(self.keys[i].tobytes(), rows) != self.sums[i].tobytes():
            return None
        return rows


class SegmentWriter:
    """Appends entries to a segment on disk (the rows go straight to its data file) and publishes it
    complete, by one rename, every SEGMENT_BYTES and at the end."""

    def __init__(self, folder: Path, build_id: str, dim: int, dtype: np.dtype, *, segment_bytes: int = SEGMENT_BYTES):
        self.folder = folder
        self.build_id = build_id
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.segment_bytes = segment_bytes
        self.written: list[str] = []
        self._tmp: Path | None = None
        self._fh: Any = None

    def _start(self) -> None:
        name = f"{SEGMENT_PREFIX}{self.build_id}-{len(self.written):04d}"
        self._name = name
        self._tmp = self.folder / f"{TMP_PREFIX}{name}"
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True)
        self._fh = open(self._tmp / DATA, "wb")  # noqa: SIM115 - closed in flush()
        self._keys: list[bytes] = []
        self._sums: list[bytes] = []
        self._offsets: list[int] = [0]

    def add(self, key: bytes, rows: np.ndarray) -> None:
        if self._tmp is None:
            self._start()
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.dim)
        self._fh.write(rows.tobytes())
        self._keys.append(key)
        self._sums.append(_entry_sum(key, rows))
        self._offsets.append(self._offsets[-1] + len(rows))
        if self._offsets[-1] * self.dim * self.dtype.itemsize >= self.segment_bytes:
            self.flush()

    def flush(self) -> None:
        """Publish the segment being written (if any)."""
        if self._tmp is None:
            return
        tmp, self._tmp = self._tmp, None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        arrays = {
            "keys": np.frombuffer(b"".join(self._keys), dtype=np.uint8).reshape(-1, 32),
            "offsets": np.asarray(self._offsets, dtype=np.int64),
            "sums": np.frombuffer(b"".join(self._sums), dtype=np.uint8).reshape(-1, 16),
        }
        for stem, array in arrays.items():
            with open(tmp / f"{stem}.npy", "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
        _write_users(tmp, [self.build_id])
        os.replace(tmp, self.folder / self._name)
        self.written.append(self._name)

    def abandon(self) -> None:
        if self._tmp is not None:
            self._fh.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _write_users(segment: Path, users: Iterable[str]) -> None:
    tmp = segment / f"{USERS}.tmp"
    tmp.write_text(json.dumps(sorted(set(users))), encoding="utf-8")
    os.replace(tmp, segment / USERS)


def _read_users(segment: Path) -> set[str]:
    try:
        users = json.loads((segment / USERS).read_text(encoding="utf-8"))
        return {u for u in users if isinstance(u, str)}
    except (OSError, ValueError, TypeError):
        return set()


@dataclass
class CacheStats:
    reused: int = 0
    embedded: int = 0
    damaged: int = 0
    copied: int = 0


class Namespace:
    """The cache of one (encoder, kind) for one build: look texts up, add what was embedded.

    Use as a context manager: leaving it writes the last segment and records which segments the
    build used (also when the build fails, so a retry finds what was embedded).
    """

    def __init__(self, root: Path, spec: EncoderSpec, kind: str, build_id: str, *, segment_bytes: int = SEGMENT_BYTES):
        name, described = namespace(spec, kind)
        self.folder = root / name
        self.build_id = build_id
        self.dim = spec.dim
        self.dtype = np.dtype(DTYPES[kind])
        self.stats = CacheStats()
        self.writable = True
        self.writer = SegmentWriter(self.folder, build_id, self.dim, self.dtype, segment_bytes=segment_bytes)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            record = self.folder / "namespace.json"
            if not record.is_file():
                tmp = self.folder / "namespace.json.tmp"
                tmp.write_text(json.dumps(described, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, record)
            paths = sorted(self.folder.glob(f"{SEGMENT_PREFIX}*"))
        except OSError as err:
            self._unwritable(err)
            paths = []
        self.segments = [
            seg for path in paths if path.is_dir() and (seg := _Segment.open(path, self.dim, self.dtype)) is not None
        ]
        # every key of every segment, sorted, to find many texts at once
        if self.segments:
            all_keys = np.concatenate([s.keys for s in self.segments]).view("S32").ravel()
            self._owner = np.concatenate([np.full(len(s.keys), n, np.int32) for n, s in enumerate(self.segments)])
            self._row = np.concatenate([np.arange(len(s.keys), dtype=np.int64) for s in self.segments])
            self._order = np.argsort(all_keys, kind="stable")
            self._sorted = all_keys[self._order]
        else:
            self._sorted = np.zeros(0, "S32")

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def find(self, keys: list[bytes]) -> list[tuple[int, int] | None]:
        """Where each key is cached: (segment, entry), or None."""
        if not len(self._sorted) or not keys:
            return [None] * len(keys)
        wanted = np.frombuffer(b"".join(keys), dtype="S32")
        # a text cached twice (copied out of an old segment) is read from the newest segment: the
        # segments are in build order and the sort is stable, so that is the last of the equal keys
        at = np.searchsorted(self._sorted, wanted, side="right") - 1
        at_clipped = np.maximum(at, 0)
        hit = self._sorted[at_clipped] == wanted
        out: list[tuple[int, int] | None] = []
        for h, pos in zip(hit, at_clipped, strict=True):
            if h:
                j = self._order[pos]
                out.append((int(self._owner[j]), int(self._row[j])))
            else:
                out.append(None)
        return out

    def plan(self, found: list[tuple[int, int] | None]) -> set[int]:
        """The segments this build keeps reading from; hits elsewhere are copied into its own segment.

        A segment stays when the build needs at least MIN_LIVE_FRACTION of it; the others are copied
        from (and left to be cleaned with the old versions). When more than MAX_SEGMENTS would stay,
        the largest half of them stays and the rest is copied into this build's segment, so the
        next builds do not copy again until the count has grown back.
        """
        need: dict[int, int] = {}
        for hit in found:
            if hit is not None:
                need[hit[0]] = need.get(hit[0], 0) + 1
        dense = [s for s, n in need.items() if n >= MIN_LIVE_FRACTION * len(self.segments[s].keys)]
        if len(dense) > MAX_SEGMENTS:
            dense.sort(key=lambda s: need[s], reverse=True)
            dense = dense[: MAX_SEGMENTS // 2]
        return set(dense)

    def get(self, key: bytes, hit: tuple[int, int], *, keep: set[int], rows: int | None = None) -> np.ndarray | None:
        """The cached rows of a text, checked (and, given `rows`, of that many rows); None when the entry
        is damaged (embed it again)."""
        segment = self.segments[hit[0]]
        found = segment.entry(hit[1]) if segment.keys[hit[1]].tobytes() == key else None
        if found is None or (rows is not None and len(found) != rows):
            self.stats.damaged += 1
            return None
        self.stats.reused += 1
        if hit[0] in keep:
            segment.used.add(hit[1])
        else:
            self._write(key, found)
            self.stats.copied += 1
        return found

    def add(self, key: bytes, rows: np.ndarray) -> None:
        self.stats.embedded += 1
        self._write(key, rows)

    def _write(self, key: bytes, rows: np.ndarray) -> None:
        if not self.writable:
            return
        try:
            self.writer.add(key, rows)
        except OSError as err:
            self._unwritable(err)

    def _unwritable(self, err: OSError) -> None:
        """The cache is a saving, never a reason for a build to fail: stop writing to it and say so."""
        log.warning("embedding cache %s cannot be written (%s); this build goes on without it", self.folder, err)
        self.writable = False
        with contextlib.suppress(OSError):
            self.writer.abandon()

    def close(self) -> None:
        try:
            if self.writable:
                self.writer.flush()
            for segment in self.segments:
                if segment.used:
                    _write_users(segment.path, _read_users(segment.path) | {self.build_id})
        except OSError as err:
            self._unwritable(err)
        if self.stats.damaged:
            log.warning(
                "embedding cache %s: %d damaged entries were not used; their texts were embedded again",
                self.folder.name,
                self.stats.damaged,
            )


def clean(root: Path, live_versions: Iterable[str]) -> int:
    """Delete segments no live index version read from or wrote, and leftovers of interrupted writes.

    Call with the build lock held, after publishing. Returns the bytes freed.
    """
    live = set(live_versions)
    freed = 0
    if not root.is_dir():
        return 0
    for ns in root.iterdir():
        if not ns.is_dir():
            continue
        for path in ns.iterdir():
            stale_tmp = path.name.startswith(TMP_PREFIX)
            if stale_tmp or (path.is_dir() and path.name.startswith(SEGMENT_PREFIX) and not (_read_users(path) & live)):
                freed += _size(path)
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        path.unlink()
        if not any(p.name.startswith(SEGMENT_PREFIX) for p in ns.iterdir()):
            shutil.rmtree(ns, ignore_errors=True)
    return freed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cache_bytes(root: Path) -> int:
    return _size(root) if root.exists() else 0


def iter_segments(root: Path) -> Iterator[Path]:
    """Every segment folder of the cache (for inspection and tests)."""
    if root.is_dir():
        for ns in sorted(root.iterdir()):
            if ns.is_dir():
                yield from sorted(p for p in ns.iterdir() if p.is_dir() and p.name.startswith(SEGMENT_PREFIX))
