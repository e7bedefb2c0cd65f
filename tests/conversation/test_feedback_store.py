"""The store's rules, on an SQLite file and on PostgreSQL alike (`database` runs each test on both)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from bot.conversation.feedback import SCHEMA_VERSION, FeedbackDatabaseError, FeedbackStore, UnknownAnswerError
from bot.conversation.privacy import Pseudonymizer
from bot.conversation.stores import AnswerLog, ConversationStore, FeedbackSource, ThreadMemory, Votes


def _answer(store, answer_id="a1", kind="answer", question="what is ml?", user="U1"):
    store.record_answer(
        answer_id=answer_id,
        question=question,
        passage_ids=["p1", "p2"],
        index_version="v1",
        kind=kind,
        platform="slack",
        channel_id="C1",
        user_id=user,
    )


def test_the_store_is_each_of_the_small_interfaces(database):
    with database.open() as store:
        for protocol in (AnswerLog, Votes, ThreadMemory, FeedbackSource, ConversationStore):
            assert isinstance(store, protocol), protocol.__name__
        assert store.backend == database.backend


def test_creates_parent_dir_wal_and_schema(tmp_path):
    path = tmp_path / "deep" / "dir" / "db.sqlite3"
    with FeedbackStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_database_is_at_the_newest_schema(database):
    with database.open() as store:
        assert store.schema_version == SCHEMA_VERSION
    assert "alembic_version" not in database.dump()  # qabot's tables only in the dump; the version is its own
    conn = database.connect()
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
    finally:
        conn.close()


def test_user_ids_are_keyed_hashes_stable_for_one_key(database):
    key = Pseudonymizer("a-secret-of-sixteen-chars").db_key
    with database.open(user_key=key) as store:
        _answer(store)
        h = store.hash_user("slack", "U1")
        assert store.get_answer("a1").user_hash == h
    with database.open(user_key=key) as again:
        assert again.hash_user("slack", "U1") == h
    with database.open(user_key=Pseudonymizer("another-secret-of-16+").db_key) as other:
        assert other.hash_user("slack", "U1") != h  # another key, another hash
    with database.open() as no_key:  # no secret: a random key for this process only
        assert no_key.user_key_is_ephemeral and no_key.hash_user("slack", "U1") != h
    assert "U1" not in database.dump()
    if database.path is not None:
        assert b"U1" not in database.path.read_bytes()


def test_one_vote_per_user_per_answer(database):
    with database.open() as store:
        _answer(store)
        assert store.record_vote("a1", 1, platform="slack", user_id="U2", channel_id="C1") == "new"
        assert store.record_vote("a1", 1, platform="slack", user_id="U2", channel_id="C1") == "unchanged"
        assert store.record_vote("a1", -1, platform="slack", user_id="U2", channel_id="C1") == "updated"
        assert store.record_vote("a1", -1, platform="discord", user_id="U2", channel_id="C1") == "new"
        assert store.feedback_count() == 2
        (totals,) = store.vote_totals()
        assert (totals.up, totals.down, totals.net) == (0, 2, -2)
        with pytest.raises(UnknownAnswerError):
            store.record_vote("nope", 1, platform="slack", user_id="U2", channel_id="C1")
        with pytest.raises(ValueError):
            store.record_vote("a1", 0, platform="slack", user_id="U2", channel_id="C1")


def test_two_processes_recording_the_same_vote_agree(database):
    """Two replicas: the same person's click delivered to both at once is one vote."""
    with database.open(user_key=b"k" * 32) as one, database.open(user_key=b"k" * 32) as two:
        _answer(one)
        results: list[str] = []
        barrier = threading.Barrier(2)

        def vote(store):
            barrier.wait()
            results.append(store.record_vote("a1", -1, platform="slack", user_id="U2", channel_id="C1"))

        threads = [threading.Thread(target=vote, args=(s,)) for s in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["new", "unchanged"]
        assert one.feedback_count() == 1


def test_threads_persist(database):
    with database.open() as store:
        store.remember_thread("slack", "C1", "1.1")
        store.remember_thread("slack", "C1", "1.1")  # idempotent
    with database.open() as store:
        assert store.is_bot_thread("slack", "C1", "1.1")
        assert not store.is_bot_thread("discord", "C1", "1.1")
        assert not store.is_bot_thread("slack", "C2", "1.1")


def test_answers_keep_their_thread_and_json(database):
    with database.open() as store:
        store.record_answer(
            answer_id="a", question="q", passage_ids=["p1"], index_version="v1", kind="answer",
            platform="slack", channel_id="C1", user_id="U1", thread_id="9.1", answer_json='{"kind": "answer"}',
        )  # fmt: skip
    with database.open() as store:
        stored = store.get_answer("a")
        assert (stored.thread_id, stored.answer_json) == ("9.1", '{"kind": "answer"}')
        assert [t.question for t in store.thread_turns("slack", "C1", "9.1")] == ["q"]


def test_text_no_database_can_store_is_cleaned(database):
    with database.open() as store:
        store.record_answer(
            answer_id="a", question="nul \x00 and \ud800 here", passage_ids=["p\x00"], index_version="v1",
            kind="abstain", platform="slack", channel_id="C1", user_id="U1",
        )  # fmt: skip
        assert store.pending_count == 0
        stored = store.get_answer("a")
        assert stored.question == "nul \ufffd and \ufffd here" and stored.passage_ids == ("p\ufffd",)


def test_concurrent_writers(database):
    with database.open() as store:
        errors = []

        def work(n):
            try:
                for i in range(25):
                    _answer(store, answer_id=f"{n}-{i}", user=f"U{n}")
                    store.record_vote(f"{n}-{i}", 1, platform="slack", user_id=f"U{n}", channel_id="C1")
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert store.answer_count() == 100 and store.feedback_count() == 100
        assert store.pending_count == 0


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(FeedbackDatabaseError, match="newer"):
        FeedbackStore(path)
