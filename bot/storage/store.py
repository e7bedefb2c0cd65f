"""The answer log, votes and thread memory (bot/conversation/stores.py) on SQLAlchemy Core, in an SQLite file
(the default, one process or several sharing a volume) or in PostgreSQL (replicas; QABOT_DATABASE_URL).

- Schema: Alembic migrations run when the store opens (bot/storage/migrate.py); SQLite files of older
  qabots (schemas 1-3) open and keep their rows; a database of a newer qabot is refused, untouched.
- Users are stored only as HMAC-SHA256(key, platform:id); the key is derived from QABOT_SECRET_KEY and
  never written beside the data (docs/privacy.md). Question texts older than the retention period are
  erased (counts and votes stay).
- SQLite: the folder (0700) and the file (0600) for the service user only; WAL journal, busy timeout,
  secure_delete (erased text is overwritten). Writes from this process go one at a time.
- A write that cannot be done now (SQLite: another process held the write lock longer than the busy
  timeout; PostgreSQL: a lock held longer than the same timeout, or the server unreachable) does not
  fail the answer: the row is queued in memory and written by a background thread, in order, as soon as
  the database takes it; lookups (a vote on that answer, a follow-up in that thread) see queued rows.

Safe to use from several threads; every method is synchronous.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Row, case, create_engine, delete, event, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from bot.conversation.privacy import hash_user_for_db
from bot.conversation.stores import StoredAnswer, TaughtPair, TeachOffer, UnknownAnswerError, VoteTotals
from bot.core.types import Turn
from bot.storage import migrate
from bot.storage.errors import OPEN_BUSY_TIMEOUT_S, FeedbackDatabaseError, server_error, sqlite_error
from bot.storage.schema import answers, feedback, handoffs, taught, teach_offers, threads, watched_channels
from bot.storage.target import DatabaseTarget, database_target

log = logging.getLogger("bot.conversation.feedback")

SCHEMA_VERSION = migrate.SCHEMA_VERSION
# How long a write waits for another process's lock before its row is queued instead (the answer is
# not held up longer than this); opening the database may wait OPEN_BUSY_TIMEOUT_S (start-up only).
DEFAULT_BUSY_TIMEOUT_S = 2.0
FLUSH_WAIT_S = 0.5  # the background writer waits at most this long for a lock, then tries again later
CONNECT_TIMEOUT_S = 5  # a database server that does not answer within this is unreachable for now
MAX_PENDING_ROWS = 10_000
RETENTION_CHECK_INTERVAL_S = 3600.0
USER_HASH_SCHEME = "hmac-sha256(key derived from QABOT_SECRET_KEY, 'platform:user_id')"

# text no database should get: lone surrogates (e.g. "\ud800" from a JSON escape; SQLite and PostgreSQL
# cannot encode them) and NUL (PostgreSQL's text refuses it)
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def clean_text(text: str) -> str:
    """Text every database can store: a lone surrogate or a NUL becomes U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text) if isinstance(text, str) else str(text)


@dataclass(frozen=True)
class _PendingWrite:
    """A row that could not be written when it came; written later, in order."""

    kind: str  # 'answer' | 'vote' | 'thread'
    row: dict[str, Any]


