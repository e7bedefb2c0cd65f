"""SQLite store for answers given, feedback votes and the threads the bot answered in.

One file per install (QABOT_FEEDBACK_DB), created for the service user only (folder 0700, file 0600).
Users are stored only as HMAC-SHA256(key, platform:id); the key is derived from QABOT_SECRET_KEY and
never written beside the data (docs/privacy.md). Question texts older than the retention period are
erased (counts and votes stay).

Safe to use from several threads (one connection guarded by a lock) and from several processes (WAL
journal, busy timeout), e.g. the Slack and Discord containers sharing one volume. A write that waits
longer than the busy timeout (another process holding a long write lock) does not fail the answer:
the row is queued in memory and written by a background thread as soon as the lock is released, and
lookups (a vote on that answer, a follow-up in that thread) see queued rows.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.conversation.privacy import hash_user_for_db
from bot.core.errors import QabotError
from bot.core.types import Turn

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
# How long a write waits for another process's lock before its row is queued instead (the answer is
# not held up longer than this), and how long opening the database may wait (start-up only).
DEFAULT_BUSY_TIMEOUT_S = 2.0
OPEN_BUSY_TIMEOUT_S = 10.0
MAX_PENDING_ROWS = 10_000
RETENTION_CHECK_INTERVAL_S = 3600.0
USER_HASH_SCHEME = "hmac-sha256(key derived from QABOT_SECRET_KEY, 'platform:user_id')"

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY,
    question TEXT NOT NULL,             -- '' once erased by the retention setting
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
    PRIMARY KEY (answer_id, user_hash)  -- one vote per user per answer (a second click updates it)
);
CREATE TABLE IF NOT EXISTS threads (
    platform TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (platform, channel_id, thread_id)
)
"""

_FIX_MOVE = "move it away (e.g. `mv {path} {path}.broken`) and qabot starts a new one, or point QABOT_FEEDBACK_DB at another file"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class UnknownAnswerError(KeyError):
    """No answer with that id was recorded (e.g. the button predates a database reset)."""


class FeedbackDatabaseError(QabotError):
    """The feedback database cannot be used; the message is one line that ends with the fix."""

    def __init__(self, path: Path | str, problem: str, fix: str):
        super().__init__(f"the feedback database {path} {problem}. Fix: {fix.replace('{path}', str(path))}.")
        self.problem = problem
        self.fix = fix


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


@dataclass(frozen=True)
class _PendingWrite:
    """A row that waited too long for the database lock; written later, in order."""

    kind: str  # 'answer' | 'vote' | 'thread'
    row: dict[str, Any]


