"""Taught pairs and teaching offers (issue 9 item 3, schema 7) on an SQLite file and on a real PostgreSQL
server: stored with who (a keyed hash) and when, replaced per question, listed, undone, ids never reused;
an offer is taken once; an older database gains the tables and keeps its rows; a write the database cannot
take now is refused, never half-done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.conversation.stores import ConversationStore, TaughtPairs, TeachOffer
from bot.storage import SCHEMA_VERSION, FeedbackDatabaseError
from tests.databases import WriteLock

DATA = Path(__file__).parent / "data"
PASSAGE = "Machine Learning (ML) focuses on developing algorithms that enable computers to learn from data."


def _teach(store, question: str, passage: str = PASSAGE, user: str = "UADMIN"):
    return store.add_taught(
        question=question,
        normalized_question=question.lower(),
        passage_text=passage,
        doc_path="ml.md",
        section="What is Machine Learning?",
        passage_id="p0003-abc",
        index_version="v1",
        platform="slack",
        user_id=user,
    )


def test_taught_pairs_are_kept_listed_replaced_and_undone(database):
    with database.open(user_key=b"k" * 32) as store:
        assert isinstance(store, TaughtPairs) and isinstance(store, ConversationStore)
        assert store.schema_version == SCHEMA_VERSION == 7
        first, replaced = _teach(store, "what is ML?")
        assert replaced == () and first.pair_id >= 1 and not first.not_covered
        assert first.user_hash == store.hash_user("slack", "UADMIN") and "UADMIN" not in first.user_hash
        assert first.created_at > 0 and first.passage_text == PASSAGE and first.section == "What is Machine Learning?"
        other, _ = _teach(store, "weather in Paris?", passage="")
        assert other.not_covered
        # the same question taught again replaces the older pair, with a new id
        again, replaced = _teach(store, "What is ML?", passage="Another passage.")
        assert [p.pair_id for p in replaced] == [first.pair_id] and again.pair_id > other.pair_id
        assert [p.pair_id for p in store.taught_pairs()] == [other.pair_id, again.pair_id]

        assert store.remove_taught(again.pair_id).question == "What is ML?"
        assert store.remove_taught(again.pair_id) is None
        newest, _ = _teach(store, "something new")
        assert newest.pair_id > again.pair_id  # an undone id is never given to another pair
    with database.open(user_key=b"k" * 32) as reopened:  # another process, or after a restart
        pairs = reopened.taught_pairs()
        assert [p.pair_id for p in pairs] == [other.pair_id, newest.pair_id]
        assert pairs[0].not_covered and pairs[0].user_hash == first.user_hash


def test_an_offer_is_taken_once_and_old_ones_go(database):
    with database.open() as store:
        offer = TeachOffer("off1", "discord", "what is ML?", ({"passage_id": "p1", "text": PASSAGE},), "v1", 0.0)
        store.save_teach_offer(offer, keep_s=3600)
        taken = store.take_teach_offer("off1")
        assert taken is not None and taken.candidates[0]["text"] == PASSAGE and taken.question == "what is ML?"
        assert store.take_teach_offer("off1") is None  # one pick per offer
        assert store.take_teach_offer("nope") is None
        old = TeachOffer("old", "slack", "q", (), "v1", created_at=1.0)  # long ago
        store.save_teach_offer(old, keep_s=3600)
        store.save_teach_offer(TeachOffer("new", "slack", "q", (), "v1"), keep_s=3600)  # drops the old one
        assert store.take_teach_offer("old") is None and store.take_teach_offer("new") is not None


def test_a_database_from_before_teaching_gains_the_tables_and_keeps_its_rows(tmp_path):
    path = tmp_path / "data" / "qabot.sqlite3"
    path.parent.mkdir(mode=0o700)
    shutil.copyfile(DATA / "qabot-schema3.sqlite3", path)
    from bot.storage import FeedbackStore

    with FeedbackStore(path) as store:
        assert store.schema_version == 7
        assert store.answers()
        pair, _ = _teach(store, "what is ML?")
        assert store.taught_pairs() == [pair]


def test_teaching_while_another_process_holds_the_lock_is_refused_and_changes_nothing(database):
    with database.open(busy_timeout_s=0.2) as store:
        kept, _ = _teach(store, "kept")
        lock = WriteLock(database)
        try:
            with pytest.raises(FeedbackDatabaseError):
                _teach(store, "what is ML?")
            with pytest.raises(FeedbackDatabaseError):
                store.remove_taught(kept.pair_id)
        finally:
            lock.release()
        assert store.taught_pairs() == [kept]
