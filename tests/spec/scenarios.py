"""The shared conversation spec: one table of scenarios, run against every front end (terminal, Slack, Discord).

Each platform writes a Driver that plays a person on that platform through the real adapter and
decodes what the adapter delivered into Outbound messages. `run_scenario(driver, scenario)` asserts.

Conventions for drivers:
- `ask(text, mention=True)`: `text` is the plain question; the driver adds its platform's mention
  of the bot when `mention` is True (Slack `<@UBOT>`, Discord `<@id>`; the terminal needs none).
- Every scenario uses its own user and channel ids, so one service may serve the whole table.
- A driver without threads (the terminal) sets `supports_threads = False`.
- Build the service with `make_spec_service(spec_settings(tmp_path, index_dir=built_index_dir), engine_holder)`
  so the model and index load once per session.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.adapters.discord.settings import DiscordSettings
from bot.adapters.slack.settings import SlackSettings
from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.models import Action
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService

FEEDBACK_UP, FEEDBACK_DOWN = Action.FEEDBACK_UP, Action.FEEDBACK_DOWN

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE_DIR = REPO / "knowledge"

SPEC_ADMIN_USER = "UADMIN"  # listed as an admin on every platform in spec_settings
SPEC_USER_RATE_LIMIT = 3  # small, so the rate-limit scenario needs only a few questions

ML_QUESTION = "what is machine learning?"
ML_PHRASE = "algorithms that enable computers to learn from data"
OFF_TOPIC_QUESTION = "what's the best pizza topping in Naples?"
LONG_QUESTION = "what are the benefits and limitations of generative AI and machine learning?"


@dataclass
class Outbound:
    """One message the front end delivered, decoded from the platform payload."""

    text: str  # all visible text of that message (Slack blocks / Discord embeds flattened to text)
    private: bool  # ephemeral / only the asker sees it
    thread_id: str | None  # thread it was posted in (None = channel/DM top level)
    pings_nobody: bool  # the payload guarantees no mass/role/user ping
    within_limits: bool  # the payload respects the platform's size limits (terminal: always True)
    buttons: list[str] = field(default_factory=list)  # action ids / custom ids of buttons
    raw: object = None  # platform payload, for debugging


class Driver(Protocol):
    platform: str

    async def ask(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        thread: str | None = None,
        mention: bool = True,
        dm: bool = False,
    ) -> list[Outbound]: ...

    async def admin(self, command: str, *, user: str = "U1", admin: bool) -> list[Outbound]: ...

    async def click_feedback(self, outbound: Outbound, *, up: bool, user: str = "U1") -> list[Outbound]: ...

    def feedback_count(self) -> int: ...


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Driver], Awaitable[None]]

    def __str__(self) -> str:  # pytest ids
        return self.name


async def run_scenario(driver: Driver, scenario: Scenario) -> None:
    """Run one scenario against `driver`; raises AssertionError (with the outbounds) on failure."""
    await scenario.run(driver)


# ---- settings and service for the spec ----------------------------------------------------------


def spec_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The shared settings every platform's spec run uses: small rate limits, feedback db in tmp.

    Pass `index_dir=built_index_dir` (the session fixture) to serve the real index. Each platform's
    own settings (tokens, admin ids) come from spec_slack_settings / spec_discord_settings.
    """
    values: dict[str, Any] = {
        "index_dir": tmp_path / "index",
        "knowledge_dir": KNOWLEDGE_DIR,
        "feedback_db": tmp_path / "spec-feedback.sqlite3",
        "dms_enabled": True,
        "user_rate_limit": SPEC_USER_RATE_LIMIT,
        "channel_rate_limit": 20,
        "rate_window_s": 60.0,
        "rate_limit_exempt_platforms": (),  # the spec checks the terminal's handling of limits too
    }
    values.update(overrides)
    return Settings(**values)


# fake credentials: the fakes on 127.0.0.1 accept anything; the shapes pass each adapter's check()


def spec_slack_settings(api_url: str) -> SlackSettings:
    return SlackSettings(
        _env_file=None,
        bot_token="xoxb-spec-bot-token",
        app_token="xapp-spec-app-token",
        signing_secret="spec-signing-secret",
        admin_user_ids=(SPEC_ADMIN_USER,),
        workspace_admins_are_admins=False,
        api_url=api_url,
    )


def spec_discord_settings() -> DiscordSettings:
    return DiscordSettings(_env_file=None, token="spec-discord-token", admin_user_ids=(SPEC_ADMIN_USER,))


