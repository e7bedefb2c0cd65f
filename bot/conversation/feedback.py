"""The feedback store under its old name: the answer log, votes and thread memory now live in bot/storage
(SQLAlchemy Core with Alembic migrations; an SQLite file by default, PostgreSQL for replicas), behind the
Protocols of bot/conversation/stores.py. Existing SQLite files (schemas 1-3) open and keep their rows."""

from bot.conversation.stores import StoredAnswer, UnknownAnswerError, VoteTotals
from bot.storage.errors import OPEN_BUSY_TIMEOUT_S, FeedbackDatabaseError
from bot.storage.store import (
    DEFAULT_BUSY_TIMEOUT_S,
    MAX_PENDING_ROWS,
    RETENTION_CHECK_INTERVAL_S,
    SCHEMA_VERSION,
    USER_HASH_SCHEME,
    FeedbackStore,
    clean_text,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "MAX_PENDING_ROWS",
    "OPEN_BUSY_TIMEOUT_S",
    "RETENTION_CHECK_INTERVAL_S",
    "SCHEMA_VERSION",
    "USER_HASH_SCHEME",
    "FeedbackDatabaseError",
    "FeedbackStore",
    "StoredAnswer",
    "UnknownAnswerError",
    "VoteTotals",
    "clean_text",
]
