"""Fixtures for the Discord front end: a loopback FakeDiscord that the real discord.py client talks to."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest
import pytest_asyncio
import yarl
from discord.gateway import DiscordWebSocket

from bot.adapters.discord import DiscordSettings
from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from tests.discord.fake_discord import FakeDiscord
from tests.discord.harness import ADMIN_USER_ID

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch):
    """FakeDiscord on 127.0.0.1:<free port>, with discord.py's REST base and gateway pointed at it."""
    fake = await FakeDiscord().start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def core_settings(tmp_path: Path, built_index_dir: Path) -> Settings:
    return Settings(
        index_dir=built_index_dir,
        knowledge_dir=REPO / "knowledge",
        feedback_db=tmp_path / "feedback.sqlite3",
        user_rate_limit=1000,
        channel_rate_limit=1000,
    )


@pytest.fixture
def discord_settings(fake_discord: FakeDiscord) -> DiscordSettings:
    """DiscordSettings as `.env` would give them (nothing read from .env)."""
    return DiscordSettings(
        _env_file=None,
        token="fake-discord-token",
        admin_role_ids=(fake_discord.helper_role_id,),
        admin_user_ids=(ADMIN_USER_ID,),
    )


@pytest.fixture
def discord_service(core_settings: Settings, engine_holder):
    store = FeedbackStore(core_settings.feedback_db)
    service = ConversationService(
        engine_holder,
        settings=core_settings,
        feedback=store,
        rebuilder=RebuildCoordinator(engine_holder, core_settings.knowledge_dir, core_settings.index_dir),
    )
    yield service
    store.close()