class FeedbackStore:
    """AnswerLog, Votes, ThreadMemory, FeedbackSource, RecentAnswers and Handoffs in one database (see the module's docstring)."""

    def __init__(
        self,
        where: str | Path,
        *,
        user_key: bytes | None = None,
        retention_days: int = 0,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ):
        """`where`: an SQLite file's path (':memory:' for a private in-memory one) or a database URL
        (sqlite:///PATH, postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB). `user_key` keys the user hashes
        (privacy.Pseudonymizer.db_key); None draws a random key for this process. `retention_days` > 0
        erases question texts older than that (0 keeps them). Raises FeedbackDatabaseError (one line, with
        the fix) when the database cannot be used, and ConfigError for a URL qabot cannot use."""
        self.target: DatabaseTarget = database_target(where)
        self.path: Path | None = self.target.path
        self.display = self.target.display
        self._sqlite = self.target.backend == "sqlite"
        self._memory = self.target.memory
        self._clock = clock
        self.user_key_is_ephemeral = user_key is None
        self._user_key = user_key or secrets.token_bytes(32)
        self.retention_days = int(retention_days)
        self._busy_s = max(0.001, float(busy_timeout_s))
        # SQLite takes one writer at a time: this process's writes queue here rather than in SQLite's
        # busy handler; an in-memory database is one connection, so reads take it too
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()  # one flush of queued rows at a time
        self._pending_lock = threading.Lock()  # guards the queue and its lookups
        self._pending: list[_PendingWrite] = []
        self._pending_answers: dict[str, dict[str, Any]] = {}
        self._pending_threads: set[tuple[str, str, str]] = set()
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        self._next_retention = 0.0
        if self.path is not None:
            self._prepare_file()
        self._engine = self._create_engine()
        self._writer = self._engine.execution_options(qabot_write=True)
        try:
            changed = self._open()
        except FeedbackDatabaseError:
            self._engine.dispose()
            raise
        except DBAPIError as err:
            self._engine.dispose()
            raise self._error(err.orig if err.orig is not None else err) from None
        if changed:
            self._checkpoint()  # e.g. schema 1's erased salt must not linger in the -wal file
        if self.path is not None:
            self._tighten_permissions()
        self._maybe_erase_old_questions()

    # ---- opening -------------------------------------------------------------------------------

    def _error(self, err: BaseException) -> FeedbackDatabaseError:
        return sqlite_error(self.display, err) if self._sqlite else server_error(self.display, err)

    def _prepare_file(self) -> None:
        """The folder (0700) and the file (0600) for this user only, created before SQLite opens it."""
        assert self.path is not None
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
            raise FeedbackDatabaseError(
                path, "is not a regular file", "move it away, or point QABOT_FEEDBACK_DB at a file"
            )
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

    def _create_engine(self) -> Engine:
        if self._memory:
            return create_engine(self.target.url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        if self._sqlite:
            engine = create_engine(self.target.url, connect_args={"timeout": self._busy_s})
            busy_ms = int(self._busy_s * 1000)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # transactions are begun below, as reads or as writes
                for pragma in (
                    f"busy_timeout = {busy_ms}",
                    "foreign_keys = ON",
                    "secure_delete = ON",  # erased questions are overwritten, not just unlinked
                ):
                    dbapi_conn.execute(f"PRAGMA {pragma}")

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # a write takes the lock first (IMMEDIATE), so it waits in the busy handler instead of
                # failing half-way when another process writes; a read never blocks a writer (WAL)
                immediate = conn.get_execution_options().get("qabot_write")
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        lock_ms = int(self._busy_s * 1000)
        return create_engine(
            self.target.url,
            pool_pre_ping=True,  # a connection the server dropped (restart, failover) is replaced
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "options": f"-c lock_timeout={lock_ms}"},
        )

    def _open(self) -> bool:
        """Check and migrate; True when the schema changed."""
        with self._engine.connect() as conn:
            raw = conn.connection.driver_connection if self._sqlite else None
            if raw is not None:
                raw.execute(f"PRAGMA busy_timeout = {int(OPEN_BUSY_TIMEOUT_S * 1000)}")
            try:
                migrate.refuse_newer(conn, self.display)  # before anything writes to a newer qabot's database
                conn.rollback()
                if raw is not None and not self._memory:
                    check = raw.execute("PRAGMA quick_check").fetchone()
                    if check is None or check[0] != "ok":
                        raise sqlite_error(self.display, Exception("database disk image is malformed"))
                    raw.execute("PRAGMA journal_mode = WAL")
                conn.execution_options(qabot_write=True)
                with conn.begin():
                    return migrate.upgrade(conn, self.display)
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(self._busy_s * 1000)}")

    # ---- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock if self._memory else nullcontext(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._lock, self._writer.begin() as conn:
            yield conn

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so erased text does not linger in the -wal file."""
        if self._sqlite and not self._memory:
            with self._lock, self._engine.connect() as conn:
                conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._closed.set()
        flusher = self._flusher
        if flusher is not None:
            flusher.join(timeout=5)
        if self.pending_count:
            try:
                self._flush(wait_s=self._busy_s)  # one last try with the full busy timeout
            except DBAPIError as err:
                log.error(
                    "%d feedback rows could not be written before closing (%s); they are lost",
                    self.pending_count,
                    type(err.orig or err).__name__,
                )
        self._engine.dispose()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackStore({self.display!r})"

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.target.backend

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return migrate.schema_version(conn)

    def hash_user(self, platform: str, user_id: str) -> str:
        return hash_user_for_db(self._user_key, platform, user_id)

    def _insert_ignore(self, table: Any, row: dict[str, Any]) -> Any:
        insert = sqlite_insert if self._sqlite else pg_insert
        return insert(table).values(**row).on_conflict_do_nothing()

    # ---- rows that waited --------------------------------------------------------------------------

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
            log.warning("feedback database busy or unreachable (%s): queueing rows until it takes them", reason)

    def _forget(self, write: _PendingWrite) -> None:
        if write.kind == "answer":
            self._pending_answers.pop(write.row["answer_id"], None)
        elif write.kind == "thread":
            self._pending_threads.discard((write.row["platform"], write.row["channel_id"], write.row["thread_id"]))

    def _flush(self, *, wait_s: float) -> int:
        """Write every queued row in one transaction, waiting at most `wait_s` for a lock; returns how many
        were written. Raises OperationalError when the database does not take them yet."""
        # lock order: _lock (in-memory database only), then _flush_lock, as in record_vote
        with self._lock if self._memory else nullcontext(), self._flush_lock:
            with self._pending_lock:
                batch = list(self._pending)
            if not batch:
                return 0
            with self._writer.connect() as conn:
                raw = conn.connection.driver_connection if self._sqlite else None
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
                try:
                    with conn.begin():
                        if raw is None:  # PostgreSQL: for this transaction only
                            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait_s * 1000)}")
                        for write in batch:
                            self._apply(conn, write)
                finally:
                    if raw is not None:
                        raw.execute(f"PRAGMA busy_timeout = {int(self._busy_s * 1000)}")
            with self._pending_lock:
                del self._pending[: len(batch)]
                for write in batch:
                    self._forget(write)
            log.info("feedback database free again: wrote %d queued rows", len(batch))
            return len(batch)

    def _flush_loop(self) -> None:
        delay = 0.2
        try:
            while self._has_pending() and not self._closed.is_set():
                try:
                    self._flush(wait_s=min(FLUSH_WAIT_S, self._busy_s))
                    delay = 0.2
                except OperationalError:
                    self._closed.wait(delay)
                    delay = min(delay * 2, 5.0)
        except Exception:  # keep the rows queued; close() tries once more and reports what is left
            log.exception("the feedback writer stopped")

    def _write(self, write: _PendingWrite) -> str:
        with self._lock:
            if self._has_pending():  # keep the order: behind what is already waiting
                self._enqueue(write, "rows already queued")
                return "queued"
            try:
                with self._tx() as conn:
                    return self._apply(conn, write, queued=False)
            except OperationalError as err:
                self._enqueue(write, type(err.orig or err).__name__)
                return "queued"

    def _apply(self, conn: Connection, write: _PendingWrite, *, queued: bool = True) -> str:
        if write.kind == "answer":
            conn.execute(self._insert_ignore(answers, write.row))
            return "stored"
        if write.kind == "thread":
            conn.execute(self._insert_ignore(threads, write.row))
            return "stored"
        try:
            return self._apply_vote(conn, **write.row)
        except UnknownAnswerError:
            if not queued:
                raise
            log.warning("dropped a queued vote: its answer was never stored")
            return "unknown"

    # ---- AnswerLog -----------------------------------------------------------------------------

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
        """Store one answer. Returns 'stored', or 'queued' when the database could not take it now (it is
        written as soon as it can; votes on it work meanwhile). `thread_id`: the conversation it belongs to
        (its turns are the context of the next follow-up there). `answer_json`: the answer as shown, without
        the question, to show it again (e.g. Slack's "Share in channel", on any replica)."""
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
                "answer_json": clean_text(answer_json),
                "question_vector": clean_text(question_vector),
            },
        )
        self._maybe_erase_old_questions()
        return self._write(write)

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._pending_lock:
            queued = self._pending_answers.get(answer_id)
        if queued is not None:
            return _answer(queued)
        with self._read() as conn:
            row = conn.execute(select(answers).where(answers.c.answer_id == answer_id)).mappings().first()
        return _answer(row) if row else None

    # ---- FeedbackSource --------------------------------------------------------------------------

    def answers(self, *, kind: str | None = None) -> list[StoredAnswer]:
        query = select(answers).order_by(answers.c.created_at)
        if kind is not None:
            query = query.where(answers.c.kind == kind)
        with self._read() as conn:
            return [_answer(r) for r in conn.execute(query).mappings()]

    def answer_count(self, *, kind: str | None = None) -> int:
        query = select(func.count()).select_from(answers)
        if kind is not None:
            query = query.where(answers.c.kind == kind)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def vote_totals(self) -> list[VoteTotals]:
        """Per answer that received votes: up and down counts."""
        per_answer = (
            select(
                feedback.c.answer_id,
                func.sum(case((feedback.c.vote > 0, 1), else_=0)).label("up"),
                func.sum(case((feedback.c.vote < 0, 1), else_=0)).label("down"),
            )
            .group_by(feedback.c.answer_id)
            .subquery()
        )
        query = select(answers, per_answer.c.up, per_answer.c.down).join(
            per_answer, per_answer.c.answer_id == answers.c.answer_id
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [VoteTotals(_answer(r), int(r["up"] or 0), int(r["down"] or 0)) for r in rows]

    # ---- RecentAnswers ---------------------------------------------------------------------------

    def recent_answers(
        self, platform: str, channel_id: str, *, since: float, kinds: Sequence[str], limit: int = 500
    ) -> list[StoredAnswer]:
        query = (
            select(answers)
            .where(
                answers.c.platform == platform,
                answers.c.channel_id == channel_id,
                answers.c.created_at >= since,
                answers.c.kind.in_(list(kinds)),
                answers.c.question != "",
            )
            .order_by(answers.c.created_at.desc())
            .limit(int(limit))
        )
        with self._read() as conn:
            return [_answer(r) for r in conn.execute(query).mappings()]

    # ---- Handoffs --------------------------------------------------------------------------------

    def claim_handoff(
        self, platform: str, channel_id: str, thread_id: str, *, reason: str, answer_id: str = ""
    ) -> bool:
        row = {
            "platform": clean_text(platform),
            "channel_id": clean_text(channel_id),
            "thread_id": clean_text(thread_id),
            "reason": clean_text(reason),
            "answer_id": clean_text(answer_id),
            "created_at": self._clock(),
        }
        with self._tx() as conn:
            inserted = conn.execute(
                self._insert_ignore(handoffs, row).execution_options(preserve_rowcount=True)
            ).rowcount
        return inserted == 1

    def handoff_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(handoffs)).scalar_one())

    # ---- retention -----------------------------------------------------------------------------

    def erase_old_questions(self) -> int:
        """Erase the text of questions older than the retention period (answers, votes and counts stay).
        Returns how many answers lost their text."""
        now = self._clock()
        self._next_retention = now + RETENTION_CHECK_INTERVAL_S
        if self.retention_days <= 0:
            return 0
        cutoff = now - self.retention_days * 86400.0
        old = answers.c.created_at < cutoff
        with self._tx() as conn:
            erased = conn.execute(
                update(answers)
                .where(
                    old,
                    or_(
                        answers.c.question != "",
                        answers.c.normalized_question != "",
                        answers.c.question_vector != "",
                    ),
                )
                .values(question="", normalized_question="", question_vector="")
            ).rowcount
            conn.execute(
                update(feedback)
                .where(feedback.c.question != "", feedback.c.answer_id.in_(select(answers.c.answer_id).where(old)))
                .values(question="")
            )
        if erased:
            self._checkpoint()
            log.info("erased the text of %d questions older than %d days", erased, self.retention_days)
        return erased

    def _maybe_erase_old_questions(self) -> None:
        if self.retention_days > 0 and self._clock() >= self._next_retention and not self._has_pending():
            try:
                self.erase_old_questions()
            except OperationalError as err:  # busy: try again at the next check
                log.warning("could not erase old questions now (%s)", type(err.orig or err).__name__)

    # ---- Votes ---------------------------------------------------------------------------------

    def record_vote(self, answer_id: str, vote: int, *, platform: str, user_id: str, channel_id: str) -> str:
        """Store one user's vote on an answer. Returns 'new', 'updated', 'unchanged', or 'queued' when the
        database could not take it now (the vote is written, in order, as soon as it can).

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
                    self._flush(wait_s=self._busy_s)
                except OperationalError as err:
                    if self.get_answer(answer_id) is None:
                        raise UnknownAnswerError(answer_id) from None
                    self._enqueue(write, type(err.orig or err).__name__)
                    return "queued"
            return self._write(write)

    def _apply_vote(
        self,
        conn: Connection,
        *,
        answer_id: str,
        vote: int,
        user_hash: str,
        platform: str,
        channel_id: str,
        now: float,
    ) -> str:
        answer = conn.execute(
            select(answers.c.question, answers.c.passage_ids, answers.c.index_version).where(
                answers.c.answer_id == answer_id
            )
        ).first()
        if answer is None:
            raise UnknownAnswerError(answer_id)
        row = {
            "answer_id": answer_id,
            "user_hash": user_hash,
            "vote": vote,
            "question": answer.question,
            "passage_ids": answer.passage_ids,
            "index_version": answer.index_version,
            "platform": platform,
            "channel_id": channel_id,
            "created_at": now,
            "updated_at": now,
        }
        # insert-or-nothing, then change: two replicas recording the same person's vote at once agree
        inserted = conn.execute(self._insert_ignore(feedback, row).execution_options(preserve_rowcount=True))
        if inserted.rowcount == 1:
            return "new"
        changed = conn.execute(
            update(feedback)
            .where(feedback.c.answer_id == answer_id, feedback.c.user_hash == user_hash, feedback.c.vote != vote)
            .values(vote=vote, updated_at=now, channel_id=channel_id)
        ).rowcount
        return "updated" if changed else "unchanged"

    def feedback_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one())

    def votes(self) -> list[dict]:
        """Every stored vote as a dict (for tests and exports); user ids are hashes."""
        with self._read() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.created_at)).mappings().all()
        return [dict(r) | {"passage_ids": json.loads(r["passage_ids"])} for r in rows]

    # ---- ThreadMemory --------------------------------------------------------------------------

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
        newest_first = [answers.c.created_at.desc()]
        if self._sqlite:  # answers given within one clock tick: the later row first
            newest_first.append(literal_column("answers.rowid").desc())
        query = (
            select(answers.c.question, answers.c.passage_ids)
            .where(
                answers.c.platform == platform,
                answers.c.channel_id == channel_id,
                answers.c.thread_id == thread_id,
                answers.c.question != "",
            )
            .order_by(*newest_first)
            .limit(int(limit))
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [Turn(r.question, tuple(json.loads(r.passage_ids))) for r in reversed(rows)]

    def is_bot_thread(self, platform: str, channel_id: str, thread_id: str) -> bool:
        with self._pending_lock:
            if (platform, channel_id, thread_id) in self._pending_threads:
                return True
        query = (
            select(literal_column("1"))
            .select_from(threads)
            .where(threads.c.platform == platform, threads.c.channel_id == channel_id, threads.c.thread_id == thread_id)
        )
        with self._read() as conn:
            return conn.execute(query).first() is not None

    # ---- WatchedChannels ---------------------------------------------------------------------------

    def set_watched(self, platform: str, channel_id: str, watched: bool) -> bool:
        """Watch a channel or stop watching it; True when that changed something. An admin's command:
        written now or refused with the error (never queued), so the reply tells the truth."""
        key = {"platform": clean_text(platform), "channel_id": clean_text(channel_id)}
        if watched:
            statement = self._insert_ignore(watched_channels, {**key, "created_at": self._clock()})
            statement = statement.returning(watched_channels.c.channel_id)
        else:
            statement = (
                delete(watched_channels)
                .where(
                    watched_channels.c.platform == key["platform"], watched_channels.c.channel_id == key["channel_id"]
                )
                .returning(watched_channels.c.channel_id)
            )
        try:
            with self._tx() as conn:
                # the row written or deleted, if any (rowcount is not reliable for ON CONFLICT on every driver)
                return conn.execute(statement).first() is not None
        except DBAPIError as err:
            raise self._error(err) from err

    def watched_channels(self, platform: str) -> frozenset[str]:
        """The ids of the channels watched on `platform`."""
        query = select(watched_channels.c.channel_id).where(watched_channels.c.platform == platform)
        with self._read() as conn:
            return frozenset(r.channel_id for r in conn.execute(query).all())

    # ---- TaughtPairs and TeachOffers (schema 7) ------------------------------------------------------

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
        """Store a taught pair (passage_text '' for "not covered"); a pair taught before for the same
        normalised question is replaced. Returns (the new pair, the pairs it replaced). An admin's command:
        written now or refused with FeedbackDatabaseError (never queued)."""
        row = {
            "question": clean_text(question),
            "normalized_question": clean_text(normalized_question),
            "passage_text": clean_text(passage_text),
            "doc_path": clean_text(doc_path),
            "section": clean_text(section),
            "passage_id": clean_text(passage_id),
            "index_version": clean_text(index_version),
            "platform": clean_text(platform),
            "user_hash": self.hash_user(platform, user_id),
            "created_at": self._clock(),
        }
        try:
            with self._tx() as conn:
                replaced = (
                    conn.execute(
                        delete(taught)
                        .where(taught.c.normalized_question == row["normalized_question"])
                        .returning(taught)
                    )
                    .mappings()
                    .all()
                )
                new = conn.execute(taught.insert().values(**row).returning(taught)).mappings().one()
        except DBAPIError as err:
            raise self._error(err) from err
        return _taught(new), tuple(_taught(r) for r in replaced)

    def taught_pairs(self) -> list[TaughtPair]:
        """Every taught pair, oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(taught).order_by(taught.c.pair_id)).mappings().all()
        return [_taught(r) for r in rows]

    def remove_taught(self, pair_id: int) -> TaughtPair | None:
        """Undo a taught pair; the pair removed, or None when there was none with that id."""
        try:
            with self._tx() as conn:
                row = conn.execute(delete(taught).where(taught.c.pair_id == int(pair_id)).returning(taught))
                found = row.mappings().first()
        except DBAPIError as err:
            raise self._error(err) from err
        return _taught(found) if found is not None else None

    def save_teach_offer(self, offer: TeachOffer, *, keep_s: float) -> None:
        """Keep the candidates shown to an admin until one is picked; offers older than `keep_s` go."""
        row = {
            "offer_id": offer.offer_id,
            "platform": clean_text(offer.platform),
            "question": clean_text(offer.question),
            "candidates": json.dumps([dict(c) for c in offer.candidates], ensure_ascii=False),
            "index_version": clean_text(offer.index_version),
            "created_at": offer.created_at or self._clock(),
        }
        try:
            with self._tx() as conn:
                conn.execute(delete(teach_offers).where(teach_offers.c.created_at < self._clock() - keep_s))
                conn.execute(teach_offers.insert().values(**row))
        except DBAPIError as err:
            raise self._error(err) from err

    def take_teach_offer(self, offer_id: str) -> TeachOffer | None:
        """The offer (removed: one pick per offer), or None when it is unknown or was already taken."""
        try:
            with self._tx() as conn:
                found = (
                    conn.execute(
                        delete(teach_offers).where(teach_offers.c.offer_id == offer_id).returning(teach_offers)
                    )
                    .mappings()
                    .first()
                )
        except DBAPIError as err:
            raise self._error(err) from err
        if found is None:
            return None
        return TeachOffer(
            offer_id=found["offer_id"],
            platform=found["platform"],
            question=found["question"],
            candidates=tuple(json.loads(found["candidates"])),
            index_version=found["index_version"],
            created_at=float(found["created_at"]),
        )


def _taught(row: Any) -> TaughtPair:
    return TaughtPair(
        pair_id=int(row["pair_id"]),
        question=row["question"],
        normalized_question=row["normalized_question"],
        passage_text=row["passage_text"],
        doc_path=row["doc_path"],
        section=row["section"],
        passage_id=row["passage_id"],
        index_version=row["index_version"],
        platform=row["platform"],
        user_hash=row["user_hash"],
        created_at=float(row["created_at"]),
    )


def _answer(row: Row | dict[str, Any] | Any) -> StoredAnswer:
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
        created_at=float(row["created_at"]),
        thread_id=row.get("thread_id", "") or "",
        answer_json=row.get("answer_json", "") or "",
        question_vector=row.get("question_vector", "") or "",
    )
