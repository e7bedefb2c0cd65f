"""Watched channels (issue 9 item 1) in the storage behind the Protocols: on an SQLite file and on a real
PostgreSQL server, through migration 0005; an older database gains the table and keeps its rows; a watch
the database cannot take now is refused with a clear reply, never half-done."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.config import Settings
from bot.conversation.models import IncomingMessage, ReplyKind
from bot.conversation.service import ConversationService
from bot.conversation.stores import ConversationStore, WatchedChannels
from bot.storage import SCHEMA_VERSION
from tests.conversation.conftest import FakeEngine
from tests.databases import WriteLock

DATA = Path(__file__).parent / "data"


def test_watch_unwatch_per_platform_and_across_a_restart(database):
    with database.open() as store:
        assert isinstance(store, WatchedChannels) and isinstance(store, ConversationStore)
        assert store.schema_version == SCHEMA_VERSION == 7
        assert store.set_watched("slack", "C1", True) is True
        assert store.set_watched("slack", "C1", True) is False  # already watched: nothing changed
        assert store.set_watched("slack", "C2", True) is True
        assert store.set_watched("discord", "C1", True) is True
        assert store.set_watched("slack", "C2", False) is True
        assert store.set_watched("slack", "C9", False) is False
    with database.open() as again:  # another process, or the same after a restart
        assert again.watched_channels("slack") == frozenset({"C1"})
        assert again.watched_channels("discord") == frozenset({"C1"})
        assert again.watched_channels("terminal") == frozenset()


def test_a_database_from_before_watched_channels_gains_them_and_keeps_its_rows(tmp_path):
    path = tmp_path / "data" / "qabot.sqlite3"
    path.parent.mkdir(mode=0o700)
    shutil.copyfile(DATA / "qabot-schema3.sqlite3", path)
    from bot.storage import FeedbackStore

    with FeedbackStore(path) as store:
        assert store.schema_version == 7
        assert store.answers()  # the old rows are there
        assert store.set_watched("slack", "C1", True) is True
        assert store.watched_channels("slack") == frozenset({"C1"})


def _admin(channel: str = "C1") -> IncomingMessage:
    return IncomingMessage(
        platform="slack", user_id="UADMIN", channel_id=channel, text="/qabot watch", is_admin=True, private=True
    )


def test_a_watch_the_database_cannot_take_now_is_refused_clearly(database, tmp_path):
    settings = Settings(knowledge_dir=tmp_path, index_dir=tmp_path, **database.settings_changes())
    with database.open(busy_timeout_s=0.2) as store:
        service = ConversationService(FakeEngine(), settings=settings, feedback=store)
        lock = WriteLock(database)
        try:
            refused = service.handle_admin(_admin(), "watch")
        finally:
            lock.release()
        assert refused.kind is ReplyKind.ERROR
        assert "couldn't save that" in refused.text and "Nothing changed" in refused.text
        assert store.watched_channels("slack") == frozenset()
        done = service.handle_admin(_admin(), "watch")
        assert done.kind is ReplyKind.ADMIN and "watching this channel now" in done.text
        assert store.watched_channels("slack") == frozenset({"C1"})
