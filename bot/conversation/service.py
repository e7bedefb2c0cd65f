"""The conversation layer: every front end (terminal, Slack, Discord) hands messages here and renders the Reply.

It owns the rules that are the same on every platform: ignore bots and retried events, channel
allow-lists and DMs, thread follow-ups, rate limits, admin commands, feedback, and turning errors into
a sentence a person can act on. It imports nothing from any platform SDK.
All methods are synchronous and thread-safe; async adapters call them via asyncio.to_thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.conversation.channel import Silence, confident, question_for_bot
from bot.conversation.feedback import FeedbackDatabaseError
from bot.conversation.models import (
    ADMIN_COMMANDS,
    Action,
    Button,
    EarlierThread,
    FeedbackVote,
    Handoff,
    IncomingMessage,
    Reply,
    ReplyKind,
)
from bot.conversation.privacy import Pseudonymizer
from bot.conversation.rebuild import RebuildCoordinator, RebuildOutcome, RebuildStatus
from bot.conversation.report import FeedbackReport, build_report, format_report, parse_since
from bot.conversation.similarity import best_match, engine_embedder, pack_vector
from bot.conversation.stores import ConversationStore, StoredAnswer, UnknownAnswerError
from bot.conversation.teach import Teaching
from bot.core.answerer import looks_elliptical
from bot.core.errors import IndexProblem
from bot.core.render import render_plain
from bot.core.types import Answer, AnswerKind, Turn
from bot.ops.metrics import Metrics
from bot.state.shared import SharedState

log = logging.getLogger(__name__)


CONTEXT_TURNS = 3  # earlier turns of a thread read as the context of a follow-up
# how long the list of watched channels is trusted before it is read again (another process, e.g. a
# second bot of the same platform on the same database, may have changed it)
WATCHED_CACHE_S = 30.0


@dataclass(frozen=True)
class AnswerPresentation:
    """How one kind of Answer reaches a person."""

    reply: ReplyKind
    question: bool = True  # the person asked something (False: greeting, thanks, nothing usable)
    logged: bool = False  # stored with its question and passages, for feedback and the report
    rated: bool = False  # carries the 👍/👎 buttons


# One entry per AnswerKind. Adapters render by ReplyKind, so a new kind of answer is one line here.
PRESENTATIONS: dict[AnswerKind, AnswerPresentation] = {
    AnswerKind.ANSWER: AnswerPresentation(ReplyKind.ANSWER, logged=True, rated=True),
    # "mentioned only": rendered like an answer (its own lead sentence, confidence low), rated like one
    AnswerKind.MENTIONED: AnswerPresentation(ReplyKind.ANSWER, logged=True, rated=True),
    AnswerKind.ABSTAIN: AnswerPresentation(ReplyKind.ABSTAIN, logged=True),
    AnswerKind.SMALLTALK: AnswerPresentation(ReplyKind.HELP, question=False),
    AnswerKind.EMPTY: AnswerPresentation(ReplyKind.HELP, question=False),
}
_UNLISTED = AnswerPresentation(ReplyKind.HELP)

TEXT_NOT_ADMIN = "Sorry, only admins can run `{command}`. Ask a server admin if the knowledge needs a refresh."
TEXT_DMS_OFF = "I don't answer direct messages here. Please ask me in one of the server's channels."
TEXT_CHANNEL_NOT_ALLOWED = (
    "I only answer in the channels my admins picked. Please ask me in one of those, "
    "or ask an admin to add this channel."
)
TEXT_RATE_LIMITED_USER = "You're asking faster than I can keep up. Please try again in {seconds}."
TEXT_RATE_LIMITED_CHANNEL = "This channel is asking faster than I can keep up. Please try again in {seconds}."
TEXT_FAILED = "Sorry, something went wrong while answering. It has been logged; please try again later."
TEXT_HINT_FOLLOW_UP = "Reply in this thread to ask a follow-up (no need to mention me)."
TEXT_WATCH_IN_DM = "Run this in the channel I should watch (not in a direct message)."
TEXT_WATCH_ON = (
    "I'm watching this channel now: I'll answer questions here without being mentioned, but only when the "
    "knowledge answers them confidently; otherwise I stay silent. `/qabot unwatch` stops it."
)
TEXT_WATCH_ALREADY = "I'm already watching this channel (questions here are answered without a mention)."
TEXT_WATCH_NOT_ALLOWED = (
    "Note: this channel is not on my list of allowed channels, so I won't answer here until an admin adds it."
)
TEXT_WATCH_MEMBER = "Make sure I'm a member of this channel, or I won't see its messages."
TEXT_UNWATCH_OFF = "I've stopped watching this channel: mention me to ask a question here."
TEXT_UNWATCH_NOT = "I wasn't watching this channel."
TEXT_WATCH_NOT_SAVED = (
    "I couldn't save that: the database is busy or unavailable. Nothing changed; try `/qabot {command}` again."
)
TEXT_UNWATCH_CONFIGURED = (
    "This channel is watched because my configuration lists it (the watched channel ids setting of this "
    "platform): an admin removes it there and restarts me."
)
TEXT_FEEDBACK_NEW = "Thanks for the feedback!"
TEXT_FEEDBACK_UPDATED = "Thanks, I've updated your vote."
TEXT_FEEDBACK_UNCHANGED = "Thanks, your vote was already recorded."
TEXT_HANDOFF_LABEL = "🙋 Ask a person"
TEXT_HANDOFF_ASKED = "I've asked people to help in this thread."
TEXT_HANDOFF_ALREADY = "People were already asked to help in this thread."
TEXT_HANDOFF_OFF = "Nobody is set up to take questions from this channel. Ask an admin to set one up."
TEXT_FEEDBACK_UNKNOWN = (
    "Thanks, but I can't find that answer any more (it may predate a reset). Ask again and vote on the new answer."
)


class ConversationService:
    def __init__(
        self,
        engine: Any,
        *,
        settings: Settings,
        feedback: ConversationStore,
        rebuilder: RebuildCoordinator | None = None,
        pseudonyms: Pseudonymizer | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
        metrics: Metrics | None = None,
        teaching: Teaching | None = None,
    ):
        self.engine = engine
        # "Teach qabot", its buttons and `/qabot taught` (factory.py gives it the engine's steering)
        self.teaching = teaching or Teaching(engine, feedback)
        self.settings = settings
        self.feedback = feedback
        # keyed pseudonyms of user and channel ids: the only form in which ids reach the logs
        self.pseudonyms = pseudonyms or Pseudonymizer(settings.secret_key)
        self.rebuilder = rebuilder or RebuildCoordinator(engine, settings.knowledge_dir, settings.index_dir)
        self._clock = clock
        self._wall_clock = wall_clock  # the store's time: when earlier questions were asked
        self._watched: dict[str, tuple[float, frozenset[str]]] = {}  # platform -> (read at, channel ids)
        self._watched_lock = threading.Lock()
        # retries and rate limits: in this process, or in Redis for several replicas (bot/state)
        self.shared = shared or SharedState.local(settings, clock=clock)
        self.events = self.shared.events
        self.limits = self.shared.limits
        self.metrics = metrics or Metrics()

    # ---- start-up ------------------------------------------------------------------------------

    def warm_up(self) -> str:
        """Load the index and the model now, so the first question is not the slow one; returns the
        index version. Raises IndexProblem (it carries the fix) when there is no usable index: a chat
        bot logs it and keeps running (questions get the fix as their answer, and `/qabot reindex`
        can build one), the terminal stops with it."""
        return str(self.engine.version)

    # ---- questions -----------------------------------------------------------------------------

    def handle(self, msg: IncomingMessage) -> Reply:
        started = time.perf_counter()
        reply = self._handle(msg)
        self.metrics.observe(msg, reply, time.perf_counter() - started)
        return reply

    def _handle(self, msg: IncomingMessage) -> Reply:
        if msg.is_bot:
            return _ignored("bot")
        if msg.event_id and self.events.seen_before(f"{msg.platform}:{msg.event_id}"):
            log.info("ignoring a retried event on %s", msg.platform)
            return _ignored("duplicate")
        if not msg.addressed and not self._in_bot_thread(msg):
            if self._in_watched_channel(msg):
                return self._handle_watched(msg)
            return _ignored("not addressed")
        if msg.is_dm and not self.settings.dms_enabled:
            return Reply(ReplyKind.REFUSED, TEXT_DMS_OFF, private=True)
        if not msg.in_allowed_channel and not msg.is_dm:
            return Reply(ReplyKind.REFUSED, TEXT_CHANNEL_NOT_ALLOWED, private=True)
        if msg.platform not in self.settings.rate_limit_exempt_platforms:
            decision = self.limits.check(msg.platform, msg.user_id, msg.channel_id)
            if not decision.allowed:
                if decision.already_told and not msg.is_command:
                    return _ignored("rate limited, already told")
                template = TEXT_RATE_LIMITED_USER if decision.scope == "user" else TEXT_RATE_LIMITED_CHANNEL
                return Reply(
                    ReplyKind.RATE_LIMITED,
                    template.format(seconds=_seconds(decision.retry_after_s)),
                    private=True,
                    extra={"retry_after_s": str(decision.retry_after_s)},
                )

        conversation = _conversation(msg)
        context = self._context(msg, conversation)
        try:
            answer: Answer = self.engine.answer(msg.text, context)
        except IndexProblem as err:
            log.error("cannot answer on %s: %s", msg.platform, err.message)
            return Reply(ReplyKind.ERROR, _index_problem_text(err), private=msg.private)
        except Exception:
            log.exception("answering failed on %s", msg.platform)
            return Reply(ReplyKind.ERROR, TEXT_FAILED, private=msg.private)

        presentation = PRESENTATIONS.get(answer.kind, _UNLISTED)
        if not msg.addressed and not presentation.question:
            # people chatting in the bot's thread ("thanks!", "+1") are not talking to the bot
            return _ignored("thread chatter")
        return self._reply_for(msg, answer, presentation, conversation)

    # ---- watched channels: questions answered without a mention --------------------------------

    def watched_channels(self, platform: str) -> frozenset[str]:
        """The channels of `platform` watched with `/qabot watch` (read from the store, cached briefly)."""
        now = self._clock()
        with self._watched_lock:
            cached = self._watched.get(platform)
            if cached is not None and now - cached[0] < WATCHED_CACHE_S:
                return cached[1]
        try:
            channels = self.feedback.watched_channels(platform)
        except Exception:  # the store is unavailable: keep what was known
            log.exception("could not read the watched channels")
            channels = cached[1] if cached is not None else frozenset()
        with self._watched_lock:
            self._watched[platform] = (now, channels)
        return channels

    def _in_watched_channel(self, msg: IncomingMessage) -> bool:
        """A top-level message in a watched channel (a reply in a thread belongs to its people)."""
        if msg.is_dm or msg.private:
            return False
        if msg.supports_threads and msg.thread_id not in (None, msg.message_id):
            return False
        return msg.watched or msg.channel_id in self.watched_channels(msg.platform)

    def _handle_watched(self, msg: IncomingMessage) -> Reply:
        """Nobody asked the bot: it speaks only to a question it answers confidently, and otherwise
        stays silent (no abstention, no "mentioned only", no rate-limit notice, no error message)."""
        if not msg.in_allowed_channel:
            return _ignored("watched, but not an allowed channel")
        why = question_for_bot(msg.text, mentions_someone=msg.mentions_someone)
        if why is not None:
            return _ignored(why)
        limited = msg.platform not in self.settings.rate_limit_exempt_platforms
        if limited and not self.limits.allows(msg.platform, msg.user_id, msg.channel_id):
            return _ignored("rate limited")
        try:
            answer: Answer = self.engine.answer(msg.text, ())
        except Exception as err:  # IndexProblem included: nobody asked, so nobody is told
            log.error("could not answer in a watched channel on %s: %s", msg.platform, type(err).__name__)
            return _ignored("failed")
        if not confident(answer):
            return _ignored(Silence.NOT_CONFIDENT)
        if limited and not self.limits.check(msg.platform, msg.user_id, msg.channel_id).allowed:
            return _ignored("rate limited")
        log.info(
            "answered a question in watched channel %s unasked", self.pseudonyms.channel(msg.platform, msg.channel_id)
        )
        reply = self._reply_for(msg, answer, PRESENTATIONS[answer.kind], _conversation(msg))
        return dataclasses.replace(reply, extra={**reply.extra, "watched": "true"})

    def _watch(self, msg: IncomingMessage, on: bool) -> str:
        """`/qabot watch` and `/qabot unwatch` in the channel they are run in."""
        if msg.is_dm:
            return TEXT_WATCH_IN_DM
        changed = self.feedback.set_watched(msg.platform, msg.channel_id, on)
        with self._watched_lock:
            self._watched.pop(msg.platform, None)
        where = self.pseudonyms.channel(msg.platform, msg.channel_id)
        if on:
            if changed:
                log.info("now watching channel %s", where)
            lines = [TEXT_WATCH_ON if changed else TEXT_WATCH_ALREADY]
            if not msg.in_allowed_channel:
                lines.append(TEXT_WATCH_NOT_ALLOWED)
            elif changed:
                lines.append(TEXT_WATCH_MEMBER)
            return "\n".join(lines)
        if changed:
            log.info("stopped watching channel %s", where)
        if msg.watched:
            return (TEXT_UNWATCH_OFF + "\n" if changed else "") + TEXT_UNWATCH_CONFIGURED
        return TEXT_UNWATCH_OFF if changed else TEXT_UNWATCH_NOT

    def _context(self, msg: IncomingMessage, conversation: str | None) -> tuple[Turn, ...]:
        """The earlier turns of this conversation (its thread, or the terminal session), from the store."""
        if not conversation:
            return ()
        try:
            return tuple(self.feedback.thread_turns(msg.platform, msg.channel_id, conversation, limit=CONTEXT_TURNS))
        except Exception:  # without context the question is still answered, on its own
            log.exception("could not read the conversation's earlier turns")
            return ()

    def _reply_for(
        self, msg: IncomingMessage, answer: Answer, presentation: AnswerPresentation, conversation: str | None = None
    ) -> Reply:
        kind = presentation.reply
        answer_id: str | None = None
        thread = msg.thread_id or msg.message_id
        threaded = msg.supports_threads and not msg.is_dm and not msg.private
        # the normalised question: the one the engine just encoded, so its vector comes without a second encoding
        vector = self._question_vector(answer.normalized_question or msg.text) if presentation.logged else None
        repeat_of: EarlierThread | None = None
        if vector is not None and presentation.rated and threaded and thread and not _follow_up(msg.text, answer):
            repeat_of = self._earlier_thread(msg, thread, vector)
        if presentation.logged:
            answer_id = uuid.uuid4().hex
            try:
                self.feedback.record_answer(
                    answer_id=answer_id,
                    question=msg.text,
                    normalized_question=answer.normalized_question,
                    passage_ids=[q.passage_id for q in answer.quotes],
                    index_version=answer.index_version,
                    kind=answer.kind.value,
                    platform=msg.platform,
                    channel_id=msg.channel_id,
                    user_id=msg.user_id,
                    thread_id=conversation or "",
                    answer_json=_answer_json(answer),
                    question_vector=pack_vector(*vector) if vector is not None else "",
                )
            except Exception:  # losing a log row must not lose the answer
                log.exception("could not store answer %s", answer_id)
                answer_id = None

        buttons = _feedback_buttons(answer_id) if presentation.rated and answer_id else ()
        handoff: Handoff | None = None
        if threaded and thread and msg.handoff_to:
            if presentation.rated and answer_id:
                buttons = (*buttons, Button(Action.HANDOFF, TEXT_HANDOFF_LABEL, answer_id))
            elif answer.kind is AnswerKind.ABSTAIN:
                handoff = self._hand_off(
                    msg.platform, msg.channel_id, thread, msg.handoff_to, msg.text, "abstain", answer_id or ""
                )

        extra: dict[str, str] = {}
        if threaded and thread:
            extra["thread_id"] = thread
            try:
                self.remember_thread(msg.platform, msg.channel_id, thread)
            except Exception:
                log.exception("could not remember thread")

        return Reply(
            kind,
            render_plain(answer),
            answer=answer,
            buttons=buttons,
            hints=_hints(kind, threaded),
            private=msg.private,
            index_version=answer.index_version,
            answer_id=answer_id,
            extra=extra,
            handoff=handoff,
            repeat_of=repeat_of,
        )

    # ---- repeats and hand-offs -------------------------------------------------------------------

    def _question_vector(self, text: str) -> tuple[str, Any] | None:
        """(encoder id, unit vector) of a question, or None when the engine has no question encoder or it
        fails (the answer goes out without a repeat link; the report groups such a question by its words)."""
        embed = engine_embedder(self.engine)
        if embed is None or not text.strip():
            return None
        try:
            encoder, vectors = embed([text])
            return encoder, vectors[0]
        except Exception:
            log.exception("could not embed the question")
            return None

    def _earlier_thread(self, msg: IncomingMessage, thread: str, vector: tuple[str, Any]) -> EarlierThread | None:
        """The thread of the closest question answered in this channel within QABOT_REPEAT_DAYS, if it is
        at least QABOT_REPEAT_SIMILARITY close; never this thread."""
        days = self.settings.repeat_days
        if days <= 0:
            return None
        try:
            recent = self.feedback.recent_answers(
                msg.platform,
                msg.channel_id,
                since=self._wall_clock() - days * 86400.0,
                kinds=(AnswerKind.ANSWER.value, AnswerKind.MENTIONED.value),
            )
        except Exception:
            log.exception("could not read the channel's recent answers")
            return None
        candidates = [
            (r.question_vector, r)
            for r in recent
            if r.thread_id and r.thread_id != thread and not looks_elliptical(r.question)
        ]
        best = best_match(vector[1], vector[0], candidates)
        if best is None or best[1] < self.settings.repeat_similarity:
            return None
        earlier: StoredAnswer = candidates[best[0]][1]  # type: ignore[assignment]
        return EarlierThread(earlier.channel_id, earlier.thread_id, earlier.created_at, round(best[1], 4))

    def _hand_off(
        self, platform: str, channel_id: str, thread_id: str, to: str, question: str, reason: str, answer_id: str
    ) -> Handoff | None:
        """A Handoff when this thread has none yet (the store remembers it across restarts and replicas);
        None when people were already tagged there. When the store cannot be written the people are tagged
        anyway: a person asked twice is better than a question nobody sees."""
        try:
            first = self.feedback.claim_handoff(platform, channel_id, thread_id, reason=reason, answer_id=answer_id)
        except Exception:
            log.exception("could not record the hand-off; tagging the people anyway")
            first = True
        if not first:
            return None
        log.info("handing a question off to people in channel %s", self.pseudonyms.channel(platform, channel_id))
        return Handoff(to=to, reason=reason, question=question, channel_id=channel_id, thread_id=thread_id)

    def _handoff_for_answer(
        self, answer_id: str, platform: str, handoff_for: Callable[[str], str] | None, reason: str
    ) -> tuple[bool, Handoff | None]:
        """(configured, Handoff or None) for a hand-off asked about a stored answer (👎, "Ask a person")."""
        if handoff_for is None:
            return False, None
        stored = self.feedback.get_answer(answer_id)
        if stored is None or stored.platform != platform or not stored.thread_id:
            return False, None
        to = handoff_for(stored.channel_id)
        if not to:
            return False, None
        question = stored.question
        return True, self._hand_off(platform, stored.channel_id, stored.thread_id, to, question, reason, answer_id)

    def request_handoff(
        self, answer_id: str, *, platform: str, user_id: str, channel_id: str, handoff_for: Callable[[str], str]
    ) -> Reply:
        """The "Ask a person" button: tag the channel's people in the answer's thread, once per thread. A
        private acknowledgement; its `handoff` (when set) is for the adapter to post in the thread."""
        try:
            configured, handoff = self._handoff_for_answer(answer_id, platform, handoff_for, "asked")
        except Exception:
            log.exception("could not hand off")
            return Reply(ReplyKind.ERROR, TEXT_FAILED, private=True, extra={"handoff": "failed"})
        if not configured:
            return Reply(ReplyKind.HELP, TEXT_HANDOFF_OFF, private=True, extra={"handoff": "off"})
        text = TEXT_HANDOFF_ASKED if handoff is not None else TEXT_HANDOFF_ALREADY
        state = "asked" if handoff is not None else "already"
        return Reply(ReplyKind.HELP, text, private=True, answer_id=answer_id, handoff=handoff, extra={"handoff": state})

    def stored_reply(self, answer_id: str) -> Reply | None:
        """The answer recorded as `answer_id`, as it was first shown (its feedback buttons, no hints), read
        back from the store: any replica, or the same one after a restart, can show it again (Slack's "Share
        in channel"). None when there is no such answer or it was stored without its text (older rows)."""
        try:
            stored = self.feedback.get_answer(answer_id)
            if stored is None or not stored.answer_json:
                return None
            answer = Answer.from_dict(json.loads(stored.answer_json))
            answer = dataclasses.replace(
                answer, question=stored.question, normalized_question=stored.normalized_question
            )
        except Exception:
            log.exception("could not read stored answer %s", answer_id)
            return None
        presentation = PRESENTATIONS.get(answer.kind, _UNLISTED)
        return Reply(
            presentation.reply,
            render_plain(answer),
            answer=answer,
            buttons=_feedback_buttons(answer_id) if presentation.rated else (),
            index_version=answer.index_version,
            answer_id=answer_id,
        )

    def remember_thread(self, platform: str, channel_id: str, thread_id: str) -> None:
        """Follow-ups in this thread are answered without a mention (adapters may call this directly
        when the thread they created has an id other than the asking message's)."""
        self.feedback.remember_thread(platform, channel_id, thread_id)

    def _in_bot_thread(self, msg: IncomingMessage) -> bool:
        if not msg.thread_id:
            return False
        try:
            return self.feedback.is_bot_thread(msg.platform, msg.channel_id, msg.thread_id)
        except Exception:
            log.exception("could not look up thread")
            return False

    # ---- admin ---------------------------------------------------------------------------------

    def handle_admin(self, msg: IncomingMessage, command: str) -> Reply:
        command = command.strip().lstrip("/").lower()
        if not msg.is_admin:
            log.warning(
                "refused admin command %r from non-admin %s in channel %s",
                command[:40] if command in ADMIN_COMMANDS else "(unknown)",
                self.pseudonyms.user(msg.platform, msg.user_id),
                self.pseudonyms.channel(msg.platform, msg.channel_id),
            )
            return Reply(ReplyKind.REFUSED, TEXT_NOT_ADMIN.format(command=command[:40] or "admin"), private=True)
        if command not in ADMIN_COMMANDS:
            return Reply(
                ReplyKind.HELP,
                f"Unknown admin command `{command[:40]}`. Try one of: {', '.join(ADMIN_COMMANDS)}.",
                private=msg.private,
            )
        log.info("admin command %s from %s", command, self.pseudonyms.user(msg.platform, msg.user_id))
        try:
            if command == "status":
                return self._admin_reply(msg, self.status_text())
            if command == "report":
                try:
                    since = _report_since(msg.text)
                except ValueError as err:
                    return Reply(ReplyKind.HELP, str(err), private=msg.private)
                report = build_report(self.feedback, since=since, embed=engine_embedder(self.engine))
                return self._admin_reply(msg, format_report(report), report=report)
            if command == "taught":
                try:
                    return self._admin_reply(msg, self.teaching.admin(msg.text))
                except FeedbackDatabaseError as err:
                    log.error("could not change the taught pairs: %s", err)
                    return Reply(ReplyKind.ERROR, TEXT_WATCH_NOT_SAVED.format(command="taught"), private=msg.private)
            if command in ("watch", "unwatch"):
                try:
                    return self._admin_reply(msg, self._watch(msg, command == "watch"))
                except FeedbackDatabaseError as err:  # e.g. another process holds the write lock
                    log.error("could not %s a channel: %s", command, err)
                    return Reply(ReplyKind.ERROR, TEXT_WATCH_NOT_SAVED.format(command=command), private=msg.private)
            outcome = self.rebuilder.rebuild() if command == "reindex" else self.rebuilder.rollback()
        except IndexProblem as err:
            return Reply(ReplyKind.ERROR, _index_problem_text(err), private=msg.private)
        except Exception:
            log.exception("admin command %s failed", command)
            return Reply(ReplyKind.ERROR, TEXT_FAILED, private=msg.private)
        kind = ReplyKind.ERROR if outcome.status is RebuildStatus.FAILED else ReplyKind.ADMIN
        text = rebuild_text(command, outcome)
        if outcome.status in (RebuildStatus.REBUILT, RebuildStatus.ROLLED_BACK):
            text = "\n".join(filter(None, (text, self.teaching.missing_note())))  # taught passages gone
        return Reply(
            kind,
            text,
            private=msg.private,
            index_version=outcome.version,
            extra={"status": outcome.status.value},
        )

    # ---- teaching ("Teach qabot", bot/conversation/teach.py) ------------------------------------

    def teach_offer(self, msg: IncomingMessage) -> Reply:
        """An admin ran "Teach qabot" on the question in `msg`: its candidate passages as buttons."""
        return self.teaching.offer(msg)

    def teach_pick(self, value: str, *, platform: str, user_id: str, is_admin: bool) -> Reply:
        """A teach button was clicked: store the pair (or "not covered")."""
        return self.teaching.pick(value, platform=platform, user_id=user_id, is_admin=is_admin)

    def _admin_reply(self, msg: IncomingMessage, text: str, *, report: FeedbackReport | None = None) -> Reply:
        version = ""
        try:
            version = str(self.engine.version)
        except Exception:
            pass
        return Reply(ReplyKind.ADMIN, text, private=msg.private, index_version=version, report=report)

    def status_text(self) -> str:
        m = self.engine.manifest
        docs = m.get("documents") or []
        names = ", ".join(d.get("title") or d.get("path", "?") for d in docs[:5])
        if len(docs) > 5:
            names += f" and {len(docs) - 5} more"
        models = ", ".join(f"{e['model_name']} ({e['dim']} dims)" for e in m.get("encoders", []))
        rebuilding = ""
        if self.rebuilder.running:
            pid = getattr(self.rebuilder, "builder_pid", None)
            rebuilding = f"  (a rebuild is running{f', builder pid {pid}' if pid else ''})"
        lines = [
            f"Index version: {m.get('index_version', '?')}{rebuilding}",
            f"Built: {m.get('built_at', '?')}",
            f"Documents: {len(docs)}" + (f" ({names})" if names else ""),
            f"Passages: {m.get('passage_count', '?')}",
            f"Profile: {m.get('profile', '?')}; models: {models or '?'}",
        ]
        try:
            answered = self.feedback.answer_count(kind="answer")
            abstained = self.feedback.answer_count(kind="abstain")
            totals = self.feedback.vote_totals()
            up, down = sum(t.up for t in totals), sum(t.down for t in totals)
            lines.append(f"Answered: {answered}, abstained: {abstained}, votes: {up} 👍 / {down} 👎")
        except Exception:
            log.exception("could not read feedback totals")
        return "\n".join(lines)

    # ---- feedback ------------------------------------------------------------------------------

    def record_feedback(
        self,
        answer_id: str,
        vote: FeedbackVote | int,
        *,
        platform: str,
        user_id: str,
        channel_id: str,
        handoff_for: Callable[[str], str] | None = None,
    ) -> Reply:
        """Store a vote. A 👎 on an answer in a thread of a channel with people to hand off to
        (`handoff_for(channel_id)`, the adapter's setting) tags them there, once per thread: the
        acknowledgement's `handoff` is for the adapter to post."""
        try:
            result = self.feedback.record_vote(
                answer_id, int(FeedbackVote(vote)), platform=platform, user_id=user_id, channel_id=channel_id
            )
        except (UnknownAnswerError, ValueError):
            log.info("feedback for an unknown answer id on %s", platform)
            return Reply(ReplyKind.ERROR, TEXT_FEEDBACK_UNKNOWN, private=True, extra={"feedback": "unknown"})
        except Exception:
            log.exception("could not store feedback")
            return Reply(ReplyKind.ERROR, TEXT_FAILED, private=True, extra={"feedback": "failed"})
        text = {"new": TEXT_FEEDBACK_NEW, "queued": TEXT_FEEDBACK_NEW, "updated": TEXT_FEEDBACK_UPDATED}.get(
            result, TEXT_FEEDBACK_UNCHANGED
        )
        handoff: Handoff | None = None
        if int(vote) == int(FeedbackVote.DOWN) and handoff_for is not None:
            try:
                handoff = self._handoff_for_answer(answer_id, platform, handoff_for, "thumbs_down")[1]
            except Exception:  # the vote is stored; a hand-off that failed is logged
                log.exception("could not hand off after a 👎")
        # ReplyKind has no dedicated "ack" member; HELP is the closest neutral one (extra says what it is)
        return Reply(
            ReplyKind.HELP, text, private=True, answer_id=answer_id, extra={"feedback": result}, handoff=handoff
        )


MAX_WARNINGS_SHOWN = 5
MAX_WARNING_CHARS = 300


def _warnings_text(warnings: tuple[str, ...]) -> str:
    """The build's warnings as lines to append to a reply (the first few, each cut short)."""
    if not warnings:
        return ""
    shown = [w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 1] + "…" for w in warnings]
    lines = [f"\nWarnings ({len(warnings)}):", *(f"- {w}" for w in shown[:MAX_WARNINGS_SHOWN])]
    if len(warnings) > MAX_WARNINGS_SHOWN:
        lines.append(f"- … and {len(warnings) - MAX_WARNINGS_SHOWN} more (qabot index info --json lists them all)")
    return "\n".join(lines)


