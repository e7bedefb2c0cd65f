"""SQLite store for answers given, feedback votes and the threads the bot answered in.

One file per install (QABOT_FEEDBACK_DB). Users are stored only as sha256(salt + platform + id) with a
random per-install salt, so the file can be shared for analysis without exposing who asked what.
Safe to use from several threads (one connection guarded by a lock) and from several processes
(WAL journal, busy timeout), e.g. the Slack and Discord containers sharing one volume.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    normalized_question TEXT NOT NULL DEFAULT '',
    passage_ids TEXT NOT NULL,          -- JSON list, in the order quoted
    index_version TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- 'answer' | 'abstain'
    platform TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    created_at REAL NOT NULL            -- unix time
);
CREATE INDEX IF NOT EXISTS answers_kind ON answers(kind);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT NOT NULL REFERENCES answers(answer_id),
    user_hash TEXT NOT NULL,
    vote INTEGER NOT NULL,              -- +1 / -1
    question TEXT NOT NULL,
    passage_ids TEXT NOT NULL,
    index_version TEXT NOT NULL,
    platform TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (answer_id, user_hash)  -- one vote per user per answer; a second click updates it
);
CREATE TABLE IF NOT EXISTS threads (
    platform TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (platform, channel_id, thread_id)
);
"""


class UnknownAnswerError(KeyError):
    """No answer with that id was recorded (e.g. the button predates a database reset)."""


@dataclass(frozen=True)
class StoredAnswer:
    answer_id: str
    question: str
    normalized_question: str
    passage_ids: tuple[str, ...]
    index_version: str
    kind: str
    platform: str
    channel_id: str
    user_hash: str
    created_at: float


@dataclass(frozen=True)
class VoteTotals:
    answer: StoredAnswer
    up: int
    down: int

    @property
    def net(self) -> int:
        return self.up - self.down


class FeedbackStore:
    def __init__(self, path: str | Path, *, clock=time.time):
        self.path = Path(path)
        self._clock = clock
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout = 10000")
            if str(path) != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            self._salt = self._load_salt()

    # ---- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this qabot understands "
                f"({SCHEMA_VERSION}); upgrade qabot or point QABOT_FEEDBACK_DB at another file"
            )
        if version < 1:
            # idempotent (IF NOT EXISTS), so two processes creating the file at once is harmless
            self._conn.executescript(_SCHEMA_V1)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # later versions: `if version < 2: ...` here

    def _load_salt(self) -> str:
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'user_salt'").fetchone()
            if row:
                return row[0]
            salt = secrets.token_hex(16)
            conn.execute("INSERT INTO meta(key, value) VALUES ('user_salt', ?)", (salt,))
            return salt

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def hash_user(self, platform: str, user_id: str) -> str:
        return hashlib.sha256(f"{self._salt}:{platform}:{user_id}".encode()).hexdigest()

    # ---- answers -------------------------------------------------------------------------------

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
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO answers(answer_id, question, normalized_question, passage_ids, index_version, "
                "kind, platform, channel_id, user_hash, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    answer_id,
                    question,
                    normalized_question,
                    json.dumps(list(passage_ids)),
                    index_version,
                    kind,
                    platform,
                    channel_id,
                    self.hash_user(platform, user_id),
                    self._clock(),
                ),
            )

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
        return _answer(row) if row else None

    def answers(self, *, kind: str | None = None) -> list[StoredAnswer]:
        with self._lock:
            if kind is None:
                rows = self._conn.execute("SELECT * FROM answers ORDER BY created_at").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT * FROM answers WHERE kind = ? ORDER BY created_at", (kind,)
                ).fetchall()
        return [_answer(r) for r in rows]

    def answer_count(self, *, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM answers WHERE kind = ?", (kind,)).fetchone()[0]

    # ---- votes ---------------------------------------------------------------------------------

    def record_vote(self, answer_id: str, vote: int, *, platform: str, user_id: str, channel_id: str) -> str:
        """Store one user's vote on an answer. Returns 'new', 'updated' or 'unchanged'.

        Raises UnknownAnswerError when no such answer was recorded.
        """
        if vote not in (1, -1):
            raise ValueError(f"vote must be +1 or -1, got {vote!r}")
        user_hash = self.hash_user(platform, user_id)
        now = self._clock()
        with self._tx() as conn:
            answer = conn.execute("SELECT * FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
            if answer is None:
                raise UnknownAnswerError(answer_id)
            old = conn.execute(
                "SELECT vote FROM feedback WHERE answer_id = ? AND user_hash = ?", (answer_id, user_hash)
            ).fetchone()
            if old is None:
                conn.execute(
                    "INSERT INTO feedback(answer_id, user_hash, vote, question, passage_ids, index_version, "
                    "platform, channel_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        answer_id,
                        user_hash,
                        int(vote),
                        answer["question"],
                        answer["passage_ids"],
                        answer["index_version"],
                        platform,
                        channel_id,
                        now,
                        now,
                    ),
                )
                return "new"
            if old["vote"] == int(vote):
                return "unchanged"
            conn.execute(
                "UPDATE feedback SET vote = ?, updated_at = ?, channel_id = ? WHERE answer_id = ? AND user_hash = ?",
                (int(vote), now, channel_id, answer_id, user_hash),
            )
            return "updated"

    def feedback_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]

    def votes(self) -> list[dict]:
        """Every stored vote as a dict (for tests and exports); user ids are hashes."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM feedback ORDER BY created_at").fetchall()
        return [dict(r) | {"passage_ids": json.loads(r["passage_ids"])} for r in rows]

    def vote_totals(self) -> list[VoteTotals]:
        """Per answer that received votes: up and down counts."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT a.*, SUM(f.vote > 0) AS up, SUM(f.vote < 0) AS down "
                "FROM feedback f JOIN answers a ON a.answer_id = f.answer_id GROUP BY a.answer_id"
            ).fetchall()
        return [VoteTotals(_answer(r), int(r["up"] or 0), int(r["down"] or 0)) for r in rows]

    # ---- threads the bot answered in -------------------------------------------------------------

    def remember_thread(self, platform: str, channel_id: str, thread_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO threads(platform, channel_id, thread_id, created_at) VALUES (?,?,?,?)",
                (platform, channel_id, thread_id, self._clock()),
            )

    def is_bot_thread(self, platform: str, channel_id: str, thread_id: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM threads WHERE platform = ? AND channel_id = ? AND thread_id = ?",
                (platform, channel_id, thread_id),
            ).fetchone()
        return row is not None


def _answer(row: sqlite3.Row) -> StoredAnswer:
    return StoredAnswer(
        answer_id=row["answer_id"],
        question=row["question"],
        normalized_question=row["normalized_question"],
        passage_ids=tuple(json.loads(row["passage_ids"])),
        index_version=row["index_version"],
        kind=row["kind"],
        platform=row["platform"],
        channel_id=row["channel_id"],
        user_hash=row["user_hash"],
        created_at=row["created_at"],
    )
