"""Bring a database to the newest schema with Alembic, inside the caller's transaction.

Schema versions are Alembic revisions "0001".."0007" (SCHEMA_VERSION is the newest as a number).

- SQLite files written before Alembic (qabot's own migrations, schemas 1 to 3) carry their version in
  `PRAGMA user_version` and no `alembic_version` table: they are stamped at that revision, then upgraded,
  keeping their rows. Every SQLite file also gets `user_version` = SCHEMA_VERSION after an upgrade, so an
  older qabot, which reads only user_version, refuses a file a newer one wrote instead of damaging it.
- A database at a revision this qabot does not know was written by a newer qabot: refused, untouched.
- Two processes starting at once do not both migrate: on SQLite the caller holds the write lock
  (BEGIN IMMEDIATE); on PostgreSQL a transaction-level advisory lock serialises them, and the second
  finds the schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.storage.errors import FeedbackDatabaseError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA_VERSION = 7
HEAD = f"{SCHEMA_VERSION:04d}"
_PG_MIGRATION_LOCK = 7_146_291_047  # pg_advisory_xact_lock key: "qabot schema"

log = logging.getLogger("bot.conversation.feedback")
# Alembic says "Context impl SQLiteImpl." and the like at INFO every time a database is opened: noise in
# qabot's log (and on the terminal of `qabot run`). qabot logs one line of its own when it migrates.
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _known_revisions() -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}


def sqlite_user_version(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def schema_version(conn: Connection) -> int:
    """The schema the database is at (0: empty)."""
    rev = current_revision(conn)
    if rev is not None:
        return int(rev) if rev.isdigit() else -1
    return sqlite_user_version(conn) if conn.dialect.name == "sqlite" else 0


def refuse_newer(conn: Connection, display: str) -> None:
    """FeedbackDatabaseError when a newer qabot wrote this database; reads only."""
    rev = current_revision(conn)
    newer: str | None = None
    if rev is not None and rev not in _known_revisions():
        newer = f"revision {rev}"
    elif conn.dialect.name == "sqlite" and (version := sqlite_user_version(conn)) > SCHEMA_VERSION:
        newer = str(version)
    if newer is not None:
        raise FeedbackDatabaseError(
            display,
            f"was written by a newer qabot (schema {newer}; this one reads up to {SCHEMA_VERSION})",
            "upgrade qabot, or point QABOT_DATABASE_URL / QABOT_FEEDBACK_DB at another database",
        )


def upgrade(conn: Connection, display: str) -> bool:
    """Migrate to HEAD inside the caller's transaction; True when anything changed."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    refuse_newer(conn, display)  # again, under the lock: another process may have migrated meanwhile
    rev = current_revision(conn)
    if rev == HEAD:
        return False
    cfg = _config(conn)
    before = rev or "empty"
    if rev is None and conn.dialect.name == "sqlite":
        legacy = sqlite_user_version(conn)
        if legacy:  # written by qabot's own migrations (schemas 1-3): its tables are there
            command.stamp(cfg, f"{legacy:04d}")
            before = f"{legacy:04d} (before Alembic)"
    command.upgrade(cfg, HEAD)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
    log.info("feedback database %s: schema %s -> %s", display, before, HEAD)
    return True
