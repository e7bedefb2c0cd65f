"""What the conversation layer keeps, as small interfaces: the answer log, votes, thread memory, what
the feedback report reads, the recent answers of a channel (repeats) and the hand-offs to people. The service and the report depend on these Protocols only.

One implementation holds them all today: `bot.storage.FeedbackStore`, on SQLAlchemy Core, in an SQLite
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
    # the question's embedding as "<encoder id>:<base64 float16>" (bot/conversation/similarity.py); ''
    # for older rows, for answers stored without one and once the question was erased
    question_vector: str = ""


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
        question_vector: str = "",
    ) -> str:
        """'stored', or 'queued' when the database could not take it now (written as soon as it can)."""
        ...

    def get_answer(self, answer_id: str) -> StoredAnswer | None: ...


@runtime_checkable
class RecentAnswers(Protocol):
    """The answers given in one channel lately: the questions a new one may repeat."""

    def recent_answers(
        self, platform: str, channel_id: str, *, since: float, kinds: Sequence[str], limit: int = 500
    ) -> list[StoredAnswer]:
        """Answers of those kinds in that channel created at or after `since` (unix time), newest first,
        whose question text is still kept."""
        ...


@runtime_checkable
class Handoffs(Protocol):
    """Hand-offs to people: at most one per thread, across restarts and replicas."""

    def claim_handoff(
        self, platform: str, channel_id: str, thread_id: str, *, reason: str, answer_id: str = ""
    ) -> bool:
        """True for the first claim of this thread (the caller tags the people); False when it was claimed
        before. Raises when the database cannot be written now."""
        ...


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
class WatchedChannels(Protocol):
    """The channels where the bot answers questions without a mention (`/qabot watch`, issue 9 item 1)."""

    def set_watched(self, platform: str, channel_id: str, watched: bool) -> bool:
        """Watch a channel (True) or stop (False); True when that changed something."""
        ...

    def watched_channels(self, platform: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class TaughtPair:
    """What an admin taught ("Teach qabot"): this passage answers the question, or the knowledge does
    not cover it (`passage_text` ''). Kept by the passage's text, so it survives rebuilds."""

    pair_id: int
    question: str
    normalized_question: str
    passage_text: str  # '' for "not covered"
    doc_path: str
    section: str
    passage_id: str  # its id in the index it was taught on
    index_version: str
    platform: str
    user_hash: str  # the admin, as a keyed hash
    created_at: float  # unix time

    @property
    def not_covered(self) -> bool:
        return not self.passage_text


@dataclass(frozen=True)
class TeachOffer:
    """The candidates shown to an admin for one question, until one is picked. `candidates` are dicts
    with passage_id, text, doc_path and section."""

    offer_id: str
    platform: str
    question: str
    candidates: tuple[dict, ...]
    index_version: str
    created_at: float = 0.0


@runtime_checkable
class TaughtPairs(Protocol):
    """What admins taught from chat, and the offers they pick from (issue 9 item 3). Admin actions:
    written now or refused (never queued)."""

    def add_taught(
        self,
        *,
        question: str,
        normalized_question: str,
        passage_text: str,
        doc_path: str = "",
        section: str = "",
        passage_id: str = "",
        index_version: str = "",
        platform: str,
        user_id: str,
    ) -> tuple[TaughtPair, tuple[TaughtPair, ...]]:
        """(the new pair, the pairs of the same question it replaced)."""
        ...

    def taught_pairs(self) -> list[TaughtPair]: ...

    def remove_taught(self, pair_id: int) -> TaughtPair | None: ...

    def save_teach_offer(self, offer: TeachOffer, *, keep_s: float) -> None: ...

    def take_teach_offer(self, offer_id: str) -> TeachOffer | None: ...


@runtime_checkable
class ConversationStore(
    AnswerLog, Votes, ThreadMemory, FeedbackSource, RecentAnswers, Handoffs, WatchedChannels, TaughtPairs, Protocol
):
    """Everything the conversation service keeps, in one object that is closed at shutdown."""

    def close(self) -> None: ...
