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

SCHEMA_VERSION = 2

MANIFEST = "manifest.json"
# sha256 of manifest.json's bytes, in `sha256sum` format: `sha256sum -c manifest.sha256` checks it by hand.
MANIFEST_CHECKSUM = "manifest.sha256"
PASSAGES = "passages.json"
VECTORS = "vectors.faiss"
SENTENCE_VECTORS = "sentence_vectors.npy"
LEXICAL = "lexical.json"
ENCODER_DIR = "encoder"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder.json"
ENCODER_FILES = tuple(f"{ENCODER_DIR}/{name}" for name in (ONNX_FILE, TOKENIZER_FILE, CONFIG_FILE))
DATA_FILES = (PASSAGES, VECTORS, SENTENCE_VECTORS, LEXICAL)

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


def _relative_file_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or str(path) != name:
        raise ValueError(f"{name!r} is not a plain relative file name")
    return name


class Manifest(_Strict):
    schema_version: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]
    index_version: Annotated[str, Field(pattern=r"^v[0-9A-Za-z]+-[0-9a-f]{8}$")]
    model_name: Text
    model_sha256: Sha256
    embedding_dim: PositiveInt
    max_seq_length: PositiveInt
    faiss_index: Text
    faiss_recall_at_10: Annotated[float, Field(ge=0, le=1)] | None
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
        missing = [name for name in self.required_files() if name not in self.files]
        if missing:
            raise ValueError(f"files does not list {', '.join(missing)}")
        if MANIFEST in self.files or MANIFEST_CHECKSUM in self.files:
            raise ValueError("files lists the manifest itself")
        if sum(d.passages for d in self.documents) != self.passage_count:
            raise ValueError("the documents' passages do not add up to passage_count")
        if self.built_at.tzinfo is None:
            raise ValueError("built_at has no time zone")
        return self

    @staticmethod
    def required_files() -> tuple[str, ...]:
        """Every file a version must have besides the manifest: all of them are checksummed on load."""
        return DATA_FILES + ENCODER_FILES


class EncoderConfig(_Strict):
    """`encoder/encoder.json`: how to turn the ONNX model's output into a sentence vector."""

    model_name: Text
    max_seq_length: PositiveInt
    embedding_dim: PositiveInt
    pooling: Literal["mean"]
    normalize: Literal[True]
    pad_token_id: NonNegativeInt


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


def parse_encoder_config(raw: bytes | str) -> EncoderConfig:
    try:
        return EncoderConfig.model_validate_json(raw)
    except ValidationError as err:
        raise SchemaError(_first_problem(err)) from None
