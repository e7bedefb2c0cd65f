"""Platform-neutral conversation types: what an adapter hands in, and what it renders out.

Adapters translate a platform event into an IncomingMessage, call
ConversationService.handle(...) (sync; call it off the event loop with asyncio.to_thread),
and render the Reply. Nothing here knows Slack or Discord.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from bot.core.types import Answer

if TYPE_CHECKING:
    from bot.conversation.report import FeedbackReport


class ReplyKind(str, Enum):
    ANSWER = "answer"  # quotes that answer the question
    ABSTAIN = "abstain"  # knowledge does not cover it; lists closest sections
    HELP = "help"  # greeting / help / thanks / empty question
    ADMIN = "admin"  # result of an admin command (status, reindex, rollback, report)
    REFUSED = "refused"  # not allowed (admin command by a non-admin, channel not allowed, DMs off)
    RATE_LIMITED = "rate_limited"  # over the limit: told once when to retry
    IGNORED = "ignored"  # nothing to send (bot's own message, duplicate, already told about limit)
    ERROR = "error"  # index missing/corrupt or a failure; text says what to do


class FeedbackVote(int, Enum):
    UP = 1
    DOWN = -1


class Action(StrEnum):
    """Every button qabot shows, by its action id: one set for every front end."""

    FEEDBACK_UP = "qabot_feedback_up"
    FEEDBACK_DOWN = "qabot_feedback_down"
    SHARE = "qabot_share"  # a private answer (Slack's /ask) posted to the channel


def feedback_vote(action_id: str) -> FeedbackVote | None:
    """The vote a feedback button casts; None for any other action id."""
    return {Action.FEEDBACK_UP: FeedbackVote.UP, Action.FEEDBACK_DOWN: FeedbackVote.DOWN}.get(action_id)


# The admin commands (`/qabot NAME` in chat, `/NAME` in the terminal) and what each does: the one list
# every front end registers, shows in its help and checks against.
ADMIN_COMMANDS: dict[str, str] = {
    "status": "Show the index version and health",
    "reindex": "Rebuild the index from the knowledge folder",
    "rollback": "Switch back to the previous index version",
    "report": "Show feedback and unanswered questions",
}


@dataclass(frozen=True)
class IncomingMessage:
    """One message addressed to the bot (mention, DM, slash command, thread follow-up)."""

    platform: str  # the adapter's name: "terminal", "slack", "discord", ...
    user_id: str
    channel_id: str
    text: str  # raw text as the platform gave it (mentions are stripped by the layer)
    thread_id: str | None = None  # the thread it was posted in, if any
    message_id: str | None = None  # the platform's id for this message (used to start a thread)
    is_dm: bool = False
    is_admin: bool = False  # adapter decides from platform facts (Manage Server, configured IDs)
    # the adapter's channel allow-list leaves this channel out (DMs are governed by QABOT_DMS_ENABLED)
    in_allowed_channel: bool = True
    # the platform answers a channel message in a thread (Slack, Discord); follow-ups there need no mention
    supports_threads: bool = False
    is_bot: bool = False  # sent by a bot (the bot itself included): always ignored
    addressed: bool = True  # mention, DM or slash command; False for a plain thread message
    private: bool = False  # answer only to the asker (ephemeral)
    # an explicit command (/ask): always gets a reply, even from someone already told about a rate limit
    is_command: bool = False
    event_id: str | None = None  # platform event id for de-duplication of retries


@dataclass(frozen=True)
class Button:
    action_id: str  # an Action
    label: str
    value: str  # opaque payload round-tripped by the platform (fits 2000 chars)


@dataclass(frozen=True)
class Reply:
    """What the bot says back; adapters render `answer` richly or fall back to `text`."""

    kind: ReplyKind
    text: str  # complete plain-text rendering (Markdown-ish), usable by any adapter
    answer: Answer | None = None
    buttons: tuple[Button, ...] = ()
    hints: tuple[str, ...] = ()  # follow-up suggestions
    private: bool = False
    index_version: str = ""
    # opaque id of this answer for feedback buttons (stored with question and passage ids)
    answer_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # the feedback report behind an admin's `report` (`text` is its plain rendering): a front end
    # renders it in its own markup
    report: FeedbackReport | None = None

    @property
    def should_send(self) -> bool:
        return self.kind is not ReplyKind.IGNORED
