"""The query-time ONNX encoder gives sentence-transformers' vectors, and answering never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.core.encoder import OnnxEncoder

ROOT = Path(__file__).resolve().parents[2]

SAMPLES = [
    "What is machine learning?",
    "ml vs genai",
    "Generative AI uses AI algorithms and large language models to create various types of content like "
    "realistic images, text, code, and audio.",
    # longer than the 256-token window: both sides must truncate the same way
    " ".join(["Machine learning systems learn patterns based on input data and make predictions."] * 40),
    "Ünïcödé naïve café — “smart quotes” and ellipses…",
    "機械学習と生成AIの違いは何ですか？",
    "Was ist der Unterschied zwischen maschinellem Lernen und generativer KI?",
    "🤖🎉🔥",
    "?",
    "",
    "a",
    "GANs, VAEs & LLMs: what's the diff??? (asking for a friend) <@U012AB>",
]


@pytest.fixture(scope="module")
def onnx_encoder(built_index_dir) -> OnnxEncoder:
    return OnnxEncoder((built_index_dir / "current").resolve() / "encoder")


def test_encoder_config_matches_the_model(onnx_encoder, st_embedder, built_index_dir):
    config = json.loads(((built_index_dir / "current").resolve() / "encoder" / "encoder.json").read_text())
    assert config["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert onnx_encoder.dim == st_embedder.dim == 384
    assert onnx_encoder.max_seq_length == st_embedder.max_seq_length == 256


def test_long_sample_is_longer_than_the_token_window(built_index_dir):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str((built_index_dir / "current").resolve() / "encoder" / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(SAMPLES[3]).ids) > 256


def test_onnx_vectors_match_sentence_transformers(onnx_encoder, st_embedder):
    onnx = onnx_encoder.encode(SAMPLES)
    torch_side = st_embedder.encode(SAMPLES)
    assert onnx.shape == torch_side.shape == (len(SAMPLES), 384)
    assert onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(onnx * torch_side, axis=1)
    for text, cosine in zip(SAMPLES, cosines, strict=True):
        assert cosine >= 0.9999, (text[:60], float(cosine))


def test_batching_does_not_change_a_vector(onnx_encoder):
    batch = onnx_encoder.encode(SAMPLES)  # padded to the longest sample
    for text, row in zip(SAMPLES, batch, strict=True):
        assert float(onnx_encoder.encode_one(text) @ row) >= 0.9999, text[:60]


def test_different_texts_get_different_vectors(onnx_encoder):
    a, b, c = onnx_encoder.encode(["What is machine learning?", "What is ML?", "a pizza recipe with basil"])
    assert float(a @ b) > float(a @ c) + 0.2


_NO_TORCH_SCRIPT = """
import sys
from pathlib import Path
from bot.core.engine import EngineHolder
answer = EngineHolder(Path(sys.argv[1])).answer("what is machine learning?")
assert answer.quotes, answer
print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))
"""

_CLI_NO_TORCH_SCRIPT = """
import json, sys
from bot.cli import main
index = sys.argv[1]
sys.argv = ["qabot", "ask", "--json", "--index", index, "what are GANs?"]
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
sys.stderr.write(json.dumps({"exit": code, "heavy": heavy}) + "\\n")
"""


def _python(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )


def test_answering_does_not_import_torch(built_index_dir):
    done = _python(_NO_TORCH_SCRIPT, str(built_index_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_qabot_ask_json_does_not_import_torch(built_index_dir):
    done = _python(_CLI_NO_TORCH_SCRIPT, str(built_index_dir))
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"exit": 0, "heavy": []}, done.stderr
    answer = json.loads(done.stdout)
    assert answer["quotes"] and "Generative Adversarial Networks" in answer["quotes"][0]["text"]
