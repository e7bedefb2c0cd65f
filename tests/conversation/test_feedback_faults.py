"""The feedback database under faults: another process holding the write lock (SQLite and PostgreSQL), lone
surrogates, old salts, retention, and file permissions (SQLite)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from bot.conversation.feedback import DEFAULT_BUSY_TIMEOUT_S, SCHEMA_VERSION, FeedbackStore
from bot.conversation.models import FeedbackVote, ReplyKind
from bot.conversation.privacy import Pseudonymizer
from bot.conversation.report import ERASED, build_report, format_report
from tests.databases import WriteLock

from .conftest import ManualClock, msg

KEY = Pseudonymizer("test-secret-0123456789").db_key


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---- item 16: a database locked for longer than a few seconds ----------------------------------------


def test_answer_keeps_its_buttons_while_another_connection_holds_the_write_lock(make_service, store, database):
    service = make_service()
    lock = WriteLock(database)
    try:
        started = time.monotonic()
        reply = service.handle(msg("what is machine learning?"))
        took = time.monotonic() - started
        assert reply.kind is ReplyKind.ANSWER
        assert [b.value for b in reply.buttons] == [reply.answer_id] * 2  # 👍 and 👎, for this answer
        assert took < DEFAULT_BUSY_TIMEOUT_S + 1.5  # not held up by the lock for long
        assert store.pending_count == 1 and store.get_answer(reply.answer_id) is not None
        # a second answer does not wait again: it queues behind the first
        started = time.monotonic()
        second = service.handle(msg("what is machine learning, again?", user_id="U2"))
        assert time.monotonic() - started < 1.0 and second.buttons
        # a vote on an answer whose row is still queued is accepted
        ack = service.record_feedback(reply.answer_id, FeedbackVote.UP, platform="slack", user_id="U9", channel_id="C1")
        assert ack.extra["feedback"] == "queued" and "Thanks" in ack.text
        assert store.answer_count() == 0  # nothing could be written yet
    finally:
        lock.release()
    assert _wait_until(lambda: store.pending_count == 0)
    assert store.answer_count() == 2 and store.get_answer(reply.answer_id).question == "what is machine learning?"
    (vote,) = store.votes()
    assert vote["answer_id"] == reply.answer_id and vote["vote"] == 1


def test_a_vote_right_after_the_lock_is_released_finds_the_delayed_answer(make_service, store, database):
    service = make_service()
    lock = WriteLock(database)
    reply = service.handle(msg("what is machine learning?"))
    assert reply.buttons and store.pending_count == 1
    lock.release()
    # without waiting for the background writer: the vote writes the queued answer first
    ack = service.record_feedback(reply.answer_id, FeedbackVote.DOWN, platform="slack", user_id="U9", channel_id="C1")
    assert ack.extra["feedback"] == "new"
    assert store.pending_count == 0 and store.feedback_count() == 1


def test_thread_follow_ups_work_while_the_thread_row_is_queued(make_service, store, database):
    service = make_service()
    lock = WriteLock(database)
    try:
        first = service.handle(msg("what is machine learning?", message_id="111.1"))
        assert first.extra["thread_id"] == "111.1"
        follow_up = service.handle(msg("and deep learning?", thread_id="111.1", addressed=False))
        assert follow_up.kind is ReplyKind.ANSWER
    finally:
        lock.release()
    assert _wait_until(lambda: store.pending_count == 0)
    assert store.is_bot_thread("slack", "C1", "111.1")


def test_rows_queued_at_close_are_written_when_the_lock_is_gone(database):
    store = database.open(user_key=KEY)
    lock = WriteLock(database)
    store.record_answer(
        answer_id="a1", question="q", passage_ids=[], index_version="v1", kind="abstain",
        platform="slack", channel_id="C1", user_id="U1",
    )  # fmt: skip
    assert store.pending_count == 1
    threading.Timer(0.5, lock.release).start()
    store.close()  # waits for the writer / one last try with the busy timeout
    with database.open(user_key=KEY) as again:
        assert again.get_answer("a1") is not None


# ---- issue 11 item 5: a lone surrogate ---------------------------------------------------------------


def test_a_lone_surrogate_is_cleaned_before_storing(make_service, store):
    reply = make_service().handle(msg("what is machine learning \ud800?"))
    assert reply.kind is ReplyKind.ANSWER and reply.buttons  # stored, so the buttons are there
    assert store.get_answer(reply.answer_id).question == "what is machine learning \ufffd?"
    assert store.pending_count == 0


# ---- item 15: keyed hashes, the old salt, retention --------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE answers (answer_id TEXT PRIMARY KEY, question TEXT NOT NULL, normalized_question TEXT NOT NULL
  DEFAULT '', passage_ids TEXT NOT NULL, index_version TEXT NOT NULL, kind TEXT NOT NULL, platform TEXT NOT NULL,
  channel_id TEXT NOT NULL, user_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX answers_kind ON answers(kind);
CREATE TABLE feedback (answer_id TEXT NOT NULL REFERENCES answers(answer_id), user_hash TEXT NOT NULL,
  vote INTEGER NOT NULL, question TEXT NOT NULL, passage_ids TEXT NOT NULL, index_version TEXT NOT NULL,
  platform TEXT NOT NULL, channel_id TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
  PRIMARY KEY (answer_id, user_hash));
CREATE TABLE threads (platform TEXT NOT NULL, channel_id TEXT NOT NULL, thread_id TEXT NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (platform, channel_id, thread_id));
PRAGMA user_version = 1;
"""


