"""Serving's small products run on one BLAS thread, and late interaction scores all its candidates with
one product that gives the same numbers as scoring them one by one."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bot.core.retriever import HybridRetriever, maxsim, maxsim_many


def _one_by_one(question: np.ndarray, passage: np.ndarray) -> tuple[float, float]:
    if len(question) == 0 or len(passage) == 0:
        return 0.0, 0.0
    best = np.array([max(float(q @ p) for p in passage.astype(np.float32)) for q in question])
    low = np.sort(best)[: max(1, len(best) // 4)]
    return float(best.mean()), float(low.mean())


@pytest.mark.parametrize("question_tokens", [1, 3, 9, 16])
def test_one_product_scores_like_each_passage_alone(question_tokens):
    rng = np.random.default_rng(question_tokens)
    question = rng.standard_normal((question_tokens, 32)).astype(np.float32)
    sizes = [5, 0, 1, 40, 0, 12]  # passages without token vectors score 0, as before
    passages = [rng.standard_normal((n, 32)).astype(np.float16) for n in sizes]

    together = maxsim_many(question, passages)

    assert len(together) == len(passages)
    for got, passage in zip(together, passages, strict=True):
        assert got == pytest.approx(_one_by_one(question, passage), abs=1e-4)
        assert maxsim(question, passage) == pytest.approx(got, abs=1e-4)


def test_no_question_tokens_scores_zero():
    assert maxsim_many(np.zeros((0, 8), np.float32), [np.ones((3, 8), np.float16)]) == [(0.0, 0.0)]


def test_a_serving_retriever_keeps_numpy_on_one_blas_thread(engine_holder):
    engine = engine_holder.get()
    with threadpool_limits(limits=2, user_api="blas"):  # what numpy starts with on 2 cores
        HybridRetriever(engine.index, engine.encoders)
        threads = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert threads == {1}
