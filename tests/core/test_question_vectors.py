"""The question vector the conversation layer stores (repeats, knowledge gaps): the index's first encoder,
unit length, and no second encoding for a question the engine has just answered."""

from __future__ import annotations

import numpy as np


def test_a_question_just_answered_is_not_encoded_again(engine_holder, monkeypatch):
    engine = engine_holder.get()
    answer = engine.answer("what is machine learning?")
    encoder = engine.encoders[0]
    fresh_name, fresh = engine.embed_questions([answer.normalized_question + " "])  # another text: encoded
    calls: list[list[str]] = []
    original = encoder.encode_queries

    def counting(texts):
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(encoder, "encode_queries", counting)
    name, vectors = engine.embed_questions([answer.normalized_question])
    assert calls == [] and name == fresh_name == engine.question_encoder
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5
    # the same vector as encoding it afresh (whitespace does not change the tokens)
    assert float(np.dot(vectors[0], fresh[0])) > 0.999
    _, other = engine.embed_questions(["a question nobody asked yet about pizza"])
    assert len(calls) == 1 and other.shape == vectors.shape
