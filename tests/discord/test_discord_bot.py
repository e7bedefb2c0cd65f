"""The Discord front end over the real protocol: discord.py's client against FakeDiscord on 127.0.0.1.

Each test starts the production QabotDiscordBot (REST login, gateway IDENTIFY/READY, command sync),
injects gateway events the way Discord sends them, and checks the HTTP calls the bot made back.
The service behind it is the real ConversationService over the real index.
"""

from __future__ import annotations

import logging
import re

import discord
import pytest

from bot.adapters.discord import DiscordAdapter, DiscordSettings, QabotDiscordBot
from bot.config import ConfigError, Settings
from bot.conversation.factory import open_feedback_store
from bot.conversation.service import ConversationService
from tests.discord.fake_discord import EPHEMERAL, MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord, FakeUser
from tests.discord.harness import (
    ADMIN_USER_ID,
    custom_ids,
    message_text,
    pings_nobody,
    running_bot,
    within_limits,
)

QUESTION = "what is machine learning?"
# Passage text from knowledge/ml-vs-genai.md that answers QUESTION
ANSWER_WORDS = "learn from data"

GUILDS, GUILD_MESSAGES, DM_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15


def _ask_options(question: str, *, private: bool | None = None) -> list[dict]:
    options: list[dict] = [{"name": "question", "type": 3, "value": question}]
    if private is not None:
        options.append({"name": "private", "type": 5, "value": private})
    return options


def _admin_options(command: str) -> list[dict]:
    return [{"name": command, "type": 1, "options": []}]


async def test_login_identify_ready_and_command_sync(fake_discord: FakeDiscord, discord_service, discord_settings):
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        assert bot.user is not None and str(bot.user.id) == fake_discord.bot_user.id
        assert bot.get_guild(int(fake_discord.guild_id)) is not None
        assert bot.allowed_mentions is not None and bot.allowed_mentions.to_dict()["parse"] == []

        identify = fake_discord.identify
        assert identify is not None and identify["token"] == "fake-discord-token"
        # no privileged intent by default: mentions and DMs carry their text without it
        assert identify["intents"] == GUILDS | GUILD_MESSAGES | DM_MESSAGES

        paths = [(c.method, c.path) for c in fake_discord.calls]
        assert ("GET", "/api/v10/users/@me") in paths
        sync = [c for c in fake_discord.calls if c.method == "PUT" and c.path.endswith("/commands")]
        assert len(sync) == 1
        commands = {c["name"]: c for c in sync[0].body}
        assert set(commands) == {"ask", "qabot", "Teach qabot"}
        ask_options = {o["name"]: o for o in commands["ask"]["options"]}
        assert ask_options["question"]["required"] is True and ask_options["private"].get("required") is False
        admin = commands["qabot"]
        assert int(admin["default_member_permissions"]) == MANAGE_GUILD
        assert {o["name"] for o in admin["options"]} == {
            "reindex",
            "status",
            "rollback",
            "report",
            "watch",
            "unwatch",
            "taught",
        }
        assert not [c for c in fake_discord.calls if c.status == 404], "the bot called an endpoint the fake lacks"


async def test_mention_is_answered_in_a_new_thread_and_follow_ups_there_too(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    alice = fake_discord.add_user("alice")
    discord_settings = discord_settings.model_copy(update={"message_content_intent": True})
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(alice, QUESTION)
        await bot.finished(asked["id"])

        create = fake_discord.calls_since(mark, "POST", r"/threads$")
        assert len(create) == 1
        assert create[0].path == f"/api/v10/channels/{fake_discord.general}/messages/{asked['id']}/threads"
        assert create[0].body["name"] == QUESTION  # the mention is not part of the thread name
        thread_id = asked["id"]  # Discord gives the thread the message's id

        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == thread_id for c in sent)
        assert all(pings_nobody(c.body) and within_limits(c.body) for c in sent)
        text = "\n".join(message_text(c.body) for c in sent)
        assert ANSWER_WORDS in text
        assert "Confidence" in text
        buttons = custom_ids(sent[-1].body)
        assert len(buttons) == 2 and re.fullmatch(r"qabot:fb:up:[A-Za-z0-9_-]+", buttons[0])
        assert not fake_discord.calls_since(mark, "POST", rf"/channels/{fake_discord.general}/messages$")

        # a follow-up in that thread, without a mention, is answered in the thread
        mark = fake_discord.mark()
        follow = await fake_discord.user_message(
            alice, "how do ML systems actually learn stuff", channel_id=thread_id, mention_bot=False
        )
        await bot.finished(follow["id"])
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == thread_id for c in sent)
        assert str(sent[0].body["message_reference"]["message_id"]) == follow["id"]
        assert all(pings_nobody(c.body) for c in sent)
        assert not fake_discord.calls_since(mark, "POST", r"/threads$")


