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

FEEDBACK_UP, FEEDBACK_DOWN, HANDOFF = Action.FEEDBACK_UP, Action.FEEDBACK_DOWN, Action.HANDOFF

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE_DIR = REPO / "knowledge"

SPEC_ADMIN_USER = "UADMIN"  # listed as an admin on every platform in spec_settings
SPEC_USER_RATE_LIMIT = 3  # small, so the rate-limit scenario needs only a few questions

ML_QUESTION = "what is machine learning?"
ML_PHRASE = "algorithms that enable computers to learn from data"
OFF_TOPIC_QUESTION = "what's the best pizza topping in Naples?"
LONG_QUESTION = "what are the benefits and limitations of generative AI and machine learning?"
# the one channel where people take over (SLACK_HANDOFF_GROUPS / DISCORD_HANDOFF_ROLES name it)
SPEC_HANDOFF_CHANNEL = "C12"
SPEC_HANDOFF_GROUP = "S0SPECHELP"  # Slack's user group; Discord's driver names its role (a snowflake)


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
    # the groups / roles this message pings (mentioned in its text and allowed to notify)
    pings: tuple[str, ...] = ()
    links: list[str] = field(default_factory=list)  # the URLs it links to


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

    async def admin(self, command: str, *, user: str = "U1", admin: bool, channel: str = "C1") -> list[Outbound]: ...

    async def click_feedback(self, outbound: Outbound, *, up: bool, user: str = "U1") -> list[Outbound]: ...

    async def click(self, outbound: Outbound, action_id: str, *, user: str = "U1") -> list[Outbound]:
        """Click another button of `outbound` (e.g. "Ask a person")."""
        ...

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
        handoff_groups={SPEC_HANDOFF_CHANNEL: SPEC_HANDOFF_GROUP},
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
    return "\n---\n".join(
        f"[private={o.private} thread={o.thread_id} buttons={o.buttons} pings={o.pings} links={o.links}]\n{o.text}"
        for o in outs
    )


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


def _tags(outs: list[Outbound]) -> list[Outbound]:
    return [o for o in outs if o.pings]


async def handoff_on_abstain_once_per_thread(driver: Driver) -> None:
    question = "how do I get a refund for my conference ticket?"
    outs = await driver.ask(question, user="U12", channel=SPEC_HANDOFF_CHANNEL)
    assert outs, "no reply to an off-topic question"
    if not _threads(driver):  # the terminal has nobody to hand off to
        assert not _tags(outs), _show(outs)
        return
    tags = _tags(outs)
    assert len(tags) == 1, "an abstention in a hand-off channel should tag the people once:\n" + _show(outs)
    tag, thread = tags[0], outs[0].thread_id
    assert tag.pings == (driver.handoff_group,), "only the configured group may be pinged:\n" + _show(tags)
    assert not tag.private and thread and tag.thread_id == thread, "the tag belongs in the thread:\n" + _show(outs)
    assert "conference ticket" in plain(tag.text), "the tag should carry the question:\n" + _show(tags)
    again = await driver.ask(
        "what about a refund for the workshop?", user="U12", channel=SPEC_HANDOFF_CHANNEL, thread=thread, mention=False
    )
    assert again, "a follow-up in the bot's thread got no reply"
    assert not _tags(again), "a thread is handed off once:\n" + _show(again)
    elsewhere = await driver.ask(question, user="U12", channel="C12x")
    assert elsewhere and not _tags(elsewhere), "a channel without people configured tags nobody:\n" + _show(elsewhere)


async def handoff_on_thumbs_down_and_ask_a_person(driver: Driver) -> None:
    outs = await driver.ask(ML_QUESTION, user="U14", channel=SPEC_HANDOFF_CHANNEL)
    if not _threads(driver):
        assert not any(HANDOFF in o.buttons for o in outs), "the terminal has nobody to ask:\n" + _show(outs)
        return
    rated = next((o for o in outs if HANDOFF in o.buttons), None)
    assert rated is not None, "an answer in a hand-off channel offers 'Ask a person':\n" + _show(outs)
    assert not _tags(outs), "an answer tags nobody by itself:\n" + _show(outs)
    down = await driver.click_feedback(rated, up=False, user="U14")
    tags = _tags(down)
    assert len(tags) == 1 and tags[0].pings == (driver.handoff_group,), "a 👎 tags the people once:\n" + _show(down)
    assert tags[0].thread_id == rated.thread_id and not tags[0].private, _show(down)
    assert all(o.private for o in down if not o.pings), "the vote's acknowledgement stays private:\n" + _show(down)
    asked = await driver.click(rated, HANDOFF, user="U15")
    assert asked and not _tags(asked), "the people were already tagged in this thread:\n" + _show(asked)
    assert "already" in _all_text(asked) and all(o.private for o in asked), _show(asked)
    fresh = await driver.ask(LONG_QUESTION, user="U15", channel=SPEC_HANDOFF_CHANNEL)
    button = next((o for o in fresh if HANDOFF in o.buttons), None)
    assert button is not None, _show(fresh)
    clicked = await driver.click(button, HANDOFF, user="U15")
    tags = _tags(clicked)
    assert len(tags) == 1 and tags[0].thread_id == button.thread_id, "'Ask a person' tags the people:\n" + _show(
        clicked
    )
    assert "asked for a person" in plain(tags[0].text), _show(tags)
    no_button = await driver.ask(ML_QUESTION, user="U15", channel="C14x")
    assert not any(HANDOFF in o.buttons for o in no_button), "hand-off is off unless configured:\n" + _show(no_button)