def test_a_v1_database_loses_its_stored_salt_and_keeps_its_rows(tmp_path):
    import hashlib

    path = tmp_path / "old.sqlite3"
    salt = "5a17" * 8
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_V1_SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('user_salt', ?)", (salt,))
    old_hash = hashlib.sha256(f"{salt}:slack:U1".encode()).hexdigest()
    conn.execute(
        "INSERT INTO answers VALUES ('a1', 'what is ml', '', '[\"p1\"]', 'v1', 'answer', 'slack', 'C1', ?, 1.0)",
        (old_hash,),
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert salt.encode() in path.read_bytes()
    with FeedbackStore(path, user_key=KEY) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        assert store.get_answer("a1").user_hash == old_hash  # kept, now an opaque id
        assert store.hash_user("slack", "U1") != old_hash  # new hashes are keyed from the environment
        store.record_vote("a1", -1, platform="slack", user_id="U1", channel_id="C1")
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert "user_salt" not in meta and meta["user_hash"].startswith("hmac-sha256")
    for f in (path, Path(f"{path}-wal")):
        assert not f.exists() or salt.encode() not in f.read_bytes()  # overwritten, not just unlinked


def test_question_texts_are_erased_after_the_retention_period_and_counts_stay(database):
    clock = ManualClock(1_700_000_000.0)
    secret_question = "why is my zebra-lasagne recipe not in the article"
    with database.open(user_key=KEY, retention_days=30, clock=clock) as store:
        for n, kind in enumerate(["answer", "abstain", "abstain"]):
            store.record_answer(
                answer_id=f"old{n}", question=secret_question, normalized_question=secret_question,
                passage_ids=["p1"], index_version="v1", kind=kind, platform="slack", channel_id="C1", user_id="U1",
            )  # fmt: skip
        store.record_vote("old0", -1, platform="slack", user_id="U2", channel_id="C1")
        clock.advance(29 * 86400)
        assert store.erase_old_questions() == 0
        clock.advance(2 * 86400)
        store.record_answer(
            answer_id="new",
            question="what is machine learning",
            passage_ids=["p1"],
            index_version="v1",
            kind="answer",
            platform="slack",
            channel_id="C1",
            user_id="U1",
        )  # fmt: skip  (more than an hour later: the store erases on its own)
        assert store.get_answer("old0").question == "" and store.get_answer("new").question
        assert store.votes()[0]["question"] == ""
        report = build_report(store)
        assert (report.answers, report.abstentions, report.votes_down) == (2, 2, 1)
        assert ERASED in format_report(report)
    assert "zebra-lasagne" not in database.dump()
    if database.path is not None:  # nor in the file's free pages or its journal (secure_delete, checkpoint)
        for f in (database.path, Path(f"{database.path}-wal")):
            assert not f.exists() or b"zebra-lasagne" not in f.read_bytes()


def test_retention_zero_keeps_questions(database):
    clock = ManualClock()
    with database.open(user_key=KEY, retention_days=0, clock=clock) as store:
        store.record_answer(
            answer_id="a", question="kept", passage_ids=[], index_version="v1", kind="abstain",
            platform="cli", channel_id="t", user_id="me",
        )  # fmt: skip
        clock.advance(10_000 * 86400)
        assert store.erase_old_questions() == 0 and store.get_answer("a").question == "kept"


# ---- issue 11 item 6: for the service user only ------------------------------------------------------


def test_data_folder_and_database_are_created_for_the_owner_only(tmp_path):
    old_umask = os.umask(0o022)  # the usual default, which made the file 0644 before
    try:
        path = tmp_path / "data" / "qabot.sqlite3"
        with FeedbackStore(path, user_key=KEY) as store:
            store.remember_thread("slack", "C1", "1.1")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert modes["qabot.sqlite3"] == 0o600
        assert all(mode == 0o600 for mode in modes.values()), modes  # -wal and -shm too
    finally:
        os.umask(old_umask)


def test_a_world_readable_database_from_an_older_qabot_is_tightened(tmp_path):
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE x (y)")
    os.chmod(path, 0o644)
    with FeedbackStore(path, user_key=KEY):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("retention", ["-1"])
def test_settings_refuse_bad_retention_and_short_secrets(retention):
    from bot.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="QABOT_QUESTION_RETENTION_DAYS"):
        Settings.from_env({"QABOT_QUESTION_RETENTION_DAYS": retention}, dotenv_path=None)
    with pytest.raises(ConfigError, match="QABOT_SECRET_KEY must be at least 16") as info:
        Settings.from_env({"QABOT_SECRET_KEY": "short"}, dotenv_path=None)
    assert "short" not in str(info.value)  # never echo a secret
    settings = Settings.from_env({"QABOT_SECRET_KEY": "x" * 32}, dotenv_path=None)
    assert "x" * 32 not in repr(settings) and settings.question_retention_days == 90


def test_the_database_never_holds_the_key_or_raw_ids(database):
    secret = "env-secret-never-stored-0123"
    p = Pseudonymizer(secret)
    with database.open(user_key=p.db_key) as store:
        store.record_answer(
            answer_id="a", question="q", passage_ids=[], index_version="v1", kind="abstain",
            platform="slack", channel_id="C1", user_id="U0RAWUSER",
        )  # fmt: skip
        store.record_vote("a", 1, platform="slack", user_id="U0RAWVOTER", channel_id="C1")
        store._checkpoint()
    needles = (secret, p.db_key.hex(), "U0RAWUSER", "U0RAWVOTER")
    dump = database.dump()
    assert "answers:" in dump and "feedback:" in dump
    assert not [n for n in needles if n in dump]
    if database.path is not None:  # the file's bytes, free pages included
        data = database.path.read_bytes()
        for needle in (*(n.encode() for n in needles), p.db_key):
            assert needle not in data
    assert json.dumps(repr(p)).find(secret) == -1
