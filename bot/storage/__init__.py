"""Where qabot keeps what outlives a process: the answer log, votes and thread memory, on SQLAlchemy Core
with Alembic migrations, in an SQLite file (default) or PostgreSQL (QABOT_DATABASE_URL). docs/storage.md."""

from bot.storage.errors import FeedbackDatabaseError
from bot.storage.migrate import SCHEMA_VERSION
from bot.storage.store import FeedbackStore
from bot.storage.target import DatabaseTarget, database_target

__all__ = ["SCHEMA_VERSION", "DatabaseTarget", "FeedbackDatabaseError", "FeedbackStore", "database_target"]