def make_spec_service(settings: Settings, engine: Any) -> ConversationService:
    """A service over a shared engine (e.g. the `engine_holder` fixture) with its own feedback store."""
    return ConversationService(
        engine,
        settings=settings,
        feedback=FeedbackStore(settings.feedback_db),
        rebuilder=RebuildCoordinator(engine, settings.knowledge_dir, settings.index_dir),
    )


# ---- helpers --------------------------------------------------------------------------------


def plain(text: str) -> str:
    """Visible words only: no markup (*bold*, > quote bars), entities decoded, whitespace collapsed."""
    text = html.unescape(text)
    text = re.sub(r"(?m)^\s*>\s?", "", text)
    text = text.replace("*", "").replace("’", "'")
    return " ".join(text.split()).lower()


def _all_text(outs: list[Outbound]) -> str:
    return plain("\n".join(o.text for o in outs))


def _show(outs: list[Outbound]) -> str:
    return "\n---\n".join(f"[private={o.private} thread={o.thread_id} buttons={o.buttons}]\n{o.text}" for o in outs)


def _threads(driver: Driver) -> bool:
    return bool(getattr(driver, "supports_threads", driver.platform != "terminal"))


def _article_sentences(min_words: int = 8) -> list[str]:
    """Sentences of the knowledge's prose (headings and front matter excluded: replies may name sections)."""
    sentences: list[str] = []
    for path in sorted(KNOWLEDGE_DIR.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---\n"):
            text = text.split("\n---\n", 1)[-1]  # front matter: the title is also a section name
        for line in text.splitlines():
            if line.lstrip().startswith(("#", "![")):
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                words = plain(sentence.strip(" •-")).split()
                if len(words) >= min_words:
                    sentences.append(" ".join(words))
    return sentences


def _assert_safe(outs: list[Outbound]) -> None:
    assert all(o.pings_nobody for o in outs), "a reply could ping someone:\n" + _show(outs)
    assert all(o.within_limits for o in outs), "a reply breaks the platform's limits:\n" + _show(outs)


async def _admin_version(driver: Driver) -> str:
    outs = await driver.admin("status", user=SPEC_ADMIN_USER, admin=True)
    m = re.search(r"index version:\s*`?([A-Za-z0-9][A-Za-z0-9._:\-]*)", _all_text(outs))
    assert m, "status does not name the index version:\n" + _show(outs)
    return m.group(1)


# ---- the scenarios --------------------------------------------------------------------------


async def answer_with_quotes(driver: Driver) -> None:
    outs = await driver.ask(ML_QUESTION, user="U1", channel="C1")
    assert outs, "no reply to an answerable question"
    assert ML_PHRASE in _all_text(outs), "the answer does not quote the passage:\n" + _show(outs)
    buttons = {b for o in outs for b in o.buttons}
    assert {FEEDBACK_UP, FEEDBACK_DOWN} <= buttons, "no feedback buttons:\n" + _show(outs)
    if _threads(driver):  # a channel: the answer is public, in a thread
        assert not any(o.private for o in outs), "an answer in a channel should be public:\n" + _show(outs)
        assert all(o.thread_id for o in outs), "the answer should be in a thread:\n" + _show(outs)
    _assert_safe(outs)


async def off_topic_abstains(driver: Driver) -> None:
    outs = await driver.ask(OFF_TOPIC_QUESTION, user="U2", channel="C2")
    assert outs, "an off-topic question should get a polite 'not covered' reply"
    text = _all_text(outs)
    quoted = [s for s in _article_sentences() if s in text]
    assert not quoted, f"an abstention quoted the article: {quoted[:2]}\n" + _show(outs)
    assert not any(FEEDBACK_UP in o.buttons for o in outs), "an abstention has no answer to rate"
    _assert_safe(outs)


async def long_answer_within_limits(driver: Driver) -> None:
    outs = await driver.ask(LONG_QUESTION, user="U3", channel="C3")
    assert outs, "no reply"
    assert any(s in _all_text(outs) for s in _article_sentences()), "expected quotes:\n" + _show(outs)
    _assert_safe(outs)


async def everyone_pings_nobody(driver: Driver) -> None:
    outs = await driver.ask("@everyone @here <!channel> " + ML_QUESTION, user="U4", channel="C4")
    assert outs, "no reply"
    _assert_safe(outs)


async def admin_rebuild_allowed(driver: Driver) -> None:
    version = await _admin_version(driver)
    outs = await driver.admin("reindex", user=SPEC_ADMIN_USER, admin=True)
    text = _all_text(outs)
    assert outs and "only admins" not in text, "an admin was refused:\n" + _show(outs)
    # the knowledge did not change, so the rebuild is a no-op that names the serving version
    assert version.lower() in text, f"the reindex reply does not name version {version}:\n" + _show(outs)
    assert await _admin_version(driver) == version
    _assert_safe(outs)


async def admin_rebuild_refused(driver: Driver) -> None:
    outs = await driver.admin("reindex", user="U6", admin=False)
    assert outs, "a refused admin command should say so"
    assert "only admins" in _all_text(outs), "not a refusal:\n" + _show(outs)
    assert all(o.private for o in outs), "a refusal should be seen only by the asker:\n" + _show(outs)
    _assert_safe(outs)


async def follow_up_in_thread(driver: Driver) -> None:
    first = await driver.ask(ML_QUESTION, user="U7", channel="C7")
    assert first, "no reply to the first question"
    follow_q = "what are the limitations of machine learning?"
    if not _threads(driver):
        # a terminal is one conversation: every line is addressed to the bot
        outs = await driver.ask(follow_q, user="U7", channel="C7", mention=False)
        assert outs, "no reply to a follow-up"
        assert "limitation" in _all_text(outs), _show(outs)
        return
    thread = first[0].thread_id
    assert thread, "the first answer was not posted in a thread:\n" + _show(first)
    outs = await driver.ask(follow_q, user="U7", channel="C7", thread=thread, mention=False)
    assert outs, "a follow-up in the bot's thread without a mention got no reply"
    assert all(o.thread_id == thread for o in outs), "the follow-up reply left the thread:\n" + _show(outs)
    assert "limitation" in _all_text(outs), "the follow-up was not answered on topic:\n" + _show(outs)
    stray = await driver.ask(follow_q, user="U7", channel="C7", mention=False)
    assert stray == [], "a message without a mention outside the bot's threads was answered:\n" + _show(stray)
    _assert_safe(outs)


async def feedback_click_stored(driver: Driver) -> None:
    outs = await driver.ask(ML_QUESTION, user="U8", channel="C8")
    rated = next((o for o in outs if FEEDBACK_UP in o.buttons), None)
    assert rated is not None, "no message with feedback buttons:\n" + _show(outs)
    before = driver.feedback_count()
    ack = await driver.click_feedback(rated, up=True, user="U8")
    assert ack and "thanks" in _all_text(ack), "no acknowledgement of the vote:\n" + _show(ack)
    assert all(o.private for o in ack), "the acknowledgement should be seen only by the voter:\n" + _show(ack)
    assert driver.feedback_count() == before + 1, "the vote was not stored"
    again = await driver.click_feedback(rated, up=False, user="U8")
    assert again and "updated" in _all_text(again), "a changed vote should be acknowledged:\n" + _show(again)
    assert driver.feedback_count() == before + 1, "one vote per user per answer: a second click updates it"
    await driver.click_feedback(rated, up=True, user="U8b")
    assert driver.feedback_count() == before + 2, "another user's vote is another row"


async def rate_limit_told_once(driver: Driver) -> None:
    for i in range(SPEC_USER_RATE_LIMIT):
        outs = await driver.ask(ML_QUESTION, user="U9", channel="C9")
        assert outs, f"question {i + 1} is within the limit but got no reply"
        assert "try again" not in _all_text(outs), f"limited too early at question {i + 1}"
    told = await driver.ask(ML_QUESTION, user="U9", channel="C9")
    assert told, "the first question over the limit should say when to retry"
    assert re.search(r"try again in \d+ seconds?", _all_text(told)), "no retry time:\n" + _show(told)
    _assert_safe(told)
    silent = await driver.ask(ML_QUESTION, user="U9", channel="C9")
    assert silent == [], "the asker was told once; further messages get no reply:\n" + _show(silent)
    other = await driver.ask(ML_QUESTION, user="U9x", channel="C9")
    assert other, "another user in the same channel is not limited"


SCENARIOS: list[Scenario] = [
    Scenario("answer_with_quotes", "an answerable question is answered with a verbatim quote", answer_with_quotes),
    Scenario("off_topic_abstains", "an off-topic question gets a reply without quotes", off_topic_abstains),
    Scenario(
        "long_answer_within_limits", "a long answer respects the platform's size limits", long_answer_within_limits
    ),
    Scenario("everyone_pings_nobody", "@everyone in a question pings no one", everyone_pings_nobody),
    Scenario("admin_rebuild_allowed", "an admin's reindex runs and names the version", admin_rebuild_allowed),
    Scenario("admin_rebuild_refused", "a non-admin's reindex is refused privately", admin_rebuild_refused),
    Scenario("follow_up_in_thread", "a follow-up in the bot's thread needs no mention", follow_up_in_thread),
    Scenario("feedback_click_stored", "a feedback click is stored once per user", feedback_click_stored),
    Scenario("rate_limit_told_once", "over the limit: told once, then silence", rate_limit_told_once),
]
