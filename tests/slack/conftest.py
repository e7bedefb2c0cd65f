"""Fixtures for the Slack front end: a loopback FakeSlack and the real app in HTTP mode against it."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from tests.slack.fake_slack import FakeSlack
from tests.slack.harness import SlackHttpHarness

REPO = Path(__file__).resolve().parents[2]
ADMIN = "UADMIN"
SIGNING_SECRET = "test-signing-secret"


@pytest_asyncio.fixture
async def fake_slack():
    fake = await FakeSlack().start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def slack_settings(tmp_path: Path, built_index_dir: Path) -> Settings:
    return Settings(
        index_dir=built_index_dir,
        knowledge_dir=REPO / "knowledge",
        feedback_db=tmp_path / "feedback.sqlite3",
        slack_bot_token="xoxb-test-token",
        slack_app_token="xapp-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_admin_user_ids=(ADMIN,),
        slack_workspace_admins_are_admins=True,
        user_rate_limit=1000,
        channel_rate_limit=1000,
    )


@pytest.fixture
def slack_service(slack_settings: Settings, engine_holder) -> ConversationService:
    store = FeedbackStore(slack_settings.feedback_db)
    service = ConversationService(
        engine_holder,
        settings=slack_settings,
        feedback=store,
        rebuilder=RebuildCoordinator(engine_holder, slack_settings.knowledge_dir, slack_settings.index_dir),
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
