"""Wire the conversation service from Settings: the one place that builds the real collaborators."""

from __future__ import annotations

from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService


def build_service(settings: Settings) -> ConversationService:
    """EngineHolder over settings.index_dir (loads lazily), FeedbackStore, RebuildCoordinator."""
    from bot.core.engine import EngineHolder  # imported here: it pulls in the retrieval stack

    engine = EngineHolder(settings.index_dir)
    return ConversationService(
        engine,
        settings=settings,
        feedback=FeedbackStore(settings.feedback_db),
        rebuilder=RebuildCoordinator(engine, settings.knowledge_dir, settings.index_dir),
    )
