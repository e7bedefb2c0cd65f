"""Wire the conversation service from Settings: the one place that builds the real collaborators."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.conversation.privacy import Pseudonymizer
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from bot.conversation.stores import ConversationStore, TaughtPairs
from bot.conversation.teach import Teaching, examples_from
from bot.ops.metrics import Metrics
from bot.state.shared import SharedState

if TYPE_CHECKING:
    from bot.core.steering import TaughtSteering


def database_of(settings: Settings) -> str | Path:
    """Where answers, votes and threads are kept: QABOT_DATABASE_URL, else the SQLite file QABOT_FEEDBACK_DB."""
    return settings.database_url or settings.feedback_db


def open_feedback_store(settings: Settings, pseudonyms: Pseudonymizer | None = None) -> ConversationStore:
    """The feedback database (SQLite file or PostgreSQL), its user hashes keyed from QABOT_SECRET_KEY.
    Raises FeedbackDatabaseError (or ConfigError for a URL qabot cannot use)."""
    from bot.storage import FeedbackStore  # SQLAlchemy and the migrations: imported when a store is opened

    pseudonyms = pseudonyms or Pseudonymizer(settings.secret_key)
    return FeedbackStore(
        database_of(settings), user_key=pseudonyms.db_key, retention_days=settings.question_retention_days
    )


def build_service(settings: Settings) -> ConversationService:
    """EngineHolder over settings.index_dir (loads lazily), the store, RebuildCoordinator (builds in a
    child process), the shared state (in Redis when QABOT_REDIS_URL is set) and the metrics. Raises
    FeedbackDatabaseError when the feedback database cannot be used. `service.shared.start(engine)` starts
    following new index versions; `service.shared.close()` stops it."""
    from bot.core.engine import EngineHolder  # imported here: it pulls in the retrieval stack

    pseudonyms = Pseudonymizer(settings.secret_key)
    feedback = open_feedback_store(settings, pseudonyms)
    steering = teach_steering(settings, feedback)
    engine = EngineHolder(settings.index_dir, steering=steering)
    shared = SharedState.from_settings(settings)
    metrics = Metrics()
    metrics.watch(version=lambda: engine.version if engine.loaded else None, redis_up=lambda: _redis_up(shared))
    rebuilder = RebuildCoordinator(
        engine,
        settings.knowledge_dir,
        settings.index_dir,
        lock=shared.rebuild_lock,
        announce=shared.announcer.announce,
        observe=metrics.observe_rebuild,
    )
    return ConversationService(
        engine,
        settings=settings,
        feedback=feedback,
        rebuilder=rebuilder,
        pseudonyms=pseudonyms,
        shared=shared,
        metrics=metrics,
        teaching=Teaching(engine, feedback, invalidate=steering.invalidate),
    )


def teach_steering(settings: Settings, store: TaughtPairs) -> TaughtSteering:
    """What admins taught, steering retrieval (docs/teach.md): read from `store`, QABOT_TEACH_* thresholds."""
    from bot.core.steering import TaughtSteering

    return TaughtSteering(
        examples_from(store),
        similarity=settings.teach_similarity,
        margin=settings.teach_margin,
        close_similarity=settings.teach_close_similarity,
    )


def _redis_up(shared: SharedState) -> bool | None:
    return None if shared.link is None else bool(shared.link.up)
