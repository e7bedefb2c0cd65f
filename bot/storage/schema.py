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
    # schema 5: "<encoder id>:<base64 float16>" of the question ('' for older rows and erased questions)
    Column("question_vector", Text, nullable=False, server_default=""),
    Index("answers_kind", "kind"),
    Index("answers_thread", "platform", "channel_id", "thread_id", "created_at"),
    Index("answers_channel", "platform", "channel_id", "created_at"),
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

# schema 5: a hand-off to people, at most one per thread (the primary key), whoever asks and whenever
handoffs = Table(
    "handoffs",
    metadata,
    Column("platform", Text, primary_key=True),
    Column("channel_id", Text, primary_key=True),
    Column("thread_id", Text, primary_key=True),
    Column("reason", Text, nullable=False),  # abstain | thumbs_down | asked
    Column("answer_id", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
)

watched_channels = Table(
    "watched_channels",  # schema 6: channels answered without a mention (`/qabot watch`)
    metadata,
    Column("platform", Text, primary_key=True),
    Column("channel_id", Text, primary_key=True),
    Column("created_at", Float, nullable=False),
)

# schema 7: what admins taught from chat ("Teach qabot", issue 9 item 3): a passage that answers a question
# (kept by its text, re-attached to each index by it), or "not covered" (passage_text '')
taught = Table(
    "taught",
    metadata,
    Column("pair_id", Integer, primary_key=True, autoincrement=True),
    Column("question", Text, nullable=False),
    Column("normalized_question", Text, nullable=False),
    Column("passage_text", Text, nullable=False),  # '' for "not covered"
    Column("doc_path", Text, nullable=False),
    Column("section", Text, nullable=False),
    Column("passage_id", Text, nullable=False),  # its id in the index it was taught on
    Column("index_version", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("user_hash", Text, nullable=False),  # the admin, as a keyed hash (docs/privacy.md)
    Column("created_at", Float, nullable=False),
    Index("taught_question", "normalized_question"),
    sqlite_autoincrement=True,  # an undone pair's id is never given to another
)

# schema 7: the candidates shown to an admin by "Teach qabot", until one is picked (any replica takes the click)
teach_offers = Table(
    "teach_offers",
    metadata,
    Column("offer_id", Text, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("candidates", Text, nullable=False),  # JSON list of {passage_id, text, doc_path, section}
    Column("index_version", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
