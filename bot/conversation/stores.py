"""What the conversation layer keeps, as small interfaces: the answer log, votes, thread memory, and what
the feedback report reads. The service and the report depend on these Protocols only.

One implementation holds all four today: `bot.storage.FeedbackStore`, on SQLAlchemy Core, in an SQLite
file (the default) or in PostgreSQL (QABOT_DATABASE_URL), so replicas share one log (docs/storage.md).
Users appear only as keyed hashes (bot/conversation/privacy.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.core.types import Turn


class UnknownAnswerError(KeyError):
    """No answer with that id was recorded (e.g. the button predates a database reset)."""


@dataclass(frozen=True)
class StoredAnswer:
    answer_id: str
    question: str  # '' once erased by the retention setting
    normalized_question: str
    passage_ids: tuple[str, ...]
    index_version: str
    kind: str  # an AnswerKind value
    platform: str
    channel_id: str
    user_hash: str
    created_at: float  # unix time
    thread_id: str = ""  # the conversation it belongs to ('' for none)
    # the Answer as shown (Answer.to_dict() without the question), to show it again ('' for older rows)
    answer_json: str = ""


@dataclass(frozen=True)
class VoteTotals:
    answer: StoredAnswer
    up: int
    down: int

    @property
    def net(self) -> int:
        return self.up - self.down


@runtime_checkable
class AnswerLog(Protocol):
    """Every answer given, with what is needed to vote on it, report on it and show it again."""

    def record_answer(
        self,
        *,
        answer_id: str,
        question: str,
        normalized_question: str = "",
        passage_ids: Sequence[str],
        index_version: str,
        kind: str,
        platform: str,
        channel_id: str,
        user_id: str,
        thread_id: str = "",
        answer_json: str = "",
    ) -> str:
        """'stored', or 'queued' when the database could not take it now (written as soon as it can)."""
        ...

    def get_answer(self, answer_id: str) -> StoredAnswer | None: ...


@runtime_checkable
class Votes(Protocol):
    def record_vote(self, answer_id: str, vote: int, *, platform: str, user_id: str, channel_id: str) -> str:
        """'new', 'updated', 'unchanged' or 'queued'; UnknownAnswerError for an answer never recorded."""
        ...


@runtime_checkable
class ThreadMemory(Protocol):
    """The threads the bot answered in (follow-ups there need no mention) and their earlier turns."""

    def remember_thread(self, platform: str, channel_id: str, thread_id: str) -> None: ...

    def is_bot_thread(self, platform: str, channel_id: str, thread_id: str) -> bool: ...

    def thread_turns(self, platform: str, channel_id: str, thread_id: str, *, limit: int = 3) -> list[Turn]:
        """The last `limit` questions of a conversation and the passages quoted for them, oldest first."""
        ...


@runtime_checkable
class FeedbackSource(Protocol):
    """What `report` and `status` read."""

    def answers(self, *, kind: str | None = None) -> list[StoredAnswer]: ...

    def answer_count(self, *, kind: str | None = None) -> int: ...

    def vote_totals(self) -> list[VoteTotals]: ...


@runtime_checkable
class ConversationStore(AnswerLog, Votes, ThreadMemory, FeedbackSource, Protocol):
    """Everything the conversation service keeps, in one object that is closed at shutdown."""

    def close(self) -> None: ...