async def repeat_links_the_earlier_thread(driver: Driver) -> None:
    first = await driver.ask(ML_QUESTION, user="U16", channel="C13")
    assert first, "no reply"
    if not _threads(driver):  # no channels, no threads to link
        return
    thread = first[0].thread_id
    assert thread and not any(o.links for o in first if "see that thread" in plain(o.text)), _show(first)
    again = await driver.ask("What is Machine Learning", user="U17", channel="C13")
    linked = [url for o in again for url in o.links if thread.replace(".", "") in url.replace(".", "")]
    assert linked, f"a repeat should link the earlier thread {thread}:\n" + _show(again)
    assert "see that thread" in _all_text(again), _show(again)
    assert ML_PHRASE in _all_text(again), "the repeat is still answered:\n" + _show(again)
    other = await driver.ask(LONG_QUESTION, user="U17", channel="C13")
    assert "see that thread" not in _all_text(other), "another question links nothing:\n" + _show(other)
    elsewhere = await driver.ask(ML_QUESTION, user="U17", channel="C13x")
    assert "see that thread" not in _all_text(elsewhere), "repeats are per channel:\n" + _show(elsewhere)
    _assert_safe(again)


async def watched_channel_answers_questions_only(driver: Driver) -> None:
    """An admin watches a channel: its questions are answered without a mention, only when the
    answer is confident; chatter, questions to people and unanswerable questions get silence."""
    user, channel = SPEC_ADMIN_USER, "C10"  # the terminal's /watch lasts for the admin's own session
    if _threads(driver):
        before = await driver.ask(ML_QUESTION, user=user, channel=channel, mention=False)
        assert before == [], "an unwatched channel answered a message without a mention:\n" + _show(before)
    watching = await driver.admin("watch", user=SPEC_ADMIN_USER, admin=True, channel=channel)
    assert watching and "watching" in _all_text(watching), "watch was not confirmed:\n" + _show(watching)
    assert all(o.private for o in watching), "the confirmation is for the admin:\n" + _show(watching)
    for text in (
        "good morning everyone, happy friday!",
        "machine learning is just statistics with better marketing",
        "@sam can you explain machine learning to me?",
        OFF_TOPIC_QUESTION,
    ):
        outs = await driver.ask(text, user=user, channel=channel, mention=False)
        said = [o for o in outs if not _silence_note(o)]
        assert said == [], f"it spoke unasked on {text!r}:\n" + _show(outs)
    outs = await driver.ask(ML_QUESTION, user=user, channel=channel, mention=False)
    assert ML_PHRASE in _all_text(outs), "a watched channel's question was not answered:\n" + _show(outs)
    assert {FEEDBACK_UP, FEEDBACK_DOWN} <= {b for o in outs for b in o.buttons}, _show(outs)
    if _threads(driver):
        assert all(o.thread_id and not o.private for o in outs), "answer publicly, in a thread:\n" + _show(outs)
    _assert_safe(outs)
    stopped = await driver.admin("unwatch", user=SPEC_ADMIN_USER, admin=True, channel=channel)
    assert stopped and "watching" in _all_text(stopped), _show(stopped)
    if _threads(driver):
        after = await driver.ask(ML_QUESTION, user=user, channel=channel, mention=False)
        assert after == [], "still answering after unwatch:\n" + _show(after)


async def watch_refused_to_non_admins(driver: Driver) -> None:
    outs = await driver.admin("watch", user="U11", admin=False, channel="C11")
    assert outs and "only admins" in _all_text(outs), "not a refusal:\n" + _show(outs)
    if _threads(driver):
        silent = await driver.ask(ML_QUESTION, user="U11", channel="C11", mention=False)
        assert silent == [], "a refused watch still watches:\n" + _show(silent)


def _silence_note(outbound: Outbound) -> bool:
    """The terminal's preview says why it stays silent; a chat platform says nothing."""
    return outbound.text.startswith("(qabot stays silent")


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
    Scenario(
        "handoff_on_abstain_once_per_thread",
        "an abstention in a hand-off channel tags its people in the thread, once per thread",
        handoff_on_abstain_once_per_thread,
    ),
    Scenario(
        "handoff_on_thumbs_down_and_ask_a_person",
        "a 👎 or 'Ask a person' tags the channel's people once per thread",
        handoff_on_thumbs_down_and_ask_a_person,
    ),
    Scenario(
        "repeat_links_the_earlier_thread",
        "a question answered in the same channel recently links that thread",
        repeat_links_the_earlier_thread,
    ),
    Scenario(
        "watched_channel_answers_questions_only",
        "a watched channel's questions are answered without a mention, only confidently; chatter gets silence",
        watched_channel_answers_questions_only,
    ),
    Scenario("watch_refused_to_non_admins", "only admins watch a channel", watch_refused_to_non_admins),
]
