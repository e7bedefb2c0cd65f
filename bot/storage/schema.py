"""The tables at the newest schema, for the queries (SQLAlchemy Core). The migrations that build them live
in bot/storage/migrations/versions/ and are frozen; a test checks that the two agree on both databases."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

answers = Table(
    "answers",
    metadata,
    Column("answer_id", Text, primary_key=True),
    Column("question", Text, nullable=False),  # '' once erased by the retention setting
    Column("normalized_question", Text, nullable=False, server_default=""),
    Column("passage_ids", Text, nullable=False),  # JSON list, in the order quoted
    Column("index_version", Text, nullable=False),
    Column("kind", Text, nullable=False),  # an AnswerKind value
    Column("platform", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("user_hash", Text, nullable=False),
    Column("created_at", Float, nullable=False),  # unix time
    Column("thread_id", Text, nullable=False, server_default=""),  # schema 3: the conversation
    Column("answer_json", Text, nullable=False, server_default=""),  # schema 4: the Answer, to show it again
    Index("answers_kind", "kind"),
    Index("answers_thread", "platform", "channel_id", "thread_id", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("answer_id", Text, ForeignKey("answers.answer_id"), primary_key=True),
    Column("user_hash", Text, primary_key=True),  # one vote per user per answer (a second click updates it)
    Column("vote", Integer, nullable=False),  # +1 / -1
    Column("question", Text, nullable=False),
    Column("passage_ids", Text, nullable=False),
    Column("index_version", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

threads = Table(
    "threads",
    metadata,
    Column("platform", Text, primary_key=True),
    Column("channel_id", Text, primary_key=True),
    Column("thread_id", Text, primary_key=True),
    Column("created_at", Float, nullable=False),
)