def clean_text(text: str) -> str:
    """Text SQLite can store: a lone surrogate (e.g. "\\ud800" from a JSON escape) becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text) if isinstance(text, str) else str(text)


class FeedbackStore:
    def __init__(
        self,
        path: str | Path,
        *,
        user_key: bytes | None = None,
        retention_days: int = 0,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ):
        """`user_key` keys the user hashes (privacy.Pseudonymizer.db_key); None draws a random key for this
        process. `retention_days` > 0 erases question texts older than that (0 keeps them)."""
        self.path = Path(path)
        self._memory = str(path) == ":memory:"
        self._clock = clock
        self.user_key_is_ephemeral = user_key is None
        self._user_key = user_key or secrets.token_bytes(32)
        self.retention_days = int(retention_days)
        self._busy_ms = max(1, int(busy_timeout_s * 1000))
        self._lock = threading.RLock()  # guards self._conn
        self._flush_lock = threading.Lock()  # one flush of queued rows at a time
        self._pending_lock = threading.Lock()  # guards the queue and its lookups
        self._pending: list[_PendingWrite] = []
        self._pending_answers: dict[str, dict[str, Any]] = {}
        self._pending_threads: set[tuple[str, str, str]] = set()
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        self._next_retention = 0.0
        if not self._memory:
            self._prepare_file()
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect(OPEN_BUSY_TIMEOUT_S)
            self._conn = conn
            with self._lock:
                self._refuse_newer_schema()  # before anything writes to a file a newer qabot owns
                if not self._memory:
                    check = conn.execute("PRAGMA quick_check").fetchone()
                    if check is None or check[0] != "ok":
                        raise sqlite3.DatabaseError("database disk image is malformed")
                    conn.execute("PRAGMA journal_mode = WAL")
                self._migrate()
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if not self._memory:
                self._tighten_permissions()
            self._maybe_erase_old_questions()
        except sqlite3.DatabaseError as err:
            if conn is not None:
                conn.close()
            raise _database_error(self.path, err) from None
        except FeedbackDatabaseError:
            if conn is not None:
                conn.close()
            raise

    # ---- opening -------------------------------------------------------------------------------

    def _prepare_file(self) -> None:
        """The folder (0700) and the file (0600) for this user only, created before SQLite opens it."""
        path, parent = self.path, self.path.parent
        if path.is_dir():
            raise FeedbackDatabaseError(
                path,
                "is a folder, not a file",
                f"remove or rename that folder, or point QABOT_FEEDBACK_DB at a file, e.g. {path / 'qabot.sqlite3'}",
            )
        if not parent.is_dir():
            try:
                parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as err:
                raise FeedbackDatabaseError(
                    path,
                    f"cannot be created: making the folder {parent} failed ({err.strerror or err})",
                    "create that folder for the service user, or point QABOT_FEEDBACK_DB at a writable place",
                ) from None
        if not path.exists():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass  # another process created it a moment ago
            except OSError as err:
                raise FeedbackDatabaseError(
                    path,
                    f"cannot be created ({err.strerror or err})",
                    "make its folder writable by the service user, or point QABOT_FEEDBACK_DB at a writable place",
                ) from None
        elif not path.is_file():
            raise FeedbackDatabaseError(path, "is not a regular file", _FIX_MOVE)
        if not os.access(path, os.R_OK | os.W_OK):
            raise FeedbackDatabaseError(
                path,
                f"is not readable and writable by this user (uid {os.geteuid()})",
                "give it to the service user (`chown`, `chmod 600`), or point QABOT_FEEDBACK_DB at another file",
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FeedbackDatabaseError(
                path,
                f"is in a folder this user (uid {os.geteuid()}) cannot write to (SQLite keeps its -wal and -shm files "
                "next to it)",
                f"make {parent} writable by the service user, or point QABOT_FEEDBACK_DB at another folder",
            )

    def _tighten_permissions(self) -> None:
        """A database (and its -wal/-shm) created world-readable by an older qabot becomes 0600."""
        for candidate in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            try:
                st = candidate.stat()
                if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                    os.chmod(candidate, stat.S_IMODE(st.st_mode) & 0o600)
                    log.info("made %s readable by its owner only (was %o)", candidate, stat.S_IMODE(st.st_mode))
            except OSError:
                continue

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path) if not self._memory else ":memory:",
            timeout=busy_timeout_s,
            check_same_thread=False,
            isolation_level=None,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # erased questions are overwritten, not just unlinked
        return conn

    def _refuse_newer_schema(self) -> int:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FeedbackDatabaseError(
                self.path,
                f"was written by a newer qabot (schema {version}; this one reads up to {SCHEMA_VERSION})",
                "upgrade qabot, or point QABOT_FEEDBACK_DB at another file",
            )
        return version

    def _migrate(self) -> None:
        if self._refuse_newer_schema() == SCHEMA_VERSION:
            return
        had_salt = False
        with self._tx() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version < 1:
                for statement in _SCHEMA_V1.split(";"):
                    conn.execute(statement)
            if version < 2:
                # v1 kept the salt of its user hashes in this file, which made them reversible for anyone
                # who could read it. The salt is destroyed; old hashes stay as opaque ids (docs/privacy.md).
                had_salt = conn.execute("DELETE FROM meta WHERE key = 'user_salt'").rowcount > 0
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('user_hash', ?)", (USER_HASH_SCHEME,))
            if version < 3:
                # the thread an answer was given in: a follow-up there is read with the turns before it
                conn.execute("ALTER TABLE answers ADD COLUMN thread_id TEXT NOT NULL DEFAULT ''")
                conn.execute(
                    "CREATE INDEX IF NOT EXISTS answers_thread ON answers(platform, channel_id, thread_id, created_at)"
                )
            if version < 4:
                # channels where the bot answers questions without a mention (`/qabot watch`)
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS watched_channels (platform TEXT NOT NULL, channel_id TEXT NOT NULL, "
                    "created_at REAL NOT NULL, PRIMARY KEY (platform, channel_id))"
                )
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if had_salt:
            self._checkpoint()
            log.info("feedback database migrated to schema %s: the stored user-hash salt was erased", SCHEMA_VERSION)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so erased text does not linger in the -wal file."""
        if not self._memory:
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._closed.set()
        flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout=5)
        if self.pending_count:
            try:
                self._flush_with(self._conn)  # one last try with the full busy timeout
            except sqlite3.Error as err:
                log.error(
                    "%d feedback rows could not be written before closing (%s); they are lost", self.pending_count, err
                )
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
        return hash_user_for_db(self._user_key, platform, user_id)

    # ---- rows that waited too long for the lock ---------------------------------------------------

    @property
    def pending_count(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def _has_pending(self) -> bool:
        with self._pending_lock:
            return bool(self._pending)

    def _enqueue(self, write: _PendingWrite, reason: object) -> None:
        with self._pending_lock:
            if len(self._pending) >= MAX_PENDING_ROWS:
                dropped = self._pending.pop(0)
                log.error("feedback queue full: dropped the oldest queued %s row", dropped.kind)
                self._forget(dropped)
            first = not self._pending
            self._pending.append(write)
            if write.kind == "answer":
                self._pending_answers[write.row["answer_id"]] = write.row
            elif write.kind == "thread":
                self._pending_threads.add((write.row["platform"], write.row["channel_id"], write.row["thread_id"]))
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(target=self._flush_loop, name="qabot-feedback-writer", daemon=True)
                self._flusher.start()
        if first:
            log.warning("feedback database busy (%s): queueing rows until it is free", reason)

    def _forget(self, write: _PendingWrite) -> None:
        if write.kind == "answer":
            self._pending_answers.pop(write.row["answer_id"], None)
        elif write.kind == "thread":
            self._pending_threads.discard((write.row["platform"], write.row["channel_id"], write.row["thread_id"]))

    def _flush_with(self, conn: sqlite3.Connection) -> int:
        """Write every queued row in one transaction on `conn`; returns how many were written."""
        with self._flush_lock:
            with self._pending_lock:
                batch = list(self._pending)
            if not batch:
                return 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for write in batch:
                    self._apply(conn, write)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            with self._pending_lock:
                del self._pending[: len(batch)]
                for write in batch:
                    self._forget(write)
            log.info("feedback database free again: wrote %d queued rows", len(batch))
            return len(batch)

    def _flush_loop(self) -> None:
        delay = 0.2
        conn = None
        try:
            conn = self._connect(min(0.5, self._busy_ms / 1000)) if not self._memory else None
            while self._has_pending() and not self._closed.is_set():
                try:
                    if conn is not None:
                        self._flush_with(conn)
                    else:
                        with self._lock:
                            self._flush_with(self._conn)
                    delay = 0.2
                except sqlite3.OperationalError:
                    self._closed.wait(delay)
                    delay = min(delay * 2, 5.0)
        except Exception:  # keep the rows queued; close() tries once more and reports what is left
            log.exception("the feedback writer stopped")
        finally:
            if conn is not None:
                conn.close()

    def _apply(self, conn: sqlite3.Connection, write: _PendingWrite, *, queued: bool = True) -> str:
        row = write.row
        if write.kind == "answer":
            conn.execute(
                "INSERT OR IGNORE INTO answers(answer_id, question, normalized_question, passage_ids, index_version, "
                "kind, platform, channel_id, user_hash, created_at, thread_id) VALUES (:answer_id, :question, "
                ":normalized_question, :passage_ids, :index_version, :kind, :platform, :channel_id, :user_hash, "
                ":created_at, :thread_id)",
                row,
            )
            return "stored"
        if write.kind == "thread":
            conn.execute(
                "INSERT OR IGNORE INTO threads(platform, channel_id, thread_id, created_at) "
                "VALUES (:platform, :channel_id, :thread_id, :created_at)",
                row,
            )
            return "stored"
        try:
            return self._apply_vote(conn, **row)
        except UnknownAnswerError:
            if not queued:
                raise
            log.warning("dropped a queued vote: its answer was never stored")
            return "unknown"

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
        thread_id: str = "",
    ) -> str:
        """Store one answer. Returns 'stored', or 'queued' when the database was locked for longer than the
        busy timeout (the row is written as soon as it is free; votes on it work meanwhile). `thread_id`:
        the conversation it belongs to (its turns are the context of the next follow-up there)."""
        write = _PendingWrite(
            "answer",
            {
                "answer_id": clean_text(answer_id),
                "question": clean_text(question),
                "normalized_question": clean_text(normalized_question),
                "passage_ids": json.dumps([clean_text(p) for p in passage_ids]),
                "index_version": clean_text(index_version),
                "kind": clean_text(kind),
                "platform": clean_text(platform),
                "channel_id": clean_text(channel_id),
                "user_hash": self.hash_user(platform, user_id),
                "created_at": self._clock(),
                "thread_id": clean_text(thread_id),
            },
        )
        self._maybe_erase_old_questions()
        return self._write(write)

    def _write(self, write: _PendingWrite) -> str:
        with self._lock:
            if self._has_pending():  # keep the order: behind what is already waiting
                self._enqueue(write, "rows already queued")
                return "queued"
            try:
                with self._tx() as conn:
                    return self._apply(conn, write, queued=False)
            except sqlite3.OperationalError as err:
                self._enqueue(write, err)
                return "queued"

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._pending_lock:
            queued = self._pending_answers.get(answer_id)
        if queued is not None:
            return _answer(queued)
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

    # ---- retention -----------------------------------------------------------------------------

    def erase_old_questions(self) -> int:
        """Erase the text of questions older than the retention period (answers, votes and counts stay).
        Returns how many answers lost their text."""
        now = self._clock()
        self._next_retention = now + RETENTION_CHECK_INTERVAL_S
        if self.retention_days <= 0:
            return 0
        cutoff = now - self.retention_days * 86400.0
        with self._tx() as conn:
            erased = conn.execute(
                "UPDATE answers SET question = '', normalized_question = '' "
                "WHERE created_at < ? AND (question != '' OR normalized_question != '')",
                (cutoff,),
            ).rowcount
            conn.execute(
                "UPDATE feedback SET question = '' WHERE question != '' AND answer_id IN "
                "(SELECT answer_id FROM answers WHERE created_at < ?)",
                (cutoff,),
            )
        if erased:
            self._checkpoint()
            log.info("erased the text of %d questions older than %d days", erased, self.retention_days)
        return erased

    def _maybe_erase_old_questions(self) -> None:
        if self.retention_days > 0 and self._clock() >= self._next_retention and not self._has_pending():
            try:
                self.erase_old_questions()
            except sqlite3.OperationalError as err:  # busy: try again at the next check
                log.warning("could not erase old questions now (%s)", err)

    # ---- votes ---------------------------------------------------------------------------------

    def record_vote(self, answer_id: str, vote: int, *, platform: str, user_id: str, channel_id: str) -> str:
        """Store one user's vote on an answer. Returns 'new', 'updated', 'unchanged', or 'queued' when the
        database is locked (the vote is written, in order, once it is free).

        Raises UnknownAnswerError when no such answer was recorded.
        """
        if vote not in (1, -1):
            raise ValueError(f"vote must be +1 or -1, got {vote!r}")
        write = _PendingWrite(
            "vote",
            {
                "answer_id": clean_text(answer_id),
                "vote": int(vote),
                "user_hash": self.hash_user(platform, user_id),
                "platform": clean_text(platform),
                "channel_id": clean_text(channel_id),
                "now": self._clock(),
            },
        )
        with self._lock:
            if self._has_pending():
                # the answer may be among the queued rows: write them first, then the vote, in one go
                try:
                    self._flush_with(self._conn)
                except sqlite3.OperationalError as err:
                    if self.get_answer(answer_id) is None:
                        raise UnknownAnswerError(answer_id) from None
                    self._enqueue(write, err)
                    return "queued"
            return self._write(write)

    def _apply_vote(
        self,
        conn: sqlite3.Connection,
        *,
        answer_id: str,
        vote: int,
        user_hash: str,
        platform: str,
        channel_id: str,
        now: float,
    ) -> str:
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
                    vote,
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
        if old["vote"] == vote:
            return "unchanged"
        conn.execute(
            "UPDATE feedback SET vote = ?, updated_at = ?, channel_id = ? WHERE answer_id = ? AND user_hash = ?",
            (vote, now, channel_id, answer_id, user_hash),
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
        self._write(
            _PendingWrite(
                "thread",
                {
                    "platform": clean_text(platform),
                    "channel_id": clean_text(channel_id),
                    "thread_id": clean_text(thread_id),
                    "created_at": self._clock(),
                },
            )
        )

    def thread_turns(self, platform: str, channel_id: str, thread_id: str, *, limit: int = 3) -> list[Turn]:
        """The last `limit` questions asked in a thread and the passages quoted for them, oldest first
        (questions erased by the retention setting are left out)."""
        if not thread_id:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT question, passage_ids FROM answers WHERE platform = ? AND channel_id = ? AND thread_id = ? "
                "AND question != '' ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (platform, channel_id, thread_id, int(limit)),
            ).fetchall()
        return [Turn(r["question"], tuple(json.loads(r["passage_ids"]))) for r in reversed(rows)]

    def is_bot_thread(self, platform: str, channel_id: str, thread_id: str) -> bool:
        with self._pending_lock:
            if (platform, channel_id, thread_id) in self._pending_threads:
                return True
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM threads WHERE platform = ? AND channel_id = ? AND thread_id = ?",
                (platform, channel_id, thread_id),
            ).fetchone()
        return row is not None

    # ---- watched channels (answered without a mention) --------------------------------------------

    def set_watched(self, platform: str, channel_id: str, watched: bool) -> bool:
        """Watch a channel or stop watching it; True when that changed something."""
        with self._tx() as conn:
            if watched:
                sql = "INSERT OR IGNORE INTO watched_channels(platform, channel_id, created_at) VALUES (?, ?, ?)"
                return conn.execute(sql, (clean_text(platform), clean_text(channel_id), self._clock())).rowcount > 0
            sql = "DELETE FROM watched_channels WHERE platform = ? AND channel_id = ?"
            return conn.execute(sql, (clean_text(platform), clean_text(channel_id))).rowcount > 0

    def watched_channels(self, platform: str) -> frozenset[str]:
        """The ids of the channels watched on `platform`."""
        with self._lock:
            rows = self._conn.execute("SELECT channel_id FROM watched_channels WHERE platform = ?", (platform,))
            return frozenset(r["channel_id"] for r in rows.fetchall())


def _answer(row: sqlite3.Row | dict[str, Any]) -> StoredAnswer:
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


def _database_error(path: Path, err: sqlite3.DatabaseError) -> FeedbackDatabaseError:
    """One line naming what is wrong with the file and what to do about it."""
    text = str(err)
    if "file is not a database" in text:
        return FeedbackDatabaseError(path, "is not an SQLite database (damaged or another kind of file)", _FIX_MOVE)
    if "malformed" in text or "corrupt" in text:
        return FeedbackDatabaseError(path, "is damaged (truncated or overwritten)", _FIX_MOVE)
    if "readonly" in text or "read-only" in text:
        return FeedbackDatabaseError(
            path, "is read-only for this user", "give it to the service user (`chown`, `chmod 600`)"
        )
    if "locked" in text or "busy" in text:
        return FeedbackDatabaseError(
            path,
            f"stayed locked by another process for {OPEN_BUSY_TIMEOUT_S:.0f} s",
            "stop whatever holds it (a long transaction in another program) and start qabot again",
        )
    if "unable to open" in text:
        return FeedbackDatabaseError(
            path, "cannot be opened", "check that its folder exists and is writable by the service user"
        )
    return FeedbackDatabaseError(path, f"cannot be used ({text})", _FIX_MOVE)