async def test_follow_ups_in_the_bots_thread_still_work_after_a_restart(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    hana = fake_discord.add_user("hana")
    discord_settings = discord_settings.model_copy(update={"message_content_intent": True})
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        asked = await fake_discord.user_message(hana, QUESTION)
        await bot.finished(asked["id"])
    thread_id = asked["id"]
    assert fake_discord.is_thread(thread_id)

    # a new process: the thread arrives in GUILD_CREATE; its owner (the bot) marks it as the bot's
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        follow = await fake_discord.user_message(hana, QUESTION, channel_id=thread_id, mention_bot=False)
        await bot.finished(follow["id"])
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == thread_id for c in sent)


async def test_unmentioned_messages_in_other_peoples_threads_are_ignored(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    ivan = fake_discord.add_user("ivan")
    thread_id = fake_discord.add_thread(fake_discord.general, ivan.id)
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        chatter = await fake_discord.user_message(ivan, QUESTION, channel_id=thread_id, mention_bot=False)
        await bot.finished(chatter["id"])
        assert fake_discord.calls_since(mark) == []

        # mentioned there, it answers in that thread (no new thread inside a thread)
        asked = await fake_discord.user_message(ivan, QUESTION, channel_id=thread_id)
        await bot.finished(asked["id"])
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == thread_id for c in sent)
        assert str(sent[0].body["message_reference"]["message_id"]) == asked["id"]
        assert not fake_discord.calls_since(mark, "POST", r"/threads$")


async def test_messages_from_bots_and_itself_are_ignored(fake_discord: FakeDiscord, discord_service, discord_settings):
    other_bot = fake_discord.add_user("otherbot", bot=True)
    itself = fake_discord.bot_user
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        answers_before = discord_service.feedback.answer_count()
        from_bot = await fake_discord.user_message(other_bot, QUESTION)
        from_self = await fake_discord.user_message(itself, QUESTION)
        await bot.finished(from_bot["id"])
        await bot.finished(from_self["id"])
        assert fake_discord.calls_since(mark) == []
        assert discord_service.feedback.answer_count() == answers_before


async def test_plain_channel_messages_without_mention_are_ignored(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    bob = fake_discord.add_user("bob")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        msg = await fake_discord.user_message(bob, f"@everyone {QUESTION}", mention_bot=False)
        await bot.finished(msg["id"])
        assert fake_discord.calls_since(mark) == []


async def test_where_threads_are_not_allowed_the_bot_replies_to_the_message(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    locked = fake_discord.add_channel("announcements")
    fake_discord.forbid_threads_in.add(locked)
    carol = fake_discord.add_user("carol")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(carol, QUESTION, channel_id=locked)
        await bot.finished(asked["id"])
        assert [c.status for c in fake_discord.calls_since(mark, "POST", r"/threads$")] == [403]
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == locked for c in sent)
        assert str(sent[0].body["message_reference"]["message_id"]) == asked["id"]
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in sent)


async def test_direct_messages_are_answered(fake_discord: FakeDiscord, discord_service, discord_settings):
    dave = fake_discord.add_user("dave")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(dave, QUESTION, dm=True)
        await bot.finished(asked["id"])
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == fake_discord.dm_channel(dave) for c in sent)
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in sent)
        assert not fake_discord.calls_since(mark, "POST", r"/threads$")


async def test_ask_slash_command_defers_then_follows_up(fake_discord: FakeDiscord, discord_service, discord_settings):
    erin = fake_discord.add_user("erin")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        interaction = await fake_discord.slash_command(erin, "ask", _ask_options(QUESTION))
        await bot.finished(interaction["id"])

        calls = fake_discord.calls_since(mark)
        callback = calls[0]
        assert callback.path == f"/api/v10/interactions/{interaction['id']}/{interaction['token']}/callback"
        assert callback.body["type"] == 5  # deferred "thinking", sent before any retrieval
        assert not (callback.body.get("data") or {}).get("flags", 0) & EPHEMERAL

        followups = fake_discord.sent_messages(mark)
        assert followups
        assert all(
            c.path == f"/api/v10/webhooks/{fake_discord.application_id}/{interaction['token']}" for c in followups
        )
        assert all(pings_nobody(c.body) and within_limits(c.body) and not c.ephemeral for c in followups)
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in followups)
        assert len(custom_ids(followups[-1].body)) == 2


async def test_private_ask_is_ephemeral(fake_discord: FakeDiscord, discord_service, discord_settings):
    frank = fake_discord.add_user("frank")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        interaction = await fake_discord.slash_command(frank, "ask", _ask_options(QUESTION, private=True))
        await bot.finished(interaction["id"])
        callback = fake_discord.calls_since(mark)[0]
        assert callback.body["type"] == 5 and callback.body["data"]["flags"] & EPHEMERAL
        followups = fake_discord.sent_messages(mark)
        assert followups and all(c.ephemeral for c in followups)