def rebuild_text(command: str, outcome: RebuildOutcome) -> str:
    return _rebuild_text(command, outcome) + _warnings_text(outcome.warnings)


def _rebuild_text(command: str, outcome: RebuildOutcome) -> str:
    s = outcome.status
    if s is RebuildStatus.BUSY:
        return "A rebuild is already running; I'll keep answering from the current index meanwhile."
    if s is RebuildStatus.FAILED:
        what = "Rebuild" if command == "reindex" else "Rollback"
        serving = f"version {outcome.version}" if outcome.version else "the previous index"
        return f"{what} failed: {outcome.error}\nThe old index keeps serving ({serving})."
    if s is RebuildStatus.UNCHANGED:
        return (
            f"Nothing changed in the knowledge, so the index is up to date.\n"
            f"Index version: {outcome.version} ({outcome.passage_count} passages, checked in {outcome.took_s:.1f} s)"
        )
    if s is RebuildStatus.ROLLED_BACK:
        return (
            f"Rolled back from {outcome.previous_version or '?'}.\n"
            f"Index version: {outcome.version} ({outcome.passage_count} passages) is serving now."
        )
    return (
        f"Rebuilt the index in {outcome.took_s:.1f} s: {outcome.passage_count} passages from "
        f"{outcome.documents} document(s).\nIndex version: {outcome.version} is serving now"
        + (f" (was {outcome.previous_version})." if outcome.previous_version else ".")
    )


