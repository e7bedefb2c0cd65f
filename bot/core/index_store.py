"""The on-disk index format, and loading one version of it for serving.

    INDEX_DIR/
      current -> versions/<version_id>     symlink, switched by one rename
      versions/<version_id>/
        manifest.json           schema, model, dimension, checksums, counts, build time, version id
        manifest.sha256         the manifest's own checksum (`sha256sum -c manifest.sha256` checks it)
        passages.json           passages (verbatim text, document, heading path, position, sentences)
        vectors.faiss           passage vectors (normalised; inner product = cosine)
        sentence_vectors.npy    one vector per sentence, to mark the sentence that answers
        lexical.json            BM25 tokens per passage
        encoder/                the ONNX export of the embedding model + tokenizer + config (query path)

What each file holds is defined in `bot.core.manifest` (the schema). Every file's sha256 and size are
in the manifest and every one is checked on each load: the data files are read once and parsed from
the bytes that were hashed; the encoder files are hashed in a streaming pass before onnxruntime and
tokenizers open them. The manifest itself is checked against manifest.sha256, then against the schema.
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

from bot.core.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexProblem, describe_error
from bot.core.manifest import (
    CONFIG_FILE,
    DATA_FILES,
    ENCODER_DIR,
    ENCODER_FILES,
    LEXICAL,
    MANIFEST,
    MANIFEST_CHECKSUM,
    ONNX_FILE,
    PASSAGES,
    SCHEMA_VERSION,
    SENTENCE_VECTORS,
    TOKENIZER_FILE,
    VECTORS,
    SchemaError,
    parse_manifest,
)

__all__ = [
    "CONFIG_FILE",
    "ENCODER_DIR",
    "ENCODER_FILES",
    "LEXICAL",
    "MANIFEST",
    "MANIFEST_CHECKSUM",
    "ONNX_FILE",
    "PASSAGES",
    "SCHEMA_VERSION",
    "SENTENCE_VECTORS",
    "TOKENIZER_FILE",
    "VECTORS",
]

EXPECTED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CURRENT_LINK = "current"
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


def check_model(manifest: dict[str, Any], *, expected_model: str = EXPECTED_MODEL) -> list[str]:
    problems = []
    if manifest.get("model_name") != expected_model:
        problems.append(
            f"it was built with the model {manifest.get('model_name')!r}, this qabot uses {expected_model!r}"
        )
    return problems


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
class LoadedIndex:
    version_dir: Path
    manifest: dict[str, Any]
    passages: list[dict[str, Any]]
    faiss_index: Any
    sentence_vectors: np.ndarray
    sentence_owner: np.ndarray  # passage row of each sentence vector
    lexical_tokens: list[list[str]]

    @property
    def version(self) -> str:
        return str(self.manifest["index_version"])

    @property
    def encoder_dir(self) -> Path:
        return self.version_dir / ENCODER_DIR


def load_version(version_dir: Path, *, expected_model: str = EXPECTED_MODEL) -> LoadedIndex:
    """Load one version's data for serving, refusing anything truncated, edited or built for another model.

    Every file listed in the manifest is checked against its checksum, the encoder's included (the
    encoder itself is opened by `OnnxEncoder`). Any failure is an IndexProblem, never another error.
    """
    import faiss

    manifest = read_manifest(version_dir)
    problems = check_model(manifest, expected_model=expected_model)
    if problems:
        raise IndexMismatchError(f"The index {version_dir.name} does not fit: {problems[0]}.", BUILD_FIX)
    files: dict[str, dict[str, Any]] = manifest["files"]
    for name in sorted(set(files) - set(DATA_FILES)):  # the encoder (and anything else listed)
        problem = check_file(version_dir, name, files[name])
        if problem:
            raise _damaged(version_dir, problem)
    data = {name: _read_verified(version_dir, name, files[name]) for name in DATA_FILES}
    try:
        passages = json.loads(data[PASSAGES])["passages"]
        lexical = json.loads(data[LEXICAL])
        faiss_index = faiss.deserialize_index(np.frombuffer(data[VECTORS], dtype=np.uint8))
        sentence_vectors = np.load(io.BytesIO(data[SENTENCE_VECTORS]), allow_pickle=False)
        dim = int(manifest["embedding_dim"])
        if faiss_index.d != dim or sentence_vectors.shape[1:] != (dim,):
            raise _damaged(version_dir, f"its vectors have dimension {faiss_index.d}, the manifest says {dim}")
        if faiss_index.ntotal != len(passages) or len(lexical["tokens"]) != len(passages):
            raise _damaged(version_dir, "its files disagree on the number of passages")
        owner = np.array([row for row, p in enumerate(passages) for _ in p["sentences"]], dtype=np.int64)
        if len(owner) != len(sentence_vectors):
            raise _damaged(version_dir, "the sentence vectors do not match the passages")
        tokens = lexical["tokens"]
    except (IndexProblem, MemoryError):
        raise
    except Exception as err:  # whatever a parser raises on bytes that passed their checksum
        raise _damaged(version_dir, f"its data cannot be read ({describe_error(err)})") from None
    return LoadedIndex(version_dir, manifest, passages, faiss_index, sentence_vectors, owner, tokens)
