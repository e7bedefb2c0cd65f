"""build_index: knowledge folder -> a new index version, switched in atomically (or a no-op)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import ConfigError
from bot.core import index_store as fmt
from bot.core.encoder import Background, Encoder, EncoderSpec, load_encoder
from bot.core.errors import BuildError, BuildInProgressError, IndexProblem
from bot.core.lexical import tokenize
from bot.core.manifest import SchemaError
from index_builder import embed_cache, store
from index_builder.embedding import embed_for_version
from index_builder.models import prepare_encoder
from index_builder.parser import DocumentError, Passage, collect_knowledge
from index_builder.profiles import Profile, load_profile
from index_builder.progress import BuildProgress
from index_builder.sources import SourceLimits
from index_builder.vector_index import VectorIndexSettings, make_vector_index

log = logging.getLogger(__name__)

PARSER_VERSION = 4  # bump when passage boundaries change, so an unchanged folder still rebuilds
CACHE_DIR = ".cache"  # inside the index folder: ONNX exports and the embedding cache, kept between builds
BACKGROUND_FILE = Path(__file__).resolve().parent / "data" / "background_questions.txt"
BACKGROUND_SAMPLE = 5000  # passages (and sentences) the background is measured on
MIN_BACKGROUND_STD = 0.01
# Token vectors (late interaction) cost ~100 x a passage vector: stored up to this many passages.
LATE_INTERACTION_MAX_PASSAGES = 20_000
# The passage vector index (exact / HNSW / IVF), its search setting and recall check: vector_index.py.


@dataclass(frozen=True)
class BuildResult:
    version_id: str
    passage_count: int
    documents: int
    took_s: float
    skipped: bool  # nothing changed: the current version was kept
    version_dir: Path
    profile: str = ""
    warnings: tuple[str, ...] = ()  # for a person: files refused, paragraphs skipped, words in no passage


def build_encoder(spec: EncoderSpec, folder: Path) -> Encoder:
    """The query side's encoder, embedding with one one-thread model call per core side by side: on 2
    cores 2 x the texts a second of one call on 2 threads (docs/scaling-builds.md, section 2)."""
    return load_encoder(spec, folder, workers=min(os.cpu_count() or 1, 8))


def embedding_text(passage: Passage) -> str:
    """What the dense side sees: the heading path gives a bare list item its context."""
    heading = " > ".join(passage.section_path)
    return f"{heading}: {passage.text}" if heading else passage.text


def background_questions() -> list[str]:
    """Generic questions about everyday topics: what an unrelated question's similarity looks like."""
    text = BACKGROUND_FILE.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _fingerprint(doc_hashes: list[tuple[str, str]], profile: Profile, limits: SourceLimits) -> str:
    payload = json.dumps(
        {
            "docs": sorted(doc_hashes),
            "profile": profile.to_json(),
            "models": [m.weights_sha256 for m in profile.models],
            "schema": fmt.SCHEMA_VERSION,
            "parser": PARSER_VERSION,
            "limits": [limits.max_document_bytes, limits.max_passage_chars],  # they decide what is indexed
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _current_manifest(index_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    try:
        version_dir = fmt.current_version_dir(index_dir)
        return version_dir, fmt.read_manifest(version_dir)
    except IndexProblem:
        return None


def _write_failed(path: Path, err: OSError) -> BuildError:
    """ "no space left on device while writing X" (or whatever the OS said): one line, no traceback."""
    reason = os.strerror(err.errno) if err.errno else (str(err) or type(err).__name__)
    where = err.filename or path
    return BuildError(f"{reason[:1].lower()}{reason[1:]} while writing {where}")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OSError from the writes inside into a one-line BuildError naming the file."""
    try:
        yield
    except OSError as err:
        raise _write_failed(path, err) from err


def write_file(path: Path, data: bytes) -> dict[str, Any]:
    """Write `data` to `path` and flush it to disk; returns its manifest entry (sha256, bytes).

    A failed write (full disk, quota, file size limit, I/O error) is a BuildError naming the file.
    """
    with _writing(path), open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def build_index(
    knowledge_dir: Path,
    index_dir: Path,
    *,
    force: bool = False,
    show_progress: bool = False,
    profile: Profile | str | None = None,
    encoder_cache: Path | None = None,
    embedding_cache: Path | None = None,
    vector_index: VectorIndexSettings | None = None,
    encoder_loader: Callable[[EncoderSpec, Path], Encoder] | None = None,
    limits: SourceLimits | None = None,  # None: QABOT_MAX_DOCUMENT_BYTES / QABOT_MAX_PASSAGE_CHARS or defaults
) -> BuildResult:
    """Parse, embed and write a new index version, check that it loads and answers, then switch
    `current` to it in one rename.

    `profile` (a name or a loaded Profile; default QABOT_PROFILE or "default") says which encoders
    the index carries and the retrieval settings recorded with it. `encoder_cache` is where ONNX
    exports are kept between builds (default INDEX_DIR/.cache/encoders). `embedding_cache` is where the
    vectors of texts already embedded are kept for the next build (default INDEX_DIR/.cache/embeddings;
    cleaned against this index's versions, so give each index its own). `encoder_loader` opens an
    encoder from its files (default: the query side's runtime, with a one-thread call per core side by
    side: `build_encoder`). `vector_index` says which passage vector index is made at which size
    (exact, HNSW, inverted file) and how its recall is checked.

    Raises BuildError (or BuildInProgressError) with a message fit for a user; whatever was serving
    before keeps serving.
    """
    started = time.perf_counter()
    encoder_loader = encoder_loader or build_encoder
    knowledge_dir = Path(knowledge_dir)
    index_dir = Path(index_dir)
    if not isinstance(profile, Profile):
        profile = load_profile(profile or os.environ.get("QABOT_PROFILE") or None)
    encoder_cache = Path(encoder_cache) if encoder_cache else index_dir / CACHE_DIR / "encoders"
    embedding_cache = Path(embedding_cache) if embedding_cache else index_dir / CACHE_DIR / "embeddings"
    if not knowledge_dir.is_dir():
        raise BuildError(f"The knowledge folder {knowledge_dir} does not exist.")
    try:
        limits = limits or SourceLimits.from_env()
        knowledge = collect_knowledge(knowledge_dir, limits)
    except DocumentError as err:
        raise BuildError(f"Cannot index the knowledge: {err}.") from err
    except ConfigError as err:  # e.g. QABOT_MAX_DOCUMENT_BYTES=abc
        raise BuildError(str(err)) from err
    documents, passages, warnings = knowledge.documents, knowledge.passages, tuple(knowledge.warnings)
    for warning in warnings:
        log.info("knowledge: %s", warning)
    refused = f" ({'; '.join(warnings[:3])}{'; …' if len(warnings) > 3 else ''})" if warnings else ""
    if not documents:
        raise BuildError(f"The knowledge folder {knowledge_dir} has no .md or .txt documents to index{refused}.")
    if not passages:
        raise BuildError(f"The documents in {knowledge_dir} contain no text to index{refused}.")
    if not any(tokenize(embedding_text(p)) for p in passages):
        raise BuildError(
            f"The documents in {knowledge_dir} contain no words a question could match (only emoji, symbols, "
            "stop words or control characters); the index was not changed."
        )

    fingerprint = _fingerprint([(d.path, d.sha256) for d in documents], profile, limits)

    try:
        with store.build_lock(index_dir):
            current = _current_manifest(index_dir)
            if current and not force and current[1].get("fingerprint") == fingerprint:
                version_dir, manifest = current
                if not fmt.check_files(version_dir, manifest):
                    return BuildResult(
                        manifest["index_version"],
                        int(manifest["passage_count"]),
                        len(manifest["documents"]),
                        time.perf_counter() - started,
                        True,
                        version_dir,
                        profile.name,
                        warnings,
                    )
            store.clear_stale_staging(index_dir)
            stamp = datetime.now(UTC)
            version_id = f"v{stamp:%Y%m%dT%H%M%S%fZ}-{fingerprint[:8]}"
            staging = store.new_staging_dir(index_dir, version_id)
            steps = [f"encoder {m.id}" for m in profile.models] + ["write", "verify"]
            try:
                with BuildProgress(steps, enabled=show_progress) as progress:
                    result_dir = _write_version(
                        staging,
                        index_dir=index_dir,
                        version_id=version_id,
                        built_at=stamp,
                        documents=documents,
                        passages=passages,
                        profile=profile,
                        encoder_cache=encoder_cache,
                        embedding_cache=embedding_cache,
                        fingerprint=fingerprint,
                        progress=progress,
                        vector_index=vector_index or VectorIndexSettings(),
                        started=started,
                        encoder_loader=encoder_loader,
                        warnings=warnings,
                    )
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            # the cache keeps what the kept versions were built from (and what this one embedded)
            try:
                freed = embed_cache.clean(embedding_cache, [p.name for p in store.list_versions(index_dir)])
                if freed:
                    log.info("embedding cache: %.1f MB of entries no kept version uses were removed", freed / 1e6)
            except OSError as err:  # the new version is live; the next build cleans up
                log.warning("embedding cache: could not clean %s (%s)", embedding_cache, err)
    except (BuildError, BuildInProgressError):
        raise
    except Exception as err:
        log.exception("index build failed")
        raise BuildError(
            f"The index build failed ({type(err).__name__}: {err}); the previous index is unchanged."
        ) from err

    return BuildResult(
        version_id,
        len(passages),
        len(documents),
        time.perf_counter() - started,
        False,
        result_dir,
        profile.name,
        warnings,
    )


def _background(questions: np.ndarray, vectors: np.ndarray, sentence_vectors: np.ndarray) -> Background:
    """Similarities of generic questions to this knowledge: the scale each encoder's scores are put on."""
    rng = np.random.default_rng(0)

    def sample(m: np.ndarray) -> np.ndarray:
        return m if len(m) <= BACKGROUND_SAMPLE else m[rng.choice(len(m), BACKGROUND_SAMPLE, replace=False)]

    p = questions @ sample(vectors).T
    s = questions @ sample(sentence_vectors).T if len(sentence_vectors) else p
    # a knowledge base of one passage has no spread to measure: never divide by (almost) nothing
    return Background(
        passage_mean=round(float(p.mean()), 6),
        passage_std=round(max(float(p.std()), MIN_BACKGROUND_STD), 6),
        sentence_mean=round(float(s.mean()), 6),
        sentence_std=round(max(float(s.std()), MIN_BACKGROUND_STD), 6),
    )


def _write_version(
    staging: Path,
    *,
    index_dir: Path,
    version_id: str,
    built_at: datetime,
    documents,
    passages: list[Passage],
    profile: Profile,
    encoder_cache: Path,
    embedding_cache: Path,
    fingerprint: str,
    progress: BuildProgress,
    vector_index: VectorIndexSettings,
    started: float,
    encoder_loader: Callable[[EncoderSpec, Path], Encoder],
    warnings: tuple[str, ...] = (),
) -> Path:
    import faiss

    from bot.core.probe import load_and_probe

    step_done = progress.done

    passage_texts = [embedding_text(p) for p in passages]
    sentence_texts = [p.text[s:e] for p in passages for s, e in p.sentences]
    # where each passage's own text starts in its passage text, and its sentences there
    contexts = [(len(t) - len(p.text), p.sentences) for t, p in zip(passage_texts, passages, strict=True)]
    encoders: list[dict[str, Any]] = []
    search_kinds: dict[str, Any] = {}
    files: dict[str, dict[str, Any]] = {}
    for model in profile.models:
        # 1. the query-time encoder (exported once per weights), then every text through it
        folder = staging / fmt.ENCODERS_DIR / model.id
        with _writing(folder):
            spec = prepare_encoder(model, encoder_cache, folder)
        encoder = encoder_loader(spec, folder)
        token_vectors = (
            spec.token_vectors
            and len(passages) <= LATE_INTERACTION_MAX_PASSAGES
            and hasattr(encoder, "passage_token_vectors")
        )
        with _writing(folder):
            out = embed_for_version(
                encoder,
                passage_texts=passage_texts,
                sentence_texts=sentence_texts,
                token_texts=[p.text for p in passages] if token_vectors else None,
                sentence_path=folder / fmt.SENTENCE_VECTORS,
                token_path=folder / fmt.TOKEN_VECTORS if token_vectors else None,
                cache_root=embedding_cache,
                build_id=version_id,
                contexts=contexts if spec.tokens_in_context or spec.sentences_in_context else None,
            )
        for kind, st in out.stats.items():
            log.info(
                "%s %s vectors: %d reused from the cache, %d embedded, %d damaged entries re-embedded",
                model.id,
                kind,
                st.reused,
                st.embedded,
                st.damaged,
            )
        vectors = out.passage_vectors
        sentence_vectors = np.load(folder / fmt.SENTENCE_VECTORS, mmap_mode="r")
        questions = encoder.encode_queries(background_questions())
        background = _background(questions, vectors, sentence_vectors)
        del sentence_vectors
        made = make_vector_index(vectors, questions=questions, settings=vector_index)
        index, search_kinds[model.id] = made.index, made.search_entry()
        del vectors, out.passage_vectors, made
        # each data file is serialised in memory and written once; its checksum comes from the same bytes
        prefix = f"{fmt.ENCODERS_DIR}/{model.id}/"
        files[prefix + fmt.VECTORS] = write_file(folder / fmt.VECTORS, faiss.serialize_index(index).tobytes())
        del index
        files[prefix + fmt.SENTENCE_VECTORS] = out.sentence_file
        if out.token_files is not None:
            files[prefix + fmt.TOKEN_VECTORS] = out.token_files[0]
            files[prefix + fmt.TOKEN_OFFSETS] = write_file(folder / fmt.TOKEN_OFFSETS, _npy_bytes(out.token_files[1]))
        spec_json = spec.to_json() | {"background": background.__dict__, "token_vectors": bool(token_vectors)}
        encoders.append(spec_json)
        del encoder
        step_done(f"encoder {model.id}")

    # 2. data files shared by every encoder
    lexical = {
        "tokenizer": "qabot-lexical-v1",
        "bm25": "rank_bm25.BM25Okapi",
        "tokens": [tokenize(embedding_text(p)) for p in passages],
    }
    files[fmt.PASSAGES] = write_file(staging / fmt.PASSAGES, _json_bytes({"passages": [p.to_json() for p in passages]}))
    files[fmt.LEXICAL] = write_file(staging / fmt.LEXICAL, _json_bytes(lexical))
    for path in sorted(staging.rglob("*")):  # the encoders' models (and anything else in the folder)
        name = path.relative_to(staging).as_posix()
        if path.is_file() and name not in files:
            files[name] = {"sha256": fmt.sha256_file(path), "bytes": path.stat().st_size}
    step_done("write")
    per_document = Counter(p.doc_path for p in passages)
    manifest = {
        "schema_version": fmt.SCHEMA_VERSION,
        "index_version": version_id,
        "profile": profile.name,
        "encoders": encoders,
        "search": search_kinds,
        "retrieval": profile.retrieval,
        "lexical": "bm25-okapi (rank-bm25)",
        "parser_version": PARSER_VERSION,
        "fingerprint": fingerprint,
        "documents": [
            {
                "path": d.path,
                "title": d.title,
                "sha256": d.sha256,
                "source_url": d.source_url,
                "source_kind": d.source_kind,
                "passages": per_document.get(d.path, 0),
            }
            for d in documents
        ],
        "passage_count": len(passages),
        "sentence_count": len(sentence_texts),
        "built_at": built_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "build_seconds": round(time.perf_counter() - started, 3),
        "warnings": list(warnings),
        "files": dict(sorted(files.items())),
    }
    try:
        manifest_raw, checksum_raw = fmt.manifest_files(manifest)
    except SchemaError as err:
        raise BuildError(f"The new index's manifest does not match the schema ({err}).") from err
    write_file(staging / fmt.MANIFEST, manifest_raw)
    write_file(staging / fmt.MANIFEST_CHECKSUM, checksum_raw)

    # 3. the new version must load and answer with the query-time engine before it goes live
    try:
        load_and_probe(staging)
    except IndexProblem as err:
        raise BuildError(
            f"The new index failed its check before going live: {err.message} The previous index keeps serving."
        ) from err
    step_done("verify")
    with _writing(staging):
        return store.publish(index_dir, staging, version_id)
