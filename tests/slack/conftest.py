"""Fixtures for the Slack front end: a loopback FakeSlack and the real app in HTTP mode against it."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from bot.adapters.slack import SlackSettings
from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import SlackHttpHarness

REPO = Path(__file__).resolve().parents[2]
ADMIN = "UADMIN"
SIGNING_SECRET = "test-signing-secret"


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
def slack_settings(fake_slack: FakeSlack) -> SlackSettings:
    """SlackSettings as `.env` would give them, pointed at the fake Web API (nothing read from .env)."""
    return SlackSettings(
        _env_file=None,
        bot_token="xoxb-test-token",
        app_token="xapp-test-token",
        signing_secret=SIGNING_SECRET,
        admin_user_ids=(ADMIN,),
        workspace_admins_are_admins=True,
        api_url=fake_slack.api_url,
    )


@pytest.fixture
def slack_service(core_settings: Settings, engine_holder) -> ConversationService:
    store = FeedbackStore(core_settings.feedback_db)
    service = ConversationService(
        engine_holder,
        settings=core_settings,
        feedback=store,
        rebuilder=RebuildCoordinator(engine_holder, core_settings.knowledge_dir, core_settings.index_dir),
    )
    yield service
    store.close()


@pytest_asyncio.fixture
async def slack_http(slack_service, slack_settings, fake_slack):
    harness = await SlackHttpHarness(slack_service, slack_settings, fake_slack).start()
    try:
        yield harness
    finally:
        await harness.stop()
