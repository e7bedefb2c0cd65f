from __future__ import annotations

import sqlite3
import threading

import pytest

from bot.conversation.feedback import SCHEMA_VERSION, FeedbackDatabaseError, FeedbackStore, UnknownAnswerError
from bot.conversation.privacy import Pseudonymizer


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


def test_creates_parent_dir_wal_and_schema(tmp_path):
    path = tmp_path / "deep" / "dir" / "db.sqlite3"
    with FeedbackStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_user_ids_are_keyed_hashes_stable_for_one_key(tmp_path):
    path = tmp_path / "db.sqlite3"
    key = Pseudonymizer("a-secret-of-sixteen-chars").db_key
    with FeedbackStore(path, user_key=key) as store:
        _answer(store)
        h = store.hash_user("slack", "U1")
        assert store.get_answer("a1").user_hash == h
    with FeedbackStore(path, user_key=key) as again:
        assert again.hash_user("slack", "U1") == h
    with FeedbackStore(path, user_key=Pseudonymizer("another-secret-of-16+").db_key) as other:
        assert other.hash_user("slack", "U1") != h  # another key, another hash
    with FeedbackStore(path) as no_key:  # no secret: a random key for this process only
        assert no_key.user_key_is_ephemeral and no_key.hash_user("slack", "U1") != h
    assert b"U1" not in path.read_bytes()


def test_one_vote_per_user_per_answer(tmp_path):
    with FeedbackStore(tmp_path / "db") as store:
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


def test_threads_persist(tmp_path):
    with FeedbackStore(tmp_path / "db") as store:
        store.remember_thread("slack", "C1", "1.1")
        store.remember_thread("slack", "C1", "1.1")  # idempotent
    with FeedbackStore(tmp_path / "db") as store:
        assert store.is_bot_thread("slack", "C1", "1.1")
        assert not store.is_bot_thread("discord", "C1", "1.1")
        assert not store.is_bot_thread("slack", "C2", "1.1")


def test_concurrent_writers(tmp_path):
    with FeedbackStore(tmp_path / "db") as store:
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


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(FeedbackDatabaseError, match="newer"):
        FeedbackStore(path)
