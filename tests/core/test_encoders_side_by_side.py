"""An index's encoders read a question side by side, not one after the other (a question's latency is
about the slowest encoder's, not the sum)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bot.core.retriever import HybridRetriever


class _WaitsForTheOthers:
    """An encoder that only answers once every encoder of the index is encoding the same question."""

    def __init__(self, inner, barrier: threading.Barrier, seen: list[str]):
        self.inner, self.barrier, self.seen = inner, barrier, seen
        self.spec, self.dim = inner.spec, inner.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.barrier.wait()  # BrokenBarrierError after the timeout if the encoders run one at a time
        self.seen.append(threading.current_thread().name)
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_passages(texts)


def test_the_encoders_of_a_default_index_run_at_the_same_time(engine_holder):
    engine = engine_holder.get()
    assert len(engine.encoders) == 2  # the default profile: mpnet and e5
    barrier = threading.Barrier(len(engine.encoders), timeout=10)
    seen: list[str] = []
    retriever = HybridRetriever(engine.index, [_WaitsForTheOthers(e, barrier, seen) for e in engine.encoders])

    found = retriever.retrieve("how is machine learning used in healthcare?")

    assert found.candidates
    assert len(set(seen)) == 2  # two threads, each at the barrier while the other was
    # and the same ranking as the engine's own retriever would give without late interaction's order
    alone = retriever.retrieve("how is machine learning used in healthcare?")
    assert [c.row for c in alone.candidates] == [c.row for c in found.candidates]


def test_an_encoder_that_fails_fails_the_question(engine_holder):
    engine = engine_holder.get()

    class Broken:
        spec, dim = engine.encoders[1].spec, engine.encoders[1].dim

        def encode_queries(self, texts):
            raise RuntimeError("engine gone")

    retriever = HybridRetriever(engine.index, [engine.encoders[0], Broken()])
    with pytest.raises(RuntimeError, match="engine gone"):
        retriever.retrieve("what is generative ai?")