@pytest.mark.parametrize(
    ("who", "permissions", "roles", "allowed"),
    [
        ("manage_server", MEMBER_PERMISSIONS | MANAGE_GUILD, [], True),
        ("configured_role", MEMBER_PERMISSIONS, ["helper"], True),
        ("configured_user", MEMBER_PERMISSIONS, [], True),
        ("member", MEMBER_PERMISSIONS, [], False),
    ],
)
async def test_admin_status_needs_manage_server_or_configured_ids(
    fake_discord: FakeDiscord,
    discord_service,
    discord_settings,
    caplog: pytest.LogCaptureFixture,
    who: str,
    permissions: int,
    roles: list[str],
    allowed: bool,
):
    user = fake_discord.add_user(who, roles=[fake_discord.helper_role_id] if roles else [])
    if who == "configured_user":
        fake_discord.users.pop(user.id)
        user = FakeUser(ADMIN_USER_ID, who)
        fake_discord.users[user.id] = user
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        with caplog.at_level(logging.WARNING, logger="bot.conversation.service"):
            interaction = await fake_discord.slash_command(
                user, "qabot", _admin_options("status"), permissions=permissions
            )
            await bot.finished(interaction["id"])
        callback = fake_discord.calls_since(mark)[0]
        assert callback.body["type"] == 5 and callback.body["data"]["flags"] & EPHEMERAL  # deferred first
        followups = fake_discord.sent_messages(mark)
        assert len(followups) == 1 and followups[0].ephemeral and pings_nobody(followups[0].body)
        text = message_text(followups[0].body)
        if allowed:
            assert "Index version" in text and "Passages" in text
        else:
            assert "only admins" in text and "Index version" not in text
            assert any("refused admin command" in r.getMessage() for r in caplog.records)


async def _answer_with_buttons(fake: FakeDiscord, bot, user: FakeUser) -> tuple[dict, list[str]]:
    mark = fake.mark()
    asked = await fake.user_message(user, QUESTION)
    await bot.finished(asked["id"])
    last = fake.sent_messages(mark)[-1]
    return last.response, custom_ids(last.body)


async def test_feedback_button_is_stored_and_still_works_after_a_restart(
    fake_discord: FakeDiscord, core_settings, discord_settings, engine_holder
):
    gina = fake_discord.add_user("gina")
    # the same QABOT_SECRET_KEY before and after the restart: the same person's vote is recognised
    settings = core_settings.replace(secret_key="a-secret-kept-across-restarts")

    def new_service() -> ConversationService:
        return ConversationService(engine_holder, settings=settings, feedback=open_feedback_store(settings))

    first = new_service()
    async with running_bot(fake_discord, service=first, settings=discord_settings) as bot:
        message, buttons = await _answer_with_buttons(fake_discord, bot, gina)
        up = next(b for b in buttons if ":up:" in b)
        down = next(b for b in buttons if ":down:" in b)
        answer_id = up.rsplit(":", 1)[1]

        mark = fake_discord.mark()
        click = await fake_discord.click_button(gina, message, up)
        await bot.finished(click["id"])
        callback = fake_discord.calls_since(mark)[0]
        assert callback.body["type"] == 5 and callback.body["data"]["flags"] & EPHEMERAL
        ack = fake_discord.sent_messages(mark)
        assert len(ack) == 1 and ack[0].ephemeral and "Thanks" in message_text(ack[0].body)
        assert first.feedback.feedback_count() == 1
    first.feedback.close()

    # a new process: new client, new service over the same SQLite file; the old message's button still works
    second = new_service()
    try:
        async with running_bot(fake_discord, service=second, settings=discord_settings) as bot:
            mark = fake_discord.mark()
            click = await fake_discord.click_button(gina, message, down)
            await bot.finished(click["id"])
            ack = fake_discord.sent_messages(mark)
            assert len(ack) == 1 and ack[0].ephemeral and "updated" in message_text(ack[0].body)
        votes = second.feedback.votes()
        assert [(v["answer_id"], v["vote"]) for v in votes] == [(answer_id, -1)]
    finally:
        second.feedback.close()


def test_run_discord_without_token_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path):
    from bot.adapters.registry import run_adapter

    def no_connection(*args, **kwargs):
        raise AssertionError("must fail before building anything or connecting")

    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setattr(QabotDiscordBot, "start", no_connection)
    monkeypatch.setattr("bot.conversation.factory.build_service", no_connection)
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN is not set: .*discord.com/developers"):
        run_adapter("discord", Settings(feedback_db=tmp_path / "f.sqlite3"))


def test_client_defaults_are_safe():
    adapter = DiscordAdapter(object(), DiscordSettings(_env_file=None))  # type: ignore[arg-type]
    bot = QabotDiscordBot(adapter=adapter)
    assert bot.allowed_mentions is not None and bot.allowed_mentions.to_dict() == {"parse": []}
    assert not bot.intents.message_content and bot.intents.guilds and not bot.intents.members
    assert not bot.intents.presences
    assert isinstance(bot, discord.Client)
