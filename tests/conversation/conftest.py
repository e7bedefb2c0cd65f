"""Fixtures for the conversation layer's unit tests: a small fake engine and a manual clock.

Pure-logic tests use the fake engine; tests marked with the real index use `engine_holder`
from tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.conversation.models import IncomingMessage
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from bot.core.errors import IndexMissingError
from bot.core.types import Answer, AnswerKind, Confidence, Quote, Turn


class ManualClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ML_PASSAGE = "Machine Learning (ML) focuses on developing algorithms that enable computers to learn from data."
QUANTUM_PASSAGE = "Generative AI may one day run on new kinds of hardware."


@dataclass
class FakeBuildResult:
    """Shaped like index_builder.build.BuildResult."""

    version_id: str
    passage_count: int
    documents: int
    took_s: float
    skipped: bool = False
    warnings: tuple[str, ...] = ()


@dataclass
class FakeEngine:
    """Answers from a tiny script of keywords; stands in for EngineHolder in pure-logic tests.

    "learning": an answer; "quantum": mentioned (a low-confidence quote); "boom": raises; greetings:
    small talk; anything else: abstain."""

    version: str = "v1"
    passage_count: int = 3
    broken: Exception | None = None  # raised by answer() when set
    asked: list[str] = field(default_factory=list)
    contexts: list[tuple[Turn, ...]] = field(default_factory=list)  # the earlier turns given with each question
    reloads: int = 0
    next_version: str = "v2"

    def answer(self, question: str, context: Sequence[Turn] = ()) -> Answer:
        self.asked.append(question)
        self.contexts.append(tuple(context))
        if self.broken is not None:
            raise self.broken
        q = " ".join(question.lower().split())
        if q in ("", "hi", "thanks", "help"):
            kind = AnswerKind.EMPTY if not q else AnswerKind.SMALLTALK
            return Answer(question, q, kind, None, message="Ask me about machine learning.", index_version=self.version)
        if "learning" in q:
            quote = Quote(ML_PASSAGE, "ML vs GenAI", "ml.md", "What is Machine Learning?", ("What is ML?",), 0.9, "p1")
            return Answer(
                question,
                q,
                AnswerKind.ANSWER,
                Confidence.HIGH,
                (quote,),
                message="Here is what the article says:",
                index_version=self.version,
            )
        if "quantum" in q:  # the knowledge only touches on it: one low-confidence quote
            quote = Quote(QUANTUM_PASSAGE, "ML vs GenAI", "ml.md", "The future", ("The future",), 0.4, "p9")
            return Answer(
                question,
                q,
                AnswerKind.MENTIONED,
                Confidence.LOW,
                (quote,),
                message="The knowledge only touches on this; it may not answer your question:",
                index_version=self.version,
            )
        if q == "boom":
            raise RuntimeError("secret internal detail")
        return Answer(
            question,
            q,
            AnswerKind.ABSTAIN,
            None,
            closest_sections=("Healthcare",),
            message="The knowledge doesn't cover that.",
            index_version=self.version,
        )

    def reload(self) -> str:
        self.reloads += 1
        self.version = self.next_version
        return self.version

    @property
    def manifest(self) -> dict[str, Any]:
        if isinstance(self.broken, IndexMissingError):
            raise self.broken
        return {  # the keys of a schema-3 manifest that the conversation layer reads
            "index_version": self.version,
            "profile": "fast",
            "encoders": [
                {"id": "minilm", "model_name": "sentence-transformers/all-MiniLM-L6-v2", "dim": 384, "runtime": "onnx"}
            ],
            "passage_count": self.passage_count,
            "documents": [{"path": "ml.md", "title": "ML vs GenAI", "sha256": "x"}],
            "built_at": "2024-03-06T00:00:00+00:00",
        }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        index_dir=tmp_path / "index",
        knowledge_dir=tmp_path / "knowledge",
        feedback_db=tmp_path / "data" / "qabot.sqlite3",
        user_rate_limit=3,
        channel_rate_limit=5,
        rate_window_s=60,
    )


@pytest.fixture
def store(database):
    """The service's store, on an SQLite file and on PostgreSQL (tests/databases.py)."""
    s = database.open()
    yield s
    s.close()


@pytest.fixture
def make_service(fake_engine: FakeEngine, store, settings: Settings, clock: ManualClock):
    def make(*, engine: Any = None, builder=None, rollback=None, **changes: Any) -> ConversationService:
        eng = engine if engine is not None else fake_engine
        st = settings.replace(**changes) if changes else settings
        rebuilder = RebuildCoordinator(eng, st.knowledge_dir, st.index_dir, builder=builder, rollback=rollback)
        return ConversationService(eng, settings=st, feedback=store, rebuilder=rebuilder, clock=clock)

    return make


def msg(text: str = "what is machine learning?", **kw: Any) -> IncomingMessage:
    """A message as the Slack adapter hands it over (a platform with threads)."""
    base: dict[str, Any] = {"platform": "slack", "user_id": "U1", "channel_id": "C1", "text": text}
    base.setdefault("supports_threads", True)
    base.update(kw)
    return IncomingMessage(**base)


@pytest.fixture
def message():
    return msg