def _feedback_buttons(answer_id: str) -> tuple[Button, ...]:
    return (
        Button(Action.FEEDBACK_UP, "👍 Helpful", answer_id),
        Button(Action.FEEDBACK_DOWN, "👎 Not helpful", answer_id),
    )


def _answer_json(answer: Answer) -> str:
    """What the store keeps to show an answer again: the Answer without the question (the answer log keeps
    that, and erases it after the retention period) and without the engine's debug extras."""
    data = answer.to_dict()
    for key in ("question", "normalized_question", "context_used", "abstained"):
        data.pop(key, None)
    return json.dumps(data, ensure_ascii=False)


def _follow_up(text: str, answer: Answer) -> bool:
    """A question read with its thread's earlier turns, or one that only makes sense with them ("and ML
    models?"): the same words elsewhere mean something else, so it is never linked as a repeat."""
    return bool(answer.extra.get("context_used")) or looks_elliptical(text)


def _conversation(msg: IncomingMessage) -> str | None:
    """Which conversation a message belongs to, for follow-ups: its thread (on Slack and Discord a
    mention's answer opens the thread named after the asking message), or the session the adapter gives
    as thread (the terminal). Private answers (/ask) stand alone."""
    if msg.private:
        return None
    if msg.supports_threads:
        return msg.thread_id or (None if msg.is_dm else msg.message_id)
    return msg.thread_id


def _report_since(text: str) -> float | None:
    """`report --since 7d` (or `report since 2026-11-01`): the start it names, None without one."""
    words = text.split()
    for i, word in enumerate(words):
        if word.lower() in ("--since", "since"):
            if i + 1 >= len(words):
                raise ValueError("--since needs a value, e.g. `/qabot report --since 7d` or `--since 2026-11-01`")
            return parse_since(words[i + 1])
        if word.lower().startswith("--since="):
            return parse_since(word.split("=", 1)[1])
    return None


def _index_problem_text(err: IndexProblem) -> str:
    return f"I can't search the knowledge right now: {err.message} An admin can fix it: {err.fix}"


def _hints(kind: ReplyKind, threaded: bool) -> tuple[str, ...]:
    if kind is ReplyKind.ANSWER:
        return (TEXT_HINT_FOLLOW_UP,) if threaded else ()
    if kind is ReplyKind.ABSTAIN:
        return ("Try rephrasing with words the article might use, or ask about one of the closest sections.",)
    return ()


def _seconds(n: int) -> str:
    return "1 second" if n == 1 else f"{n} seconds"


def _ignored(why: str) -> Reply:
    return Reply(ReplyKind.IGNORED, "", extra={"why": why})
