"""The on-disk index format, and loading one version of it for serving.

    INDEX_DIR/
      current -> versions/<version_id>     symlink, switched by one rename
      versions/<version_id>/
        manifest.json           schema, model, dimension, checksums, counts, build time, version id
        passages.json           passages (verbatim text, document, heading path, position, sentences)
        vectors.faiss           passage vectors (normalised; inner product = cosine)
        sentence_vectors.npy    one vector per sentence, to mark the sentence that answers
        lexical.json            BM25 tokens per passage
        encoder/                the ONNX export of the embedding model + tokenizer (query path)

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

from bot.core.errors import IndexCorruptError, IndexMismatchError, IndexMissingError

SCHEMA_VERSION = 1
EXPECTED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
MANIFEST = "manifest.json"
PASSAGES = "passages.json"
VECTORS = "vectors.faiss"
SENTENCE_VECTORS = "sentence_vectors.npy"
LEXICAL = "lexical.json"
ENCODER_DIR = "encoder"
# Checked on every load (small); the rest by size on load and by hash in `qabot index verify`.
HASHED_ON_LOAD = (MANIFEST, PASSAGES, VECTORS, SENTENCE_VECTORS, LEXICAL, "encoder/encoder.json")

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
    for required in (PASSAGES, VECTORS, SENTENCE_VECTORS, LEXICAL, f"{ENCODER_DIR}/model.onnx"):
        if required not in files:
            problems.append(f"{required} is not listed in the manifest")
    return problems


def check_model(manifest: dict[str, Any], *, expected_model: str = EXPECTED_MODEL) -> list[str]:
    problems = []
    if manifest.get("model_name") != expected_model:
        problems.append(
            f"it was built with the model {manifest.get('model_name')!r}, this qabot uses {expected_model!r}"
        )
    return problems


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
    """Load one version for serving, refusing anything truncated, edited or built for another model."""
    import faiss

    manifest = read_manifest(version_dir)
    problems = check_model(manifest, expected_model=expected_model)
    if problems:
        raise IndexMismatchError(f"The index {manifest.get('index_version')} does not fit: {problems[0]}.", BUILD_FIX)
    problems = check_files(version_dir, manifest, full=False)
    if problems:
        raise IndexCorruptError(f"The index {manifest.get('index_version')} is damaged: {problems[0]}.", BUILD_FIX)
    try:
        passages = json.loads((version_dir / PASSAGES).read_text(encoding="utf-8"))["passages"]
        lexical = json.loads((version_dir / LEXICAL).read_text(encoding="utf-8"))
        faiss_index = faiss.read_index(str(version_dir / VECTORS))
        sentence_vectors = np.load(version_dir / SENTENCE_VECTORS, allow_pickle=False)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise IndexCorruptError(
            f"The index {manifest.get('index_version')} cannot be read ({err}).", BUILD_FIX
        ) from err
    dim = int(manifest["embedding_dim"])
    if faiss_index.d != dim or sentence_vectors.shape[1:] != (dim,):
        raise IndexMismatchError(
            f"The index vectors have dimension {faiss_index.d}, the manifest says {dim}.", BUILD_FIX
        )
    if faiss_index.ntotal != len(passages) or len(lexical["tokens"]) != len(passages):
        raise IndexCorruptError("The index files disagree on the number of passages.", BUILD_FIX)
    owner = np.array([row for row, p in enumerate(passages) for _ in p["sentences"]], dtype=np.int64)
    if len(owner) != len(sentence_vectors):
        raise IndexCorruptError("The sentence vectors do not match the passages.", BUILD_FIX)
    return LoadedIndex(version_dir, manifest, passages, faiss_index, sentence_vectors, owner, lexical["tokens"])
