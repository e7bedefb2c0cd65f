"""QABOT_DATABASE_URL: which database, said without its password; a PostgreSQL server that is down at start
(one line, exit 2 from the CLI) or goes away while the bot runs (rows wait in memory and are written when it
is back, answers keep their buttons)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.conversation.factory import database_of, open_feedback_store
from bot.conversation.models import FeedbackVote, ReplyKind
from bot.conversation.service import ConversationService
from bot.storage import FeedbackDatabaseError, FeedbackStore, database_target
from tests.conversation.conftest import FakeEngine, msg
from tests.postgres import PostgresServer

PASSWORD = "s3cret-never-shown"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


def test_the_url_is_a_secret_setting_and_picks_the_database(tmp_path):
    url = f"postgresql+psycopg://qabot:{PASSWORD}@db:5432/qabot"
    settings = Settings.from_env({"QABOT_DATABASE_URL": url}, dotenv_path=None)
    assert settings.database_url == url and database_of(settings) == url
    assert PASSWORD not in repr(settings) and settings.safe_dict()["database_url"] == "set"
    plain = Settings.from_env({"QABOT_FEEDBACK_DB": str(tmp_path / "f.sqlite3")}, dotenv_path=None)
    assert plain.database_url is None and database_of(plain) == tmp_path / "f.sqlite3"


@pytest.mark.parametrize(
    "url", [f"mysql://qabot:{PASSWORD}@db/qabot", f"qabot:{PASSWORD}@db/qabot", "redis://localhost:6379/0"]
)
def test_a_url_qabot_cannot_use_is_refused_without_its_password(url):
    with pytest.raises(ConfigError, match="QABOT_DATABASE_URL must start with") as info:
        Settings.from_env({"QABOT_DATABASE_URL": url}, dotenv_path=None)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("given", "backend", "driver", "path"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql", "psycopg", None),
        ("postgres://u:p@h/d", "postgresql", "psycopg", None),
        ("postgresql+psycopg://u:p@h/d", "postgresql", "psycopg", None),
        ("sqlite:////var/lib/qabot/q.sqlite3", "sqlite", "pysqlite", Path("/var/lib/qabot/q.sqlite3")),
        ("sqlite://", "sqlite", "pysqlite", None),
        ("data/q.sqlite3", "sqlite", "pysqlite", Path("data/q.sqlite3")),
    ],
)
def test_database_targets(given, backend, driver, path):
    target = database_target(given)
    assert (target.backend, target.url.get_driver_name(), target.path) == (backend, driver, path)
    assert ":p@" not in target.display and ":p@" not in repr(target)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"postgresql+asyncpg://u:{PASSWORD}@h/d", "uses psycopg"),
        (f"postgresql://u:{PASSWORD}@h", "names no database"),
    ],
)
def test_database_targets_qabot_cannot_use(url, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        database_target(url)
    assert PASSWORD not in str(info.value)


def test_a_server_that_is_not_there_is_one_line_with_the_fix_and_no_password():
    url = f"postgresql+psycopg://qabot:{PASSWORD}@127.0.0.1:{_closed_port()}/qabot"
    started = time.monotonic()
    with pytest.raises(FeedbackDatabaseError) as info:
        FeedbackStore(url)
    message = str(info.value)
    assert time.monotonic() - started < 10
    assert message.startswith("the feedback database postgresql+psycopg://qabot:***@127.0.0.1:")
    assert "cannot be reached" in message and "Fix: start PostgreSQL" in message
    assert PASSWORD not in message and "\n" not in message


def test_a_database_that_does_not_exist_says_so(pg_server):
    with pytest.raises(FeedbackDatabaseError, match=r"does not exist on that server.*createdb"):
        FeedbackStore(pg_server.url("no_such_database"))


def test_open_feedback_store_follows_the_url(database, tmp_path):
    settings = Settings(**({"feedback_db": tmp_path / "other.sqlite3"} | database.settings_changes()))
    store = open_feedback_store(settings)
    try:
        assert store.backend == database.backend
        store.remember_thread("slack", "C1", "1.1")
    finally:
        store.close()
    with database.open() as again:
        assert again.is_bot_thread("slack", "C1", "1.1")


def _wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_answers_given_while_postgresql_is_down_are_written_when_it_is_back(tmp_path):
    """The server goes away under a running bot: answers keep their buttons and threads their follow-ups
    (rows wait in memory), nothing crashes, and the rows are in the database once it is back."""
    server = PostgresServer().start()
    try:
        url = server.create_database()
        settings = Settings(feedback_db=tmp_path / "unused.sqlite3", database_url=url, user_rate_limit=100)
        with FeedbackStore(url, busy_timeout_s=1.0) as store:
            service = ConversationService(FakeEngine(), settings=settings, feedback=store)
            before = service.handle(msg("what is machine learning?", message_id="1.1"))
            assert before.buttons and store.pending_count == 0

            server.stop(keep_data=True)
            during = service.handle(msg("is machine learning hard?", message_id="2.1"))
            assert during.kind is ReplyKind.ANSWER and [b.value for b in during.buttons] == [during.answer_id] * 2
            assert store.pending_count == 2  # the answer and its thread
            follow_up = service.handle(msg("and deep learning?", thread_id="2.1", addressed=False))
            assert follow_up.kind is ReplyKind.ANSWER  # the queued thread is known
            vote = service.record_feedback(
                during.answer_id, FeedbackVote.UP, platform="slack", user_id="U9", channel_id="C1"
            )
            assert vote.extra["feedback"] == "queued"
            assert service.stored_reply(during.answer_id) is not None  # can be shared from the queue

            server.restart()
            assert _wait_until(lambda: store.pending_count == 0)
        with FeedbackStore(url) as again:
            assert again.get_answer(during.answer_id).question == "is machine learning hard?"
            assert again.is_bot_thread("slack", "C1", "2.1")
            assert [v["vote"] for v in again.votes()] == [1]
            assert again.answer_count() == 3
    finally:
        server.stop()
