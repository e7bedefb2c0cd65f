"""Alembic migrations: SQLite files written by qabot before Alembic (schemas 1-3, made by qabot's own code of
that time: tests/storage/data/) open and keep their rows; new databases on SQLite and PostgreSQL reach the
same schema as bot/storage/schema.py; a newer qabot's database is refused untouched; a migration that fails
leaves nothing half-done; several processes starting at once migrate once."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from bot.config import Settings
from bot.conversation.service import ConversationService
from bot.storage import SCHEMA_VERSION, FeedbackDatabaseError, FeedbackStore
from bot.storage.schema import metadata
from tests.conversation.conftest import FakeEngine

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32  # the key the legacy files' user hashes were made with (schemas 2 and 3)


def _legacy(tmp_path: Path, schema: int) -> Path:
    path = tmp_path / "data" / "qabot.sqlite3"
    path.parent.mkdir(mode=0o700)
    shutil.copyfile(DATA / f"qabot-schema{schema}.sqlite3", path)
    return path


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


@pytest.mark.parametrize("schema", [1, 2, 3])
def test_a_file_written_by_an_older_qabot_opens_and_keeps_its_rows(tmp_path, schema):
    path = _legacy(tmp_path, schema)
    assert _user_version(path) == schema
    with FeedbackStore(path, user_key=KEY) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [a.answer_id for a in store.answers()] == ["a-ml", "a-follow", "a-pizza"]
        ml = store.get_answer("a-ml")
        assert (ml.question, ml.passage_ids, ml.kind, ml.answer_json) == (
            "what is machine learning?",
            ("p1", "p2"),
            "answer",
            "",  # written before answers kept their JSON
        )
        (totals,) = store.vote_totals()
        assert (totals.answer.answer_id, totals.up, totals.down) == ("a-ml", 1, 1)
        assert store.is_bot_thread("slack", "C1", "100.1")
        turns = store.thread_turns("slack", "C1", "100.1")
        assert [t.question for t in turns] == (
            ["what is machine learning?", "and deep learning?"] if schema >= 3 else []  # threads came with 3
        )
        # and it goes on working: a new vote from the same person (same key) updates theirs
        if schema >= 2:
            assert store.record_vote("a-ml", -1, platform="slack", user_id="U2", channel_id="C1") == "updated"
        store.record_answer(
            answer_id="new", question="q", passage_ids=["p1"], index_version="v2", kind="answer",
            platform="slack", channel_id="C1", user_id="U1", answer_json="{}",
        )  # fmt: skip
    # qabot before Alembic reads only user_version: it now sees a newer schema and refuses the file
    assert _user_version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert "user_salt" not in meta and meta["user_hash"].startswith("hmac-sha256")
    with FeedbackStore(path, user_key=KEY) as again:  # opening a current file changes nothing
        assert again.answer_count() == 4


def test_an_answer_from_before_its_json_was_kept_cannot_be_shared_and_says_so(tmp_path):
    path = _legacy(tmp_path, 3)
    with FeedbackStore(path, user_key=KEY) as store:
        service = ConversationService(FakeEngine(), settings=Settings(feedback_db=path), feedback=store)
        assert service.stored_reply("a-ml") is None
        assert service.record_feedback("a-ml", 1, platform="slack", user_id="U9", channel_id="C1").extra == {
            "feedback": "new"
        }  # votes on old answers still count


def test_migrations_build_the_schema_the_queries_use(database):
    """The frozen migrations and bot/storage/schema.py agree, column for column and index for index."""
    database.open().close()
    engine = create_engine(f"sqlite:///{database.path}" if database.path is not None else database.where)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_a_database_of_a_newer_qabot_is_refused_untouched(database):
    database.open().close()
    conn = database.connect()
    try:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
        conn.execute("INSERT INTO meta(key, value) VALUES ('written-by', 'qabot 9')")
    finally:
        conn.close()
    before = database.dump()
    with pytest.raises(FeedbackDatabaseError, match=r"newer qabot \(schema revision 0099; this one reads up to \d+\)"):
        database.open()
    assert database.dump() == before


def test_a_migration_that_fails_leaves_nothing_half_done(database):
    """Another program's table named like one of qabot's: the first migration fails, and the database is
    exactly as it was (transactional DDL on both), with the reason in one line."""
    conn = database.connect()
    try:
        conn.execute("CREATE TABLE threads (other_program TEXT)")
    finally:
        conn.close()
    with pytest.raises(FeedbackDatabaseError, match="cannot be used") as info:
        database.open()
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)
    conn = database.connect()
    try:
        if database.path is not None:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        else:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        conn.close()
    assert tables == {"threads"}


def test_replicas_starting_at_once_migrate_once(database):
    """Three processes open a new database at the same moment: all start, the schema is built once."""
    code = (
        "import sys, time; from bot.storage import FeedbackStore\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "FeedbackStore(sys.argv[1]).close()\n"
    )
    import time

    start = time.time() + 3.0  # past every interpreter's start-up
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(database.where), str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], results
    with database.open() as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = database.connect()
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'user_hash'").fetchone() == (1,)
    finally:
        conn.close()


def test_a_schema_2_vote_from_an_unkeyed_qabot_is_kept_as_an_opaque_id(tmp_path):
    """Schema 1's salted hashes stay as opaque ids; new hashes are keyed (the v1 file was made without a key)."""
    path = _legacy(tmp_path, 1)
    with FeedbackStore(path, user_key=KEY) as store:
        old = store.get_answer("a-ml").user_hash
        assert len(old) == 64 and old != store.hash_user("slack", "U1")
    assert b"user_salt" not in path.read_bytes()
