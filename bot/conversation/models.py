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
    from bot.conversation.teach import TeachView


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
    HANDOFF = "qabot_handoff"  # "Ask a person": tag the channel's configured people in the thread
    TEACH = "qabot_teach"  # "Teach qabot" on a question (Slack message shortcut's callback_id)
    TEACH_PICK = "qabot_teach_pick"  # this passage answers the question being taught
    TEACH_NOT_COVERED = "qabot_teach_not_covered"  # the knowledge does not cover it


# The name of the message action that teaches the bot (Slack's message shortcut, Discord's context menu)
TEACH_NAME = "Teach qabot"


def feedback_vote(action_id: str) -> FeedbackVote | None:
    """The vote a feedback button casts; None for any other action id."""
    return {Action.FEEDBACK_UP: FeedbackVote.UP, Action.FEEDBACK_DOWN: FeedbackVote.DOWN}.get(action_id)


# The admin commands (`/qabot NAME` in chat, `/NAME` in the terminal) and what each does: the one list
# every front end registers, shows in its help and checks against.
ADMIN_COMMANDS: dict[str, str] = {
    "status": "Show the index version and health",
    "reindex": "Rebuild the index from the knowledge folder",
    "rollback": "Switch back to the previous index version",
    "report": "Show the worst-rated answers and the knowledge gaps (`report --since 7d`)",
    "watch": "Answer questions in this channel without a mention (only confident answers)",
    "unwatch": "Stop answering questions in this channel without a mention",
    "taught": "List what admins taught (Teach qabot); `taught undo ID` removes one",
}


@dataclass(frozen=True)
class IncomingMessage:
    """One message for the bot: a mention, DM, slash command, thread follow-up, or a message in a watched channel."""

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
    addressed: bool = True  # mention, DM or slash command; False for a plain thread or channel message
    # the adapter's own setting lists this channel as watched (questions answered without a mention;
    # channels watched with `/qabot watch` are the service's to know)
    watched: bool = False
    # the message mentions a person or a group (other than the bot), or replies to someone: it is
    # addressed to them, not to a bot watching the channel
    mentions_someone: bool = False
    private: bool = False  # answer only to the asker (ephemeral)
    # an explicit command (/ask): always gets a reply, even from someone already told about a rate limit
    is_command: bool = False
    event_id: str | None = None  # platform event id for de-duplication of retries
    # the people to hand this channel's questions to (a Slack user group id, a Discord role id), from the
    # adapter's per-channel setting; '' (the default) switches hand-off off here. Opaque to the core
    handoff_to: str = ""


HANDOFF_REASONS: dict[str, str] = {
    "abstain": "I couldn't answer this from the knowledge base. Can someone help?",
    "thumbs_down": "My answer here was marked not helpful. Can someone help?",
    "asked": "Someone asked for a person here. Can someone help?",
}


@dataclass(frozen=True)
class Handoff:
    """Tag people in a thread, once per thread: the adapter renders `to` as its platform's mention of
    that group or role, then `text` and the question (as a quote, its markup escaped)."""

    to: str  # the adapter's group / role id (IncomingMessage.handoff_to)
    reason: str  # a key of HANDOFF_REASONS
    question: str  # '' when the question was erased by the retention setting
    channel_id: str
    thread_id: str

    @property
    def text(self) -> str:
        return HANDOFF_REASONS.get(self.reason, HANDOFF_REASONS["asked"])


@dataclass(frozen=True)
class EarlierThread:
    """A question asked (and answered) in the same channel recently that the new one repeats: the adapter
    links to its thread (Slack permalink, Discord jump URL)."""

    channel_id: str
    thread_id: str  # the platform's id of the thread (Slack: the asking message's ts)
    asked_at: float  # unix time
    similarity: float

    def label(self, now: float) -> str:
        """ "A similar question was answered here 3 days ago" (the adapter links the thread)."""
        return f"A similar question was answered here {_ago(now - self.asked_at)}"


def _ago(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 2:
        return "just now"
    if minutes < 120:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours ago"
    return f"{hours // 24} days ago"


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
    # people to tag in the thread (posted by the adapter as its own message, after this reply)
    handoff: Handoff | None = None
    # the earlier thread this question repeats (the adapter adds a link to it)
    repeat_of: EarlierThread | None = None
    # "Teach qabot": the question and its candidate passages (the buttons are in `buttons`)
    teach: TeachView | None = None

    @property
    def should_send(self) -> bool:
        return self.kind is not ReplyKind.IGNORED
