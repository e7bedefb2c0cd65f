"""The databases the storage tests run against: every test that takes `database` (or `store`, which opens
one) runs once on an SQLite file and once on a fresh database of the session's real PostgreSQL server
(tests/postgres.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import PostgresServer, pg_server

__all__ = ["BACKENDS", "TestDatabase", "WriteLock", "database", "pg_server"]

BACKENDS = ("sqlite", "postgresql")
TABLES = ("answers", "feedback", "threads", "watched_channels", "taught", "teach_offers", "meta")


@dataclass
class TestDatabase:
    __test__ = False  # not a test class

    backend: str
    where: str | Path  # the SQLite file, or the PostgreSQL URL
    server: PostgresServer | None = None

    @property
    def path(self) -> Path | None:
        return self.where if isinstance(self.where, Path) else None

    def open(self, **kw: Any):
        """A FeedbackStore on this database (a new process would open the same)."""
        from bot.storage import FeedbackStore

        return FeedbackStore(self.where, **kw)

    def settings_changes(self) -> dict[str, Any]:
        """Settings fields that point qabot at this database."""
        if self.path is not None:
            return {"feedback_db": self.path}
        return {"database_url": str(self.where)}

    def env(self) -> dict[str, str]:
        """Environment variables that point a qabot process at this database."""
        if self.path is not None:
            return {"QABOT_FEEDBACK_DB": str(self.path)}
        return {"QABOT_DATABASE_URL": str(self.where)}

    def connect(self) -> Any:
        """A plain driver connection (sqlite3 / psycopg), outside qabot, autocommitting."""
        if self.path is not None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        import psycopg

        assert self.server is not None
        return psycopg.connect(self.server.dsn(str(self.where).rsplit("/", 1)[1]), autocommit=True)

    def dump(self) -> str:
        """Every row of qabot's tables as text: what someone reading the database would see."""
        lines: list[str] = []
        conn = self.connect()
        try:
            for table in TABLES:
                for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                    lines.append(f"{table}: {row!r}")
        finally:
            conn.close()
        return "\n".join(lines)


class WriteLock:
    """Another program holding the write lock on qabot's tables until released: SQLite's write lock
    (BEGIN IMMEDIATE), or PostgreSQL's EXCLUSIVE table locks (reads go on, writes wait)."""

    def __init__(self, db: TestDatabase):
        self.conn = db.connect()
        if db.path is not None:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('lock-holder', 'another process')")
        else:
            self.conn.execute("BEGIN")
            self.conn.execute(
                "LOCK TABLE answers, feedback, threads, watched_channels, taught, teach_offers, meta IN EXCLUSIVE MODE"
            )

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> Iterator[TestDatabase]:
    """An empty database for this test: an SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield TestDatabase("sqlite", tmp_path / "data" / "qabot.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.take_database()
    try:
        yield TestDatabase("postgresql", url, server)
    finally:
        server.give_back(url)  # emptied (connections the test left open are closed) for the next test
